//! One module per subcommand (`admin` holds all of `irm admin ...`); this one dispatches to them and holds what
//! several share (sizing the worker threads).

mod admin;
mod audit;
mod enroll;
mod info;
mod inspect;
mod keygen;
mod open;
mod recover;
mod seal;

use anyhow::Result;
use irm_core::StreamOptions;

use crate::cli::Command;

pub(crate) fn run(command: &Command) -> Result<()> {
    match command {
        Command::Keygen(args) => keygen::run(args),
        Command::Enroll(args) => enroll::run(args),
        Command::Seal(args) => seal::run(args),
        Command::Info(args) => info::run(args),
        Command::Open(args) => open::run(args),
        Command::Admin(args) => admin::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Recover(args) => recover::run(args),
    }
}

/// Stream options for `threads` threads (irm-core starts exactly that many,
/// the calling thread included).
fn stream_options(threads: usize) -> StreamOptions {
    StreamOptions {
        threads,
        ..Default::default()
    }
}
