//! `irm export request FILE --reason TEXT [--for export|copy|print]`: a
//! person asks administrators to let this device take one file's plaintext
//! out, once, in that way (PROTOCOL.md §7.3).
//! The file may be named by its path (the id is read from its header) or by
//! its id.

use std::fs::File;
use std::io::BufReader;

use anyhow::{Context, Result};
use irm_core::{FileId, SealedHeader};

use crate::cli::{ExportArgs, ExportCommand};
use crate::online;
use crate::report::Out;

pub(crate) fn run(args: &ExportArgs) -> Result<()> {
    let ExportCommand::Request { file, reason, how } = &args.command;
    let file_id = file_id(file)?;
    let mut session = online::unlock(&args.passphrase)?;
    session.set_reason(Some(reason)).context("--reason")?;
    let answer = session
        .request_take_out(&file_id.to_string(), *how)
        .with_context(|| format!("asking to take {file} out ({})", how.as_str()))?;
    super::approval::show_filed(
        &session,
        &answer,
        &Out {
            json: args.json,
            qr: false,
        },
    )
}

/// The id of the file at `arg`, or `arg` itself if it is an id and no such
/// file exists (also how `irm admin file ...` and `audit tail --file` name a file).
pub(super) fn file_id(arg: &str) -> Result<FileId> {
    match File::open(arg) {
        Ok(file) => Ok(SealedHeader::read_from(&mut BufReader::new(file))
            .with_context(|| format!("reading the header of {arg}"))?
            .file_id()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => arg.parse().map_err(|_| {
            anyhow::Error::new(e).context(format!(
                "{arg} is neither a sealed file nor a file id (32 hex digits)"
            ))
        }),
        Err(e) => Err(anyhow::Error::new(e).context(format!("opening {arg}"))),
    }
}
