//! Where commands read from and write to: a path or `-` for standard input,
//! and an output that is either standard output or an [`AtomicFile`].
//!
//! An `AtomicFile` is a temporary file next to the destination that becomes
//! the destination only through [`Output::commit`]: data synced, renamed into
//! place (never over an existing file unless asked), directory synced. Any
//! earlier failure drops it, which deletes it, so a failed command leaves no
//! output and no temporary file (STYLE.md §6). What is written is the
//! commands' business.

use std::fmt;
use std::fs::{self, File, Permissions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

use crate::exit::Refusal;

/// Size of the I/O buffers between the files and the sealer or opener.
pub(crate) const IO_BUFFER_LEN: usize = 1 << 20;

fn is_dash(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// What a command reads: a file or standard input.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    Stdin,
    Path(PathBuf),
}

/// An opened input.
pub(crate) struct OpenedInput {
    pub(crate) reader: Box<dyn Read>,
    /// The length, when the input is a regular file.
    pub(crate) regular_len: Option<u64>,
}

impl Input {
    pub(crate) fn from_arg(path: &Path) -> Self {
        if is_dash(path) {
            Self::Stdin
        } else {
            Self::Path(path.to_owned())
        }
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Self::Stdin => None,
            Self::Path(path) => Some(path),
        }
    }

    pub(crate) fn open(&self) -> Result<OpenedInput> {
        match self {
            Self::Stdin => Ok(OpenedInput {
                reader: Box::new(io::stdin().lock()),
                regular_len: None,
            }),
            Self::Path(path) => {
                let file =
                    File::open(path).with_context(|| format!("opening {}", path.display()))?;
                let meta = file
                    .metadata()
                    .with_context(|| format!("reading {}", path.display()))?;
                if meta.is_dir() {
                    return Err(Refusal::usage(format!("{} is a directory", path.display()))
                        .hint("give a file, or - for standard input")
                        .into());
                }
                Ok(OpenedInput {
                    reader: Box::new(file),
                    regular_len: meta.is_file().then_some(meta.len()),
                })
            }
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdin => f.write_str("standard input"),
            Self::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Where a command writes.
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    /// Standard output; `explicit` when the user wrote `-o -`.
    Stdout {
        explicit: bool,
    },
    Path(PathBuf),
}

impl Destination {
    pub(crate) fn from_arg(path: &Path) -> Self {
        if is_dash(path) {
            Self::Stdout { explicit: true }
        } else {
            Self::Path(path.to_owned())
        }
    }

    pub(crate) fn is_stdout(&self) -> bool {
        matches!(self, Self::Stdout { .. })
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Self::Stdout { .. } => None,
            Self::Path(path) => Some(path),
        }
    }

    /// [`Destination::check`] for an output that will carry `what` (the
    /// plaintext, an export), which must not share standard output with a
    /// `--json` report.
    pub(crate) fn check_beside_json(
        &self,
        input: &Input,
        json: bool,
        force: bool,
        what: &str,
    ) -> Result<()> {
        if json && self.is_stdout() {
            return Err(Refusal::usage(format!(
                "--json prints on standard output, which would carry {what}"
            ))
            .hint("give the output file with -o FILE")
            .into());
        }
        self.check(input, force)
    }

    /// Refuses, before any work, an output that is the input, or one that
    /// exists when `force` is not given (STYLE.md §6, as rage does).
    pub(crate) fn check(&self, input: &Input, force: bool) -> Result<()> {
        let Self::Path(out) = self else {
            return Ok(());
        };
        if let Some(inp) = input.path() {
            if same_file(inp, out) {
                return Err(Refusal::usage(format!(
                    "the input and the output are the same file ({})",
                    out.display()
                ))
                .hint("write the output to another path with -o")
                .into());
            }
        }
        match fs::symlink_metadata(out) {
            Ok(meta) if meta.is_dir() => Err(Refusal::usage(format!(
                "the output {} is a directory",
                out.display()
            ))
            .hint("give a file path with -o")
            .into()),
            Ok(_) if !force => Err(Refusal::usage(format!("{} already exists", out.display()))
                .hint("use --force to replace it, or choose another path with -o")
                .into()),
            _ => Ok(()),
        }
    }

    /// Starts the output. A file is created as a temporary file with `mode`
    /// (before the umask) next to the destination.
    pub(crate) fn create(&self, force: bool, mode: u32) -> Result<Output> {
        match self {
            Self::Stdout { .. } => Ok(Output::Stdout(io::stdout().lock())),
            Self::Path(path) => Ok(Output::File(AtomicFile::create(path, force, mode)?)),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdout { .. } => f.write_str("standard output"),
            Self::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Whether two paths name the same file (same device and inode), following
/// symlinks. False when either does not exist.
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// An output being written.
pub(crate) enum Output {
    Stdout(io::StdoutLock<'static>),
    File(AtomicFile),
}

impl Output {
    /// Makes the output final: flushes standard output, or syncs and renames
    /// the temporary file into place.
    pub(crate) fn commit(self) -> Result<()> {
        match self {
            Self::Stdout(mut out) => out.flush().context("writing standard output"),
            Self::File(file) => file.commit(),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(out) => out.write(buf),
            Self::File(file) => file.write(buf),
        }
    }

    // Forwarded so that the opener's batches of verified chunks stay one
    // system call (the default would write the first chunk alone).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Stdout(out) => out.write_vectored(bufs),
            Self::File(file) => file.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(out) => out.flush(),
            Self::File(file) => file.flush(),
        }
    }
}

/// A temporary file in the destination's directory that replaces the
/// destination only on [`AtomicFile::commit`]; dropped, it deletes itself.
pub(crate) struct AtomicFile {
    tmp: NamedTempFile,
    dest: PathBuf,
    overwrite: bool,
    /// Bytes written since the flusher was last asked to sync.
    unsynced: u64,
    /// Started once the file passes [`EARLY_SYNC_BYTES`].
    flusher: Option<Flusher>,
}

/// How much is written before the disk is asked to start on it. Linux
/// holds dirty pages back until about a tenth of memory is dirty, so
/// without this a file of a gigabyte reaches the disk only at the final
/// fsync, after all the decryption: the time is the sum of the two.
/// Syncing as it goes lets the disk work while the next chunks are
/// decrypted, so the time is nearer the larger of the two (`dd
/// conv=fsync` pays the sum: docs/PERFORMANCE.md §4).
const EARLY_SYNC_BYTES: u64 = 32 << 20;

/// A thread that syncs the file's data whenever asked, so that the writer
/// never waits for the disk until the end.
struct Flusher {
    /// Capacity one: a request made while a sync runs is folded into the
    /// next, which covers everything written by then.
    wake: mpsc::SyncSender<()>,
    thread: JoinHandle<io::Result<()>>,
}

impl Flusher {
    fn start(file: &File) -> io::Result<Self> {
        let file = file.try_clone()?;
        let (wake, asked) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("irm-flush".into())
            .spawn(move || {
                for () in asked {
                    file.sync_data()?;
                }
                Ok(())
            })?;
        Ok(Self { wake, thread })
    }

    fn ask(&self) {
        // Full: a sync is already waiting to run and will cover this.
        // Disconnected: the thread stopped on an error, which `finish` reports.
        let _ = self.wake.try_send(());
    }

    /// Waits for the syncs asked for; their first error, if any.
    fn finish(self) -> io::Result<()> {
        drop(self.wake);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the file sync thread panicked")))
    }
}

impl AtomicFile {
    /// Creates the temporary file with `mode` (the umask applies on top), so
    /// a key file is never readable by others, not even for an instant.
    pub(crate) fn create(dest: &Path, overwrite: bool, mode: u32) -> Result<Self> {
        let dir = parent_dir(dest);
        let tmp = tempfile::Builder::new()
            .prefix(".irm-")
            .suffix(".tmp")
            .permissions(Permissions::from_mode(mode))
            .tempfile_in(dir)
            .map_err(|err| {
                if dir.is_dir() {
                    err
                } else {
                    // tempfile's own message names the random temporary path.
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("the directory {} does not exist", dir.display()),
                    )
                }
            })
            .with_context(|| format!("cannot create {}", dest.display()))?;
        Ok(Self {
            tmp,
            dest: dest.to_owned(),
            overwrite,
            unsynced: 0,
            flusher: None,
        })
    }

    /// Counts `n` bytes written and asks for an early sync every
    /// [`EARLY_SYNC_BYTES`].
    fn wrote(&mut self, n: usize) -> io::Result<()> {
        self.unsynced += n as u64;
        if self.unsynced < EARLY_SYNC_BYTES {
            return Ok(());
        }
        self.unsynced = 0;
        if self.flusher.is_none() {
            self.flusher = Some(Flusher::start(self.tmp.as_file())?);
        }
        if let Some(flusher) = &self.flusher {
            flusher.ask();
        }
        Ok(())
    }

    /// Syncs the data, renames the file into place and syncs the directory.
    pub(crate) fn commit(mut self) -> Result<()> {
        let dest = self.dest;
        if let Some(flusher) = self.flusher.take() {
            flusher
                .finish()
                .with_context(|| format!("writing {}", dest.display()))?;
        }
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("writing {}", dest.display()))?;
        let persisted = if self.overwrite {
            self.tmp.persist(&dest)
        } else {
            self.tmp.persist_noclobber(&dest)
        };
        // On failure `PersistError` hands the temporary file back; dropping
        // it here deletes it.
        if let Err(err) = persisted {
            if err.error.kind() == io::ErrorKind::AlreadyExists {
                return Err(Refusal::usage(format!("{} already exists", dest.display()))
                    .hint("use --force to replace it, or choose another path with -o")
                    .into());
            }
            return Err(err.error).with_context(|| format!("renaming into {}", dest.display()));
        }
        // The file is complete and in place; a failure to make the rename
        // durable is worth a warning but does not undo the command.
        if let Err(err) = File::open(parent_dir(&dest)).and_then(|dir| dir.sync_all()) {
            eprintln!(
                "warning: could not sync the directory of {}: {err}",
                dest.display()
            );
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.wrote(n)?;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.tmp.write_vectored(bufs)?;
        self.wrote(n)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// The directory a path is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Whether standard output is a terminal (sealed bytes must not go there
/// unless the user asked with `-o -`).
pub(crate) fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_file_is_synced_as_it_grows_and_lands_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("big.bin");
        let mut file = AtomicFile::create(&dest, false, 0o600).unwrap();
        let piece: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let pieces = (EARLY_SYNC_BYTES >> 20) as usize + 8;
        for i in 0..pieces {
            // Both ways the commands write: plain and vectored.
            if i % 2 == 0 {
                file.write_all(&piece).unwrap();
            } else {
                let (a, b) = piece.split_at(1000);
                let n = file
                    .write_vectored(&[io::IoSlice::new(a), io::IoSlice::new(b)])
                    .unwrap();
                file.write_all(&piece[n..]).unwrap();
            }
        }
        assert!(file.flusher.is_some(), "syncing started past the threshold");
        assert!(!dest.exists(), "nothing in place before the commit");
        file.commit().unwrap();
        let written = fs::read(&dest).unwrap();
        assert_eq!(written.len(), pieces << 20);
        assert!(written.chunks(1 << 20).all(|c| c == piece.as_slice()));
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_small_file_starts_no_sync_thread() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("small.txt");
        let mut file = AtomicFile::create(&dest, false, 0o600).unwrap();
        file.write_all(b"customer,phone\n").unwrap();
        assert!(file.flusher.is_none());
        file.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"customer,phone\n");
    }
}
