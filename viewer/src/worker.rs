//! The worker thread: it owns the key-server `Session`, the `Grant` and all
//! file reading and decryption. The UI sends [`Command`]s and drains
//! [`Event`]s with `try_recv` each frame; every event is followed by a
//! repaint request, so nothing on the UI thread ever waits for I/O.
//!
//! Plaintext goes from the decryptor into one zeroizing buffer sized from
//! the file, then into the document's zeroizing buffers (which may keep that
//! buffer itself, for export); never to disk.

use std::fs::File;
use std::io::{BufRead as _, Read as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use irm_client::{Grant, Passphrase, Session, WatchSignal};
use irm_core::protocol::{Notice, UsageAction};
use irm_core::{Opener, SealedHeader, StreamOptions, VerifiedHeader};
use zeroize::Zeroizing;

use crate::enroll::{self, EnrollFailure, EnrollRequest};
use crate::kind::{self, Kind};
use crate::model::{ContentError, Document, Failure, OpenDocument};
use crate::print::{self, PrintCommand, PrintError, PrintJob};
use crate::table::{StreamError, StreamedTable, TableStream};
use crate::timing::Timing;
use crate::watermark::{WatermarkIdentity, format_utc};

/// What the UI asks of the worker.
pub enum Command {
    /// Unlock the credentials with this passphrase.
    Unlock(Passphrase),
    /// Try opening the file again after a failure.
    Retry,
    /// Record a copy of `chars` characters in `rows` rows; answered by
    /// [`Event::CopyReported`]. More rows than the server's threshold need
    /// an approved take-out (PROTOCOL.md §7.3).
    ReportCopy {
        /// How many characters were copied.
        chars: usize,
        /// How many rows (lines).
        rows: usize,
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
    /// Render the rows to a PDF with the watermark, record the print with
    /// the key server, then pipe the PDF to `command`; answered by
    /// [`Event::Printed`].
    Print {
        /// The open document.
        doc: Arc<Document>,
        /// The workbook sheet shown (0 for a CSV/TSV file).
        sheet: usize,
        /// The data rows of the current view, in view order.
        rows: Vec<usize>,
        /// Where the PDF goes (`lp`, or `IRM_PRINT_COMMAND`).
        command: PrintCommand,
    },
    /// Close the open document (reporting it) and open this file instead.
    Open(PathBuf),
    /// Close the open document (reporting it) and wait for [`Command::Open`].
    Release,
    /// Report the close, drop the grant and stop.
    Close,
    /// The push channel says to renew now (PROTOCOL.md §13): sent by the
    /// document's watch thread, not the UI.
    Recheck(WatchSignal),
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
        /// What the key server told the person with the renewal.
        notices: Vec<Notice>,
        /// The audit witness's alarm, if the renewal raised one.
        audit_alarm: Option<String>,
    },
    /// The file could not be opened.
    CannotOpen(Failure),
    /// The open document must close now (renewal refused or lease ended).
    Closed(Failure),
    /// The answer to [`Command::ReportCopy`]: copy only on `Ok`.
    CopyReported(Result<(), Failure>),
    /// The answer to [`Command::Export`]: the file written, or why not.
    Exported(Result<PathBuf, Failure>),
    /// The answer to [`Command::Print`]: the pages spooled, or why not.
    Printed(Result<usize, Failure>),
    /// This computer is enrolled; its credentials are stored.
    Enrolled,
    /// Enrolling failed; the worker has stopped.
    EnrollFailed(EnrollFailure),
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
        Self::spawn_timed(source, None, wake)
    }

    /// [`Worker::spawn`], reporting the unlock and the open to `timing`
    /// (`IRM_VIEWER_TIMING=1`).
    pub fn spawn_timed(
        source: Source,
        timing: Option<Timing>,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        Self::start(wake, move |commands, myself, emit| {
            run(source, timing.as_ref(), commands, myself, emit);
        })
    }

    /// Starts a worker that first enrolls this computer (answered by
    /// [`Event::Enrolled`] or, ending the worker, [`Event::EnrollFailed`]),
    /// then opens `file` if given, else waits for [`Command::Open`]. The
    /// passphrase is wiped once the credentials are stored.
    pub fn enroll(
        request: EnrollRequest,
        passphrase: Passphrase,
        file: Option<PathBuf>,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        Self::start(wake, move |commands, myself, emit| {
            let session = match enroll::run(request, &passphrase) {
                Ok(session) => session,
                Err(failure) => return emit(Event::EnrollFailed(failure)),
            };
            drop(passphrase);
            emit(Event::Enrolled);
            serve(&session, file, commands, myself, emit, None);
        })
    }

    fn start(
        wake: impl Fn() + Send + 'static,
        body: impl FnOnce(&Receiver<Command>, &Sender<Command>, &dyn Fn(Event)) + Send + 'static,
    ) -> Self {
        let (commands, command_rx) = mpsc::channel();
        // For the open document's push channel, which wakes the worker
        // through its own queue; the UI still ends it with `Close`.
        let myself = commands.clone();
        let (event_tx, events) = mpsc::channel();
        std::thread::Builder::new()
            .name("irm-viewer-worker".into())
            .spawn(move || {
                let emit = |event| {
                    // The UI may be gone already; then there is no one to tell.
                    let _ = event_tx.send(event);
                    wake();
                };
                body(&command_rx, &myself, &emit);
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

fn run(
    source: Source,
    timing: Option<&Timing>,
    commands: &Receiver<Command>,
    myself: &Sender<Command>,
    emit: &dyn Fn(Event),
) {
    let Source {
        mut file,
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
                        // Another file chosen before unlocking: open that one,
                        // still after the passphrase.
                        Ok(Command::Open(next)) => {
                            file = next;
                            emit(Event::NeedPassphrase(None));
                        }
                        Ok(Command::Close) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            }
        };
        emit(Event::Opening);
        let started = Instant::now();
        match Session::unlock(&config_dir, &phrase) {
            Ok(session) => {
                if let Some(timing) = timing {
                    timing.unlocked(started.elapsed());
                }
                break session;
            }
            Err(e) => match Failure::from_client(&e) {
                Failure::WrongPassphrase => failure = Some(Failure::WrongPassphrase),
                other => {
                    emit(Event::CannotOpen(other));
                    match wait_for_retry(commands) {
                        Next::Retry | Next::Wait => {}
                        Next::Open(next) => file = next,
                        Next::Stop => return,
                    }
                    passphrase = Some(phrase);
                }
            },
        }
    };
    serve(&session, Some(file), commands, myself, emit, timing);
}

/// What to do after a document closed or could not be opened.
enum Next {
    /// Try the same file again.
    Retry,
    /// Wait for another file.
    Wait,
    /// Open this file.
    Open(PathBuf),
    /// Stop the worker.
    Stop,
}

/// Opens `file` (or the first file asked for) and holds its grant; then
/// the next file asked for, until told to stop. One document at a time:
/// the previous grant is closed (and its key wiped) before the next opens.
fn serve(
    session: &Session,
    file: Option<PathBuf>,
    commands: &Receiver<Command>,
    myself: &Sender<Command>,
    emit: &dyn Fn(Event),
    timing: Option<&Timing>,
) {
    let mut next = file;
    loop {
        let Some(file) = next.take().or_else(|| wait_for_open(commands)) else {
            return;
        };
        emit(Event::Opening);
        let started = Instant::now();
        match open(session, &file) {
            Ok((grant, open)) => {
                if let Some(timing) = timing {
                    timing.opened(started.elapsed());
                }
                emit(Event::Opened(open));
                match hold(session, grant, commands, myself, emit) {
                    Next::Open(path) => next = Some(path),
                    Next::Retry | Next::Wait => {}
                    Next::Stop => return,
                }
            }
            Err(failure) => {
                emit(Event::CannotOpen(failure));
                match wait_for_retry(commands) {
                    Next::Retry => next = Some(file),
                    Next::Open(path) => next = Some(path),
                    Next::Wait => {}
                    Next::Stop => return,
                }
            }
        }
    }
}

/// Waits for a file to open; `None` on Close.
fn wait_for_open(commands: &Receiver<Command>) -> Option<PathBuf> {
    loop {
        match commands.recv() {
            Ok(Command::Open(path)) => return Some(path),
            Ok(Command::Close) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Waits for Retry, another file, or Close.
fn wait_for_retry(commands: &Receiver<Command>) -> Next {
    loop {
        match commands.recv() {
            Ok(Command::Retry) => return Next::Retry,
            Ok(Command::Open(path)) => return Next::Open(path),
            Ok(Command::Close) | Err(_) => return Next::Stop,
            Ok(_) => {}
        }
    }
}

/// How much of the payload is read before deciding what kind of document it
/// is (`kind::detect` sniffs the first bytes, and a table's first line).
const HEAD_LEN: usize = 1024 * 1024;

/// Reads the header, asks for the grant and decrypts the payload: a CSV/TSV
/// table piece by piece straight into the table (the whole plaintext is
/// never held beside it), any other kind into one buffer.
pub fn open(session: &Session, path: &Path) -> Result<(Grant, OpenDocument), Failure> {
    let cannot_read =
        |e: std::io::Error| Failure::Other(format!("cannot read {}: {e}", path.display()));
    let mut file = File::open(path).map_err(cannot_read)?;
    let file_len = file.metadata().map_err(cannot_read)?.len();
    let header = SealedHeader::read_from(&mut file).map_err(|e| Failure::Corrupt(e.to_string()))?;
    let grant = session
        .grant(&header, false)
        .map_err(|e| Failure::from_client(&e))?;
    let verified = grant
        .verified_header()
        .map_err(|e| Failure::from_client(&e))?;
    // The plaintext is shorter than the sealed file.
    let capacity = usize::try_from(file_len)
        .map_err(|_| Failure::Other("the file is too large for this computer".into()))?
        + 1;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".irm").to_owned())
        .unwrap_or_default();
    // The sealed metadata says what the file is; the names are the fallback.
    let meta = verified.metadata();
    let original_name = meta.file_name.as_deref().unwrap_or(&name);
    let mut reader = Payload::new(verified, &mut file, capacity);
    // The first piece says what the document is: `kind::detect` sniffs its
    // first bytes when the metadata and the name do not tell.
    let mut piece = Zeroizing::new(vec![0u8; HEAD_LEN.min(capacity)]);
    let first = reader.fill(&mut piece)?;
    let doc = match kind::detect(
        meta.media_type.as_deref(),
        Some(original_name),
        &piece[..first],
    ) {
        Kind::Table => {
            let table = read_table(reader, &piece[..first], path, verified)?;
            Document::from_streamed(name.clone(), table)
        }
        _ => {
            // One buffer, sized from the file and never grown.
            let mut plain = Zeroizing::new(vec![0u8; capacity]);
            plain[..first].copy_from_slice(&piece[..first]);
            drop(piece);
            let mut len = first;
            loop {
                match reader.fill(&mut plain[len..])? {
                    0 => break,
                    n => len += n,
                }
            }
            drop(reader);
            plain.truncate(len); // never shrunk: a reallocation would leave a copy
            Document::open(
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
            })?
        }
    };
    let open = OpenDocument {
        doc: Arc::new(doc),
        rights: grant.rights(),
        watermark: watermark_for(&grant),
        watermark_required: grant.watermark_required(),
        lease_deadline: Instant::now() + grant.time_left(),
        not_after_unix: grant.not_after(),
        notices: grant.notices().to_vec(),
        audit_alarm: grant.witness_alarm().map(ToString::to_string),
    };
    Ok((grant, open))
}

/// The decrypted payload, read with a check that it is no longer than the
/// sealed file.
struct Payload<'a> {
    opener: Opener<&'a mut File>,
    /// Plaintext bytes read so far.
    read: usize,
    /// One more than the most the payload can hold (the file's length + 1).
    capacity: usize,
}

impl<'a> Payload<'a> {
    /// The payload after the header `file` is positioned after.
    fn new(verified: &VerifiedHeader, file: &'a mut File, capacity: usize) -> Self {
        Self {
            opener: Opener::new(verified, file, StreamOptions::default()),
            read: 0,
            capacity,
        }
    }

    fn count(&mut self, len: usize) -> Result<(), Failure> {
        self.read += len;
        if self.read >= self.capacity {
            return Err(Failure::Corrupt(
                "the decrypted payload is longer than the file".into(),
            ));
        }
        Ok(())
    }

    /// Fills `buf` as far as the payload goes; 0 at its end.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, Failure> {
        let mut len = 0;
        while len < buf.len() {
            match self.opener.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::Corrupt(e.to_string())),
            }
        }
        self.count(len)?;
        Ok(len)
    }

    /// Hands the rest of the payload to `stream`, chunk by chunk straight
    /// from the decryption buffer (no copy in between).
    fn into_stream(mut self, stream: &mut TableStream) -> Result<(), Failure> {
        while !stream.must_stop() {
            let len = match self.opener.fill_buf() {
                Ok([]) => return Ok(()),
                Ok(chunk) => {
                    stream.push(chunk);
                    chunk.len()
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Corrupt(e.to_string())),
            };
            self.opener.consume(len);
            self.count(len)?;
        }
        Ok(())
    }
}

/// Reads a table from `payload` (`head`: what was read of it already),
/// again from the start of the payload in CP932 if the text turns out to
/// be CP932 only after non-ASCII UTF-8 (`stream.rs`).
fn read_table(
    payload: Payload<'_>,
    head: &[u8],
    path: &Path,
    verified: &VerifiedHeader,
) -> Result<StreamedTable, Failure> {
    let capacity = payload.capacity;
    let mut stream = TableStream::new(capacity);
    stream.push(head);
    payload.into_stream(&mut stream)?;
    let streamed = match stream.finish() {
        Err(StreamError::Restart) => {
            let mut file = File::open(path)
                .map_err(|e| Failure::Other(format!("cannot read {}: {e}", path.display())))?;
            SealedHeader::read_from(&mut file).map_err(|e| Failure::Corrupt(e.to_string()))?;
            let mut stream = TableStream::cp932(capacity);
            Payload::new(verified, &mut file, capacity).into_stream(&mut stream)?;
            stream.finish()
        }
        other => other,
    };
    streamed.map_err(|e| match e {
        StreamError::TooLarge | StreamError::Restart => {
            Failure::Corrupt(ContentError::TooLarge.to_string())
        }
    })
}

/// Who the watermark names, from the grant, as of now.
fn watermark_for(grant: &Grant) -> WatermarkIdentity {
    WatermarkIdentity {
        user: grant.user().to_owned(),
        display_name: grant.display_name().map(str::to_owned),
        device: grant.device_id().to_owned(),
        opened_at: format_utc(SystemTime::now()),
        file_id: grant.file_id().to_string(),
        watermark_id: grant.watermark_id().map(str::to_owned),
    }
}

/// Keeps the grant alive: renews at `renew_due`, reports usage, and closes
/// the document when renewal is refused or the lease runs out (then
/// `Next::Wait`: wait for another file), another file is asked for
/// (`Next::Open`) or the viewer quits (`Next::Stop`).
fn hold(
    session: &Session,
    mut grant: Grant,
    commands: &Receiver<Command>,
    myself: &Sender<Command>,
    emit: &dyn Fn(Event),
) -> Next {
    let mut next_renewal = grant.renew_due();
    // A revocation, suspension or restriction reaches the document in
    // seconds: the push channel says when to renew at once. Without it
    // (a thread that cannot start), the lease alone, as before.
    let _watch = {
        let myself = myself.clone();
        session
            .watch(&grant, move |signal| {
                let _ = myself.send(Command::Recheck(signal));
            })
            .ok()
    };
    loop {
        let wait = next_renewal.saturating_duration_since(Instant::now());
        match commands.recv_timeout(wait) {
            Ok(Command::ReportCopy { chars, rows }) => {
                let detail = format!("{chars} characters to the clipboard");
                let result = session
                    .report_rows(&grant, UsageAction::Copy, rows as u64, Some(&detail))
                    .map_err(|e| Failure::from_client(&e));
                emit(Event::CopyReported(result));
            }
            Ok(Command::Export { doc, path }) => {
                emit(Event::Exported(export(session, &grant, &doc, path)));
            }
            Ok(Command::Print {
                doc,
                sheet,
                rows,
                command,
            }) => {
                emit(Event::Printed(print(
                    session, &grant, &doc, sheet, &rows, &command,
                )));
            }
            Ok(Command::Open(path)) => {
                // Best effort, as below; the grant (content key) drops here.
                let _ = session.report_event(&grant, UsageAction::Close, None);
                return Next::Open(path);
            }
            Ok(Command::Release) => {
                let _ = session.report_event(&grant, UsageAction::Close, None);
                return Next::Wait;
            }
            Ok(Command::Close) | Err(RecvTimeoutError::Disconnected) => {
                // Best effort: the audit log has the grant either way.
                let _ = session.report_event(&grant, UsageAction::Close, None);
                return Next::Stop;
            }
            Ok(Command::Unlock(_) | Command::Retry) => {}
            Ok(Command::Recheck(_)) | Err(RecvTimeoutError::Timeout) => match session
                .renew(&mut grant)
            {
                Ok(()) => {
                    next_renewal = grant.renew_due();
                    emit(Event::Renewed {
                        lease_deadline: Instant::now() + grant.time_left(),
                        notices: grant.notices().to_vec(),
                        audit_alarm: grant.witness_alarm().map(ToString::to_string),
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
                    return Next::Wait; // the grant (content key) is wiped as it drops
                }
            },
        }
    }
}

/// Records the export with the key server first (a refused or failed report
/// means no file), then writes a new file. A table is written as CSV into
/// memory first, and an XLSX workbook's list sheet is found first, so that
/// the report carries its rows and the canaries of an approved export go in
/// among them (PROTOCOL.md §7.8) before anything reaches the disk.
fn export(
    session: &Session,
    grant: &Grant,
    doc: &Document,
    path: PathBuf,
) -> Result<PathBuf, Failure> {
    let detail = format!("{} to {}", doc.export_summary(), path.display());
    let csv = if doc.exports_csv() {
        let mut buffer = irm_client::canary::WipingBuffer::with_capacity(1 << 20);
        doc.write_export(&mut buffer)
            .map_err(|e| Failure::Other(format!("cannot prepare the export: {e}")))?;
        let (with_canaries, _) = session
            .export_list(
                grant,
                buffer.as_slice(),
                Some(&detail),
                &mut irm_client::canary::OsRandom,
            )
            .map_err(|e| Failure::from_client(&e))?;
        Some(with_canaries)
    } else if let Some(original) = doc.xlsx_original()
        && let Ok(sheet) = crate::workbook_canary::prepare(original)
    {
        // A workbook's list sheet takes the canaries; one that cannot (no
        // list, formulas, tables...) is reported and written as it is.
        let receipt = session
            .report_export(grant, sheet.data_rows(), Some(&detail))
            .map_err(|e| Failure::from_client(&e))?;
        if receipt.canaries.is_empty() {
            None
        } else {
            Some(
                sheet
                    .with_canaries(
                        original,
                        &receipt.canaries,
                        &mut irm_client::canary::OsRandom,
                    )
                    .map_err(|e| Failure::Other(format!("cannot prepare the export: {e}")))?,
            )
        }
    } else {
        session
            .report_event(grant, UsageAction::Export, Some(&detail))
            .map_err(|e| Failure::from_client(&e))?;
        None
    };
    let written = File::create_new(&path).and_then(|mut file| {
        match &csv {
            Some(bytes) => std::io::Write::write_all(&mut file, bytes)?,
            None => doc.write_export(&mut file)?,
        }
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

/// Renders the rows with a watermark naming who prints, on which device,
/// when and which file; records the print with the key server (a refused or
/// failed report means nothing is spooled); then pipes the PDF, which only
/// ever exists in memory, to the print command.
fn print(
    session: &Session,
    grant: &Grant,
    doc: &Document,
    sheet: usize,
    rows: &[usize],
    command: &PrintCommand,
) -> Result<usize, Failure> {
    // Only tables print: the Print button exists only for them.
    let table = doc
        .table(sheet)
        .ok_or(Failure::Print(PrintError::NotATable))?;
    let font = print::load_font().map_err(Failure::Print)?;
    // On paper, the time that matters is when it was printed: now.
    let watermark = watermark_for(grant);
    let job = PrintJob {
        name: &doc.name,
        table,
        rows,
        watermark: &watermark,
    };
    let rendered = print::render(&job, &font).map_err(Failure::Print)?;
    let detail = format!("{} rows on {} pages", rows.len(), rendered.pages);
    session
        .report_rows(grant, UsageAction::Print, rows.len() as u64, Some(&detail))
        .map_err(|e| Failure::from_client(&e))?;
    command
        .spool(&rendered.pdf, &doc.name)
        .map_err(Failure::Print)?;
    Ok(rendered.pages)
}
