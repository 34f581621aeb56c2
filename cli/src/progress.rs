//! The progress bar on stderr when someone is watching, and the metered
//! reader and writer that feed it while irm-core moves the bytes.
//!
//! The bar is drawn only when stderr is a terminal, the command is neither
//! `--quiet` nor `--json`, and the input is known to be large; stdout never
//! carries anything but data (STYLE.md §12).

use std::io::{self, IsTerminal, Read, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Inputs at least this large get a progress bar.
const PROGRESS_MIN_LEN: u64 = 8 << 20;

/// A progress bar, or nothing.
pub(crate) struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar for `total` bytes, if the conditions above hold.
    pub(crate) fn new(total: Option<u64>, silent: bool) -> Self {
        let show = !silent && io::stderr().is_terminal();
        let bar = total
            .filter(|len| show && *len >= PROGRESS_MIN_LEN)
            .map(|len| {
                let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                ) {
                    bar.set_style(style);
                }
                bar
            });
        Self(bar)
    }

    fn inc(&self, n: usize) {
        if let Some(bar) = &self.0 {
            bar.inc(n as u64);
        }
    }
}

/// A reader or writer that advances the progress bar by what passes through
/// it, so that irm-core can move the data with its own vectored I/O.
pub(crate) struct Metered<'a, T> {
    inner: T,
    progress: &'a Progress,
}

impl<'a, T> Metered<'a, T> {
    pub(crate) fn new(inner: T, progress: &'a Progress) -> Self {
        Self { inner, progress }
    }
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n);
        Ok(n)
    }

    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        let n = self.inner.read_vectored(bufs)?;
        self.progress.inc(n);
        Ok(n)
    }
}

impl<W: Write> Write for Metered<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.inc(n);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        self.progress.inc(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Success or failure, the bar goes away so that messages stand alone.
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
