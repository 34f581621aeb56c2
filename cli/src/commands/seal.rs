//! `irm seal`: builds the policy and header from the arguments and streams
//! the input through a `Sealer` into an atomic output file (or stdout).
//!
//! Every check on the arguments and the output path happens before the first
//! byte is read, so a refusal costs nothing and changes nothing.

use std::ffi::OsStr;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use irm_core::{EnvelopeBuilder, Metadata, Policy, Sealer, TAG_LEN};
use serde::Serialize;

use crate::cli::SealArgs;
use crate::exit::Refusal;
use crate::keyfile;
use crate::output::{Destination, IO_BUFFER_LEN, Input, stdout_is_terminal};
use crate::progress::{Progress, pump};
use crate::report::print_json;
use crate::text;

/// The `--json` success object; its shape is documented in `irm seal --help`.
#[derive(Serialize)]
struct SealReport {
    ok: bool,
    input: Option<String>,
    output: Option<String>,
    file_id: String,
    plaintext_len: u64,
    sealed_len: u64,
}

pub(crate) fn run(args: &SealArgs) -> Result<()> {
    let input = Input::from_arg(&args.input);
    let destination = match (&args.output, &input) {
        (Some(out), _) => Destination::from_arg(out),
        (None, Input::Path(path)) => Destination::Path(sealed_path_for(path)),
        (None, Input::Stdin) => Destination::Stdout { explicit: false },
    };
    if matches!(destination, Destination::Stdout { explicit: false }) && stdout_is_terminal() {
        return Err(
            Refusal::usage("refusing to write a sealed file to the terminal")
                .hint("redirect the output, give a file with -o, or use -o - to insist")
                .into(),
        );
    }
    if args.json && destination.is_stdout() {
        return Err(Refusal::usage(
            "--json prints on standard output, which would carry the sealed file",
        )
        .hint("give the output file with -o")
        .into());
    }
    destination.check(&input, args.force)?;

    let now = text::now_unix();
    if let Some(expires) = args.expires {
        if expires <= now {
            return Err(Refusal::usage(format!(
                "--expires {} is already past, so nobody could open the file",
                text::time(expires)
            ))
            .hint("give a future time, such as 2027-01-31T00:00:00Z or 30d")
            .into());
        }
    }
    let policy = Policy::new(
        args.grants(),
        args.not_before,
        args.expires,
        args.max_lease,
        !args.no_watermark,
        args.label.clone(),
    )
    .context("the policy is not valid")?;
    let kas = keyfile::read_public(&args.kas_public_key)?;

    let mut opened = input.open()?;
    let metadata = Metadata {
        file_name: input.path().and_then(file_name_of),
        media_type: input.path().map(|p| media_type_of(p).to_owned()),
        plaintext_len: opened.regular_len,
    };
    let mut builder = EnvelopeBuilder::new(policy)
        .key_server(args.kas_url.clone(), kas)
        .metadata(metadata)
        .chunk_len(args.chunk_size);
    if let Some(issuer) = issuer(args) {
        builder = builder.issuer(issuer);
    }
    let header = builder.build().context("building the sealed header")?;

    let options = super::stream_options(args.threads.get());
    let progress = Progress::new(opened.regular_len, args.quiet || args.json);
    // World-readable like any new file (minus the umask): a sealed file is
    // meant to be passed around.
    let output = destination.create(args.force, 0o666)?;
    let writing = || format!("writing {destination}");
    let mut sealer = Sealer::new(
        &header,
        BufWriter::with_capacity(IO_BUFFER_LEN, output),
        options,
    )
    .with_context(writing)?;
    let plaintext_len = pump(
        &mut opened.reader,
        &|| format!("reading {input}"),
        &mut sealer,
        &writing,
        &progress,
    )?;
    let output = sealer
        .finish()
        .with_context(|| format!("sealing {input} into {destination}"))?
        .into_inner()
        .map_err(|err| err.into_error())
        .with_context(writing)?;
    output.commit()?;
    drop(progress);

    let chunk_len = u64::from(header.header().chunk_len());
    let sealed_len = header.header().encoded_len() as u64
        + plaintext_len
        + plaintext_len.div_ceil(chunk_len).max(1) * TAG_LEN as u64;
    let file_id = header.header().file_id().to_string();
    if args.json {
        print_json(&SealReport {
            ok: true,
            input: input.path().map(|p| p.display().to_string()),
            output: destination.path().map(|p| p.display().to_string()),
            file_id,
            plaintext_len,
            sealed_len,
        });
    } else if !args.quiet {
        eprintln!(
            "sealed {input} into {destination}: {}, file id {file_id}",
            text::bytes(plaintext_len)
        );
    }
    Ok(())
}

/// `calls.csv` -> `calls.csv.irm`.
fn sealed_path_for(input: &Path) -> PathBuf {
    let mut name = input.as_os_str().to_owned();
    name.push(".irm");
    PathBuf::from(name)
}

/// The input's base name for the encrypted metadata, with control
/// characters (which the format refuses) replaced.
fn file_name_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy();
    Some(
        name.chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect(),
    )
}

/// The media type guessed from the extension.
fn media_type_of(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => "text/csv",
        Some("tsv") => "text/tab-separated-values",
        Some("txt") => "text/plain",
        Some("json") => "application/json",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("xls") => "application/vnd.ms-excel",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// `--issuer`, else the login name from the environment.
fn issuer(args: &SealArgs) -> Option<String> {
    args.issuer
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|name| !name.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_follow_the_extension_case_insensitively() {
        assert_eq!(media_type_of(Path::new("a/calls.CSV")), "text/csv");
        assert_eq!(media_type_of(Path::new("x.jpeg")), "image/jpeg");
        assert_eq!(
            media_type_of(Path::new("x.tsv")),
            "text/tab-separated-values"
        );
        assert_eq!(
            media_type_of(Path::new("noext")),
            "application/octet-stream"
        );
    }

    #[test]
    fn the_default_output_appends_irm() {
        assert_eq!(
            sealed_path_for(Path::new("d/calls.csv")),
            PathBuf::from("d/calls.csv.irm")
        );
    }
}
