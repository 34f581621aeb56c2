//! `irm`: enroll, seal, open, inspect and recover sealed customer data
//! files, and administer the key server. This file
//! only parses the command line, runs the command and turns its error into an
//! exit code; the commands live in `commands/`, the exit-code table in
//! `exit.rs`.

#![forbid(unsafe_code)]

mod audit_report;
mod cli;
mod commands;
mod delivery;
mod exit;
mod keyfile;
mod online;
mod output;
mod progress;
mod report;
mod siem;
mod text;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors exit 2 here, printed by clap.
    let cli = cli::Cli::parse();
    let json = cli.command.json();
    match commands::run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report::failure(&err, json),
    }
}
