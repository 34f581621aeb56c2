//! The worker thread: it owns the key-server `Session`, the `Grant` and all
//! file reading and decryption. The UI sends [`Command`]s and drains
//! [`Event`]s with `try_recv` each frame; every event is followed by a
//! repaint request, so nothing on the UI thread ever waits for I/O.
//!
//! Plaintext goes from the decryptor into one zeroizing buffer sized from
//! the file, then into the document's zeroizing buffers (which may keep that
//! buffer itself, for export); never to disk.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use irm_client::{Grant, Passphrase, Session};
use irm_core::protocol::UsageAction;
use irm_core::{Opener, SealedHeader, StreamOptions};
use zeroize::Zeroizing;

use crate::model::{ContentError, Document, Failure, OpenDocument, WatermarkIdentity};
use crate::watermark::format_utc;

/// What the UI asks of the worker.
pub enum Command {
    /// Unlock the credentials with this passphrase.
    Unlock(Passphrase),
    /// Try opening the file again after a failure.
    Retry,
    /// Record a copy of `chars` characters; answered by [`Event::CopyReported`].
    ReportCopy {
        /// How many characters were copied.
        chars: usize,
    },
    /// Record an export, then write the document to `path` (a new file;
    /// never overwrites): UTF-8 CSV for a CSV/TSV file, the original bytes
    /// for other kinds; answered by [`Event::Exported`].
    Export {
        /// The open document.
        doc: Arc<Document>,
        /// Where the person chose to save it.
        path: PathBuf,
    },
    /// Report the close, drop the grant and stop.
    Close,
}

/// What the worker tells the UI.
#[derive(Debug)]
pub enum Event {
    /// A passphrase is needed (again, after the failure).
    NeedPassphrase(Option<Failure>),
    /// Unlocking, asking for the grant, decrypting.
    Opening,
    /// The document is open.
    Opened(OpenDocument),
    /// The lease was renewed until this deadline.
    Renewed {
        /// The new deadline on the monotonic clock.
        lease_deadline: Instant,
    },
    /// The file could not be opened.
    CannotOpen(Failure),
    /// The open document must close now (renewal refused or lease ended).
    Closed(Failure),
    /// The answer to [`Command::ReportCopy`]: copy only on `Ok`.
    CopyReported(Result<(), Failure>),
    /// The answer to [`Command::Export`]: the file written, or why not.
    Exported(Result<PathBuf, Failure>),
}

/// Where the document and the credentials are.
pub struct Source {
    /// The sealed file.
    pub file: PathBuf,
    /// The credentials directory (`irm_client::config_dir()`).
    pub config_dir: PathBuf,
    /// The passphrase, if given up front (`IRM_PASSPHRASE`).
    pub passphrase: Option<Passphrase>,
}

/// The UI's handle on the worker thread.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
}

impl Worker {
    /// Starts the worker; `wake` is called after every event (the app passes
    /// `ctx.request_repaint`).
    pub fn spawn(source: Source, wake: impl Fn() + Send + 'static) -> Self {
        let (commands, command_rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        std::thread::Builder::new()
            .name("irm-viewer-worker".into())
            .spawn(move || {
                let emit = |event| {
                    // The UI may be gone already; then there is no one to tell.
                    let _ = event_tx.send(event);
                    wake();
                };
                run(source, &command_rx, &emit);
            })
            .expect("the worker thread starts");
        Self { commands, events }
    }

    /// Sends a command (ignored if the worker has stopped).
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// The next event, waiting up to `timeout` (for tests and tools; the UI
    /// never waits).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Not joined: the close report may wait on the network, the window need not.
        self.send(Command::Close);
    }
}

fn run(source: Source, commands: &Receiver<Command>, emit: &dyn Fn(Event)) {
    let Source {
        file,
        config_dir,
        mut passphrase,
    } = source;
    let mut failure = None;
    let session = loop {
        let phrase = match passphrase.take() {
            Some(p) => p,
            None => {
                emit(Event::NeedPassphrase(failure.take()));
                loop {
                    match commands.recv() {
                        Ok(Command::Unlock(p)) => break p,
                        Ok(Command::Close) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            }
        };
        emit(Event::Opening);
        match Session::unlock(&config_dir, &phrase) {
            Ok(session) => break session,
            Err(e) => match Failure::from_client(&e) {
                Failure::WrongPassphrase => failure = Some(Failure::WrongPassphrase),
                other => {
                    emit(Event::CannotOpen(other));
                    if !wait_for_retry(commands) {
                        return;
                    }
                    passphrase = Some(phrase);
                }
            },
        }
    };
    loop {
        emit(Event::Opening);
        match open(&session, &file) {
            Ok((grant, open)) => {
                emit(Event::Opened(open));
                hold(&session, grant, commands, emit);
                return;
            }
            Err(failure) => {
                emit(Event::CannotOpen(failure));
                if !wait_for_retry(commands) {
                    return;
                }
            }
        }
    }
}

/// Waits for Retry (true) or Close (false).
fn wait_for_retry(commands: &Receiver<Command>) -> bool {
    loop {
        match commands.recv() {
            Ok(Command::Retry) => return true,
            Ok(Command::Close) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// Reads the header, asks for the grant and decrypts the whole payload.
pub fn open(session: &Session, path: &Path) -> Result<(Grant, OpenDocument), Failure> {
    let mut file = File::open(path)
        .map_err(|e| Failure::Other(format!("cannot read {}: {e}", path.display())))?;
    let file_len = file
        .metadata()
        .map_err(|e| Failure::Other(format!("cannot read {}: {e}", path.display())))?
        .len();
    let header = SealedHeader::read_from(&mut file).map_err(|e| Failure::Corrupt(e.to_string()))?;
    let grant = session
        .grant(&header, false)
        .map_err(|e| Failure::from_client(&e))?;
    let verified = grant
        .verified_header()
        .map_err(|e| Failure::from_client(&e))?;
    // The plaintext is shorter than the sealed file: one buffer, never grown.
    let capacity = usize::try_from(file_len)
        .map_err(|_| Failure::Other("the file is too large for this computer".into()))?
        + 1;
    let mut plain = Zeroizing::new(vec![0u8; capacity]);
    let mut len = 0;
    let mut opener = Opener::new(verified, &mut file, StreamOptions::default());
    loop {
        if len == capacity {
            return Err(Failure::Corrupt(
                "the decrypted payload is longer than the file".into(),
            ));
        }
        match opener.read(&mut plain[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Failure::Corrupt(e.to_string())),
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".irm").to_owned())
        .unwrap_or_default();
    plain.truncate(len); // never shrunk: a reallocation would leave a copy
    // The sealed metadata says what the file is; the names are the fallback.
    let meta = verified.metadata();
    let original_name = meta.file_name.as_deref().unwrap_or(&name);
    let doc = Document::open(
        name.clone(),
        meta.media_type.as_deref(),
        Some(original_name),
        plain,
    )
    .map_err(|e| match e {
        ContentError::Unsupported => Failure::Unsupported(format!(
            "{}: {}",
            meta.media_type.as_deref().unwrap_or("?"),
            e
        )),
        e => Failure::Corrupt(e.to_string()),
    })?;
    let open = OpenDocument {
        doc: Arc::new(doc),
        rights: grant.rights(),
        watermark: WatermarkIdentity {
            user: grant.user().to_owned(),
            device: grant.device_id().to_owned(),
            opened_at: format_utc(SystemTime::now()),
            file_id: grant.file_id().to_string(),
        },
        watermark_required: grant.watermark_required(),
        lease_deadline: Instant::now() + grant.time_left(),
    };
    Ok((grant, open))
}

/// Keeps the grant alive: renews at `renew_due`, reports usage, and closes
/// the document when renewal is refused or the lease runs out.
fn hold(session: &Session, mut grant: Grant, commands: &Receiver<Command>, emit: &dyn Fn(Event)) {
    let mut next_renewal = grant.renew_due();
    loop {
        let wait = next_renewal.saturating_duration_since(Instant::now());
        match commands.recv_timeout(wait) {
            Ok(Command::ReportCopy { chars }) => {
                let detail = format!("{chars} characters to the clipboard");
                let result = session
                    .report_event(&grant, UsageAction::Copy, Some(&detail))
                    .map_err(|e| Failure::from_client(&e));
                emit(Event::CopyReported(result));
            }
            Ok(Command::Export { doc, path }) => {
                emit(Event::Exported(export(session, &grant, &doc, path)));
            }
            Ok(Command::Close) | Err(RecvTimeoutError::Disconnected) => {
                // Best effort: the audit log has the grant either way.
                let _ = session.report_event(&grant, UsageAction::Close, None);
                return;
            }
            Ok(Command::Unlock(_) | Command::Retry) => {}
            Err(RecvTimeoutError::Timeout) => match session.renew(&mut grant) {
                Ok(()) => {
                    next_renewal = grant.renew_due();
                    emit(Event::Renewed {
                        lease_deadline: Instant::now() + grant.time_left(),
                    });
                }
                Err(e) => {
                    let failure = Failure::from_client(&e);
                    let transient = matches!(failure, Failure::Unreachable(_) | Failure::Other(_));
                    if transient && grant.is_live() {
                        // Try again a few times before the lease runs out.
                        let left = grant.time_left();
                        next_renewal = Instant::now()
                            + (left / 4).clamp(Duration::from_millis(200), Duration::from_secs(15));
                        continue;
                    }
                    emit(Event::Closed(if transient {
                        Failure::LeaseExpired
                    } else {
                        failure
                    }));
                    return; // the grant (content key) is wiped as it drops
                }
            },
        }
    }
}

/// Records the export with the key server first (a refused or failed report
/// means no file), then writes a new file.
fn export(
    session: &Session,
    grant: &Grant,
    doc: &Document,
    path: PathBuf,
) -> Result<PathBuf, Failure> {
    let detail = format!("{} to {}", doc.export_summary(), path.display());
    session
        .report_event(grant, UsageAction::Export, Some(&detail))
        .map_err(|e| Failure::from_client(&e))?;
    let written = File::create_new(&path).and_then(|mut file| {
        doc.write_export(&mut file)?;
        file.sync_all()
    });
    match written {
        Ok(()) => Ok(path),
        Err(e) => Err(Failure::Other(format!(
            "cannot write {}: {e}",
            path.display()
        ))),
    }
}
