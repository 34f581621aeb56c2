//! `irm open`: decrypts a sealed file through the key server. The plaintext
//! is written only under a grant that includes the `export` right, and only
//! after the key server has accepted (and audited) the `export` usage
//! report; without the right, the refused report is audited too and the
//! command exits 3 with the reason.
//!
//! A customer list (CSV or TSV) is decrypted into zeroizing memory first:
//! its export report carries its row count, and under an approved take-out
//! the key server answers with canary rows that go in among the real ones
//! before anything is written (PROTOCOL.md §7.8).
//!
//! As with `irm recover`, the plaintext goes to a temporary file that takes
//! the destination's name only after every chunk verified. While it
//! decrypts, the command holds the file's push channel (PROTOCOL.md §13):
//! on each signal a thread of its own asks for a fresh grant, and a refusal
//! (a revocation, suspension or restriction made meanwhile) stops the
//! export, removes the temporary output and exits 3 with the reason, so a
//! long export is stopped before its plaintext is released. If the lease
//! ran out while decrypting, the grant is renewed before naming the output
//! too, for when the channel was down.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver};

use anyhow::{Context, Result};
use irm_client::canary::OsRandom;
use irm_client::{ClientError, Session, WatchSignal};
use irm_core::protocol::{DenyReason, UsageAction};
use irm_core::{Opener, Rights, SealedHeader};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cli::OpenArgs;
use crate::exit::Refusal;
use crate::online;
use crate::output::{Destination, IO_BUFFER_LEN, Input};
use crate::progress::{Metered, Progress};
use crate::report::print_json;
use crate::text;

/// The `--json` success object; its shape is documented in `irm open --help`.
#[derive(Serialize)]
struct OpenReport {
    ok: bool,
    input: String,
    output: Option<String>,
    file_id: String,
    file_name: Option<String>,
    media_type: Option<String>,
    plaintext_len: u64,
    grant_id: String,
    /// Canary rows the export carries (PROTOCOL.md §7.8).
    canaries: usize,
}

/// The largest customer list decrypted into memory to carry canaries; a
/// larger one is written as it streams, without them.
const MAX_LIST_BYTES: u64 = 1 << 30;

/// The server accepted a report it should have refused: refuse anyway.
fn check_export_right(grant: &irm_client::Grant, input: &Input) -> Result<()> {
    if grant.rights().contains(Rights::EXPORT) {
        return Ok(());
    }
    Err(anyhow::Error::new(ClientError::Denied(
        DenyReason::RightNotGranted,
        format!(
            "your rights on this file are {}, without export",
            grant.rights()
        ),
    ))
    .context(format!("exporting {input}")))
}

pub(crate) fn run(args: &OpenArgs) -> Result<()> {
    if args.input.as_os_str() == "-" {
        return Err(
            Refusal::usage("irm open reads a sealed file, not standard input")
                .hint("give the path of the sealed file")
                .into(),
        );
    }
    let input = Input::from_arg(&args.input);
    let destination = Destination::from_arg(&args.output);
    destination.check_beside_json(&input, args.json, args.force, "the plaintext")?;
    let session = online::unlock(&args.passphrase)?;

    let file = File::open(&args.input).with_context(|| format!("opening {input}"))?;
    let sealed_len = file
        .metadata()
        .with_context(|| format!("reading {input}"))?
        .len();
    let mut reader = BufReader::with_capacity(IO_BUFFER_LEN, file);
    let header = SealedHeader::read_from(&mut reader)
        .with_context(|| format!("reading the header of {input}"))?;
    let mut grant = session
        .grant(&header, false)
        .with_context(|| format!("asking the key server for {input}"))?;
    online::tell_notices(&grant);

    let lacks_export = !grant.rights().contains(Rights::EXPORT);
    let refused_context = |what: &str| {
        if lacks_export {
            // Name the right: "this right" alone left people guessing.
            format!(
                "writing {input} out needs the export right, and your grant gives only {}",
                grant.rights()
            )
        } else {
            format!("reporting the export of {what}")
        }
    };
    let options = args.threads.stream_options();
    let verified = grant.verified_header()?;
    let metadata = verified.metadata().clone();
    let file_id = verified.header().file_id().to_string();
    // PROTOCOL.md §7.8: a customer list is decrypted into memory first, so
    // that the report can say how many rows it has and the canaries the
    // server issues for it go in before anything is written. A document
    // sealed from standard input has neither name nor type: its bytes
    // decide (`looks_like_list`).
    let unnamed = metadata.file_name.is_none() && metadata.media_type.is_none();
    // The buffer is sized once, so that no reallocation leaves a copy of
    // the plaintext behind: to the stated length, or else (sealed from a
    // stream) to the sealed file's, which the plaintext never exceeds.
    let capacity = metadata.plaintext_len.unwrap_or(sealed_len);
    let list = (irm_client::canary::is_list(&metadata) || unnamed) && capacity <= MAX_LIST_BYTES;
    let progress = Progress::new(metadata.plaintext_len, args.quiet || args.json || list);
    let mut sink = if list {
        Sink::Memory(Zeroizing::new(Vec::with_capacity(capacity as usize)))
    } else {
        // PROTOCOL.md §5: report the export before releasing anything.
        // Without the right the server refuses (right_not_granted) and
        // audits the refusal.
        session
            .report_event(&grant, UsageAction::Export, None)
            .with_context(|| refused_context(&input.to_string()))?;
        check_export_right(&grant, &input)?;
        // Exported customer data is private to its owner.
        Sink::File(destination.create(args.force, 0o600)?)
    };

    // PROTOCOL.md §13: the push channel is held while decrypting, so that a
    // revocation meanwhile stops a long export before anything is released.
    let refusal = OnceLock::new();
    let (signals, signalled) = mpsc::channel();
    // Without a push channel (a thread that cannot start), the lease check
    // below is what remains, as before.
    let watch = session
        .watch(&grant, move |signal| {
            let _ = signals.send(signal);
        })
        .ok();
    let decrypted = std::thread::scope(|scope| {
        let (session, header, refusal) = (&session, &header, &refusal);
        // Ends when the watch is dropped below (its handler holds the sender).
        scope.spawn(move || renew_on_signals(session, header, &signalled, refusal));
        let mut opener = Opener::new(verified, reader, options);
        // Verified chunks go from the decryption buffer to the file in one
        // vectored write per batch.
        let decrypted = match &mut sink {
            Sink::Memory(plaintext) => opener.write_to(&mut Checked {
                inner: &mut **plaintext,
                refusal,
            }),
            Sink::File(output) => opener.write_to(&mut Metered::new(
                Checked {
                    inner: output,
                    refusal,
                },
                &progress,
            )),
        };
        drop(opener);
        drop(watch);
        decrypted
    });
    // A refusal is the reason, whatever the write that noticed it says.
    if let Some(refused) = refusal.into_inner() {
        // Dropping the sink wipes the plaintext or removes the temporary file.
        drop(sink);
        return Err(anyhow::Error::new(refused).context(format!(
            "the key server withdrew {input} while it was decrypted"
        )));
    }
    let plaintext_len =
        decrypted.with_context(|| format!("decrypting {input} into {destination}"))?;
    let mut canaries = 0;
    let output = match sink {
        Sink::File(output) => output,
        Sink::Memory(plaintext) => {
            let exported = if unnamed {
                session.export_maybe_list(&grant, &plaintext, None, &mut OsRandom)
            } else {
                session.export_list(&grant, &plaintext, None, &mut OsRandom)
            };
            let (exported, receipt) =
                exported.with_context(|| refused_context(&input.to_string()))?;
            drop(plaintext);
            check_export_right(&grant, &input)?;
            canaries = receipt.canaries.len();
            let mut output = destination.create(args.force, 0o600)?;
            std::io::Write::write_all(&mut output, &exported)
                .with_context(|| format!("writing {destination}"))?;
            output
        }
    };
    if !grant.is_live() {
        // The key was used up to its deadline; check with the server that
        // the file may still be released before naming the output.
        session
            .renew(&mut grant)
            .with_context(|| format!("renewing the grant for {input}"))?;
    }
    output.commit()?;
    drop(progress);

    if args.json {
        print_json(&OpenReport {
            ok: true,
            input: input.to_string(),
            output: destination.path().map(|p| p.display().to_string()),
            file_id,
            file_name: metadata.file_name,
            media_type: metadata.media_type,
            plaintext_len,
            grant_id: grant.grant_id().to_owned(),
            canaries,
        });
    } else if !args.quiet {
        let name = metadata
            .file_name
            .as_deref()
            .map(|n| format!(", sealed as {}", text::printable(n)))
            .unwrap_or_default();
        eprintln!(
            "opened {input} into {destination}: {}{name}, file id {file_id} (export reported to {}{})",
            text::bytes(plaintext_len),
            session.server_url(),
            if canaries > 0 {
                format!("; {canaries} canary rows added, which name this export if the list leaks")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// Where the plaintext goes while it is decrypted: a list into zeroizing
/// memory (its canaries go in before it is written), anything else
/// straight into the output's temporary file.
enum Sink {
    Memory(Zeroizing<Vec<u8>>),
    File(crate::output::Output),
}

/// Renews on each push-channel signal until the channel ends (PROTOCOL.md
/// §13); the first refusal, or a renewal without the export right, is kept
/// in `refusal` and ends the renewals. A renewal that fails otherwise (the
/// server unreachable) refuses nothing: the lease check before the output
/// is named still stands.
fn renew_on_signals(
    session: &Session,
    header: &SealedHeader,
    signalled: &Receiver<WatchSignal>,
    refusal: &OnceLock<ClientError>,
) {
    while signalled.recv().is_ok() {
        let refused = match session.grant(header, true) {
            Err(err @ ClientError::Denied(..)) => err,
            // A restriction may leave the file readable but not exportable.
            Ok(renewed) if !renewed.rights().contains(Rights::EXPORT) => ClientError::Denied(
                DenyReason::RightNotGranted,
                format!(
                    "the file's rights became {} while it was decrypted, without export",
                    renewed.rights()
                ),
            ),
            Ok(_) | Err(_) => continue,
        };
        let _ = refusal.set(refused);
        return;
    }
}

/// The output, refusing every write once the grant was refused, so the
/// export stops at its next batch.
struct Checked<'a, W> {
    inner: W,
    refusal: &'a OnceLock<ClientError>,
}

impl<W> Checked<'_, W> {
    fn check(&self) -> io::Result<()> {
        match self.refusal.get() {
            Some(_) => Err(io::Error::other("the grant was refused while decrypting")),
            None => Ok(()),
        }
    }
}

impl<W: Write> Write for Checked<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.check()?;
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
