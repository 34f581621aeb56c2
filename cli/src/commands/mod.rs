//! One module per subcommand; this one dispatches to them and holds what
//! several share (sizing the worker threads).

mod inspect;
mod keygen;
mod recover;
mod seal;

use anyhow::Result;
use irm_core::StreamOptions;

use crate::cli::Command;

pub(crate) fn run(command: &Command) -> Result<()> {
    match command {
        Command::Keygen(args) => keygen::run(args),
        Command::Seal(args) => seal::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Recover(args) => recover::run(args),
    }
}

/// Stream options for `threads` threads. irm-core runs batches on rayon's
/// global pool, which by default has one thread per CPU; sizing the pool here
/// makes `--threads N` mean N.
fn stream_options(threads: usize) -> StreamOptions {
    if threads > 1 {
        // Fails only if the pool already exists, which it cannot this early.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("irm-crypto-{i}"))
            .build_global();
    }
    StreamOptions {
        threads,
        ..Default::default()
    }
}
