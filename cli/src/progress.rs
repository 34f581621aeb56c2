//! Moving bytes from a reader to a writer in large blocks, with a progress
//! bar on stderr when someone is watching.
//!
//! The bar is drawn only when stderr is a terminal, the command is neither
//! `--quiet` nor `--json`, and the input is known to be large; stdout never
//! carries anything but data (STYLE.md §12).

use std::io::{self, IsTerminal, Read, Write};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use zeroize::Zeroizing;

use crate::output::IO_BUFFER_LEN;

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

impl Drop for Progress {
    fn drop(&mut self) {
        // Success or failure, the bar goes away so that messages stand alone.
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Copies `reader` to `writer` in blocks of [`IO_BUFFER_LEN`], returning the
/// number of bytes. Errors carry `reading`/`writing` as context, which name
/// the files. The buffer may hold plaintext, so it is wiped afterwards.
pub(crate) fn pump(
    reader: &mut dyn Read,
    reading: &dyn Fn() -> String,
    writer: &mut dyn Write,
    writing: &dyn Fn() -> String,
    progress: &Progress,
) -> Result<u64> {
    let mut buf = Zeroizing::new(vec![0u8; IO_BUFFER_LEN]);
    let mut total = 0u64;
    loop {
        // Fill the whole block first: an opener hands out one chunk per
        // read, and large writes are what makes the output fast.
        let mut filled = 0;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err).with_context(reading),
            }
        }
        if filled == 0 {
            return Ok(total);
        }
        writer.write_all(&buf[..filled]).with_context(writing)?;
        total += filled as u64;
        progress.inc(filled);
        if filled < buf.len() {
            // End of input; the next read would return 0 anyway, but a
            // terminal on stdin would wait for a second end-of-file.
            return Ok(total);
        }
    }
}
