//! `irm recover`: break-glass decryption with the key server's own secret
//! key, for disaster recovery, tests and benchmarks. Staff open files through
//! the key server (`irm open`, later), which checks the policy and audits.
//!
//! The plaintext goes to a temporary file that is put in place only after the
//! whole payload verified; on any failure the temporary file is deleted, so
//! no half-written or unauthenticated plaintext is ever left behind. With
//! `-o -` verified chunks stream to stdout and the exit status is the only
//! signal that the whole file verified (as with age).

use std::io::BufReader;

use anyhow::{Context, Result};
use irm_core::{Opener, SealedHeader};
use serde::Serialize;

use crate::cli::RecoverArgs;
use crate::keyfile;
use crate::output::{Destination, IO_BUFFER_LEN, Input};
use crate::progress::{Metered, Progress};
use crate::report::print_json;
use crate::text;

/// The `--json` success object; its shape is documented in `irm recover --help`.
#[derive(Serialize)]
struct RecoverReport {
    ok: bool,
    input: Option<String>,
    output: Option<String>,
    file_id: String,
    file_name: Option<String>,
    media_type: Option<String>,
    plaintext_len: u64,
}

pub(crate) fn run(args: &RecoverArgs) -> Result<()> {
    let input = Input::from_arg(&args.input);
    let destination = Destination::from_arg(&args.output);
    destination.check_beside_json(&input, args.json, args.force, "the plaintext")?;
    let key = keyfile::read_secret(&args.kas_private_key)?;

    let opened = input.open()?;
    let mut reader = BufReader::with_capacity(IO_BUFFER_LEN, opened.reader);
    let header = SealedHeader::read_from(&mut reader)
        .with_context(|| format!("reading the header of {input}"))?;
    let content_key = key
        .unwrap(&header)
        .with_context(|| format!("unwrapping the content key of {input}"))?;
    let verified = header
        .verify(content_key)
        .with_context(|| format!("verifying the header of {input}"))?;

    let options = args.threads.stream_options();
    let metadata = verified.metadata().clone();
    let progress = Progress::new(metadata.plaintext_len, args.quiet || args.json);
    // Recovered customer data is private to its owner.
    let mut output = destination.create(args.force, 0o600)?;
    let mut opener = Opener::new(&verified, reader, options);
    // Verified chunks go from the decryption buffer to the file in one
    // vectored write per batch.
    let plaintext_len = opener
        .write_to(&mut Metered::new(&mut output, &progress))
        .with_context(|| format!("decrypting {input} into {destination}"))?;
    // Only now, with every chunk verified and the final one seen, does the
    // plaintext take the destination's name.
    output.commit()?;
    drop(progress);

    let file_id = verified.header().file_id().to_string();
    if args.json {
        print_json(&RecoverReport {
            ok: true,
            input: input.path().map(|p| p.display().to_string()),
            output: destination.path().map(|p| p.display().to_string()),
            file_id,
            file_name: metadata.file_name,
            media_type: metadata.media_type,
            plaintext_len,
        });
    } else if !args.quiet {
        let name = metadata
            .file_name
            .as_deref()
            .map(|n| format!(", sealed as {}", text::printable(n)))
            .unwrap_or_default();
        eprintln!(
            "recovered {input} into {destination}: {}{name}, file id {file_id}",
            text::bytes(plaintext_len)
        );
    }
    Ok(())
}
