//! One module per subcommand (`admin` holds `irm admin ...`, with its
//! approval requests and rules in `approval`; `audit`
//! the offline `irm audit ...`); this one only dispatches to them.

mod admin;
mod approval;
mod audit;
mod digest;
mod enroll;
mod export;
mod info;
mod inspect;
mod invite;
mod keygen;
mod open;
mod recover;
mod report;
mod review;
mod seal;
mod trace;
mod unseal;

use anyhow::Result;

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
        Command::Export(args) => export::run(args),
        Command::Recover(args) => recover::run(args),
        Command::Trace(args) => trace::run(args),
    }
}
