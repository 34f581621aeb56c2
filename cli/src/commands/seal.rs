//! `irm seal`: builds the policy and header from the arguments and streams
//! the input through a `Sealer` into an atomic output file (or stdout).
//!
//! Online (no `--kas-public-key`), the content key is wrapped to the enrolled
//! key server's current key and URL, and the file is registered with the
//! server (`POST /v1/files`) before the output takes its name, so that every
//! file sealed online can be listed and revoked by an administrator. Both
//! are the client crate's ([`SealTarget`]); this module owns the arguments,
//! the output and the report.
//!
//! Every check on the arguments and the output path happens before the first
//! byte is read, so a refusal costs nothing and changes nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use irm_client::{HeaderOptions, SealTarget};
use irm_core::{Metadata, Policy};
use serde::Serialize;

use crate::cli::SealArgs;
use crate::exit::Refusal;
use crate::keyfile;
use crate::online;
use crate::output::{Destination, Input, stdout_is_terminal};
use crate::progress::{Metered, Progress};
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
    /// The key server the file was registered with (online sealing only).
    #[serde(skip_serializing_if = "Option::is_none")]
    registered_with: Option<String>,
}

/// Offline with `--kas-public-key` and `--kas-url` (`Ok(None)` here), else
/// online through the enrolled device's session.
fn online_session(args: &SealArgs) -> Result<Option<irm_client::Session>> {
    match (&args.kas_public_key, &args.kas_url) {
        (Some(_), Some(_)) => Ok(None),
        // clap makes each of the two require the other.
        (Some(_), None) | (None, Some(_)) => {
            Err(Refusal::usage("--kas-public-key and --kas-url go together").into())
        }
        (None, None) => Ok(Some(online::unlock(&args.passphrase)?)),
    }
}

/// `--kas-public-key` and `--kas-url`.
fn offline_target(args: &SealArgs) -> Result<SealTarget<'static>> {
    match (&args.kas_public_key, &args.kas_url) {
        (Some(path), Some(url)) => Ok(SealTarget::Offline {
            key: keyfile::read_public(path)?,
            url: url.clone(),
        }),
        _ => Err(Refusal::usage("--kas-public-key and --kas-url go together").into()),
    }
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
    let policy = Policy::builder()
        .grants(args.grants())
        .not_before(args.not_before)
        .not_after(args.expires)
        .max_lease_secs(args.max_lease)
        .watermark_required(!args.no_watermark)
        .classification(args.classification.clone())
        .build()
        .context("the policy is not valid")?;
    let session = online_session(args)?;
    let target = match &session {
        Some(session) => SealTarget::Online(session),
        None => offline_target(args)?,
    };

    let mut opened = input.open()?;
    let metadata = Metadata {
        file_name: input.path().and_then(file_name_of),
        media_type: input.path().map(|p| Metadata::media_type_for(p).to_owned()),
        plaintext_len: opened.regular_len,
    };
    let options = HeaderOptions {
        chunk_len: Some(args.chunk_size),
        // Online, the client records the enrolled user.
        issuer: args
            .issuer
            .clone()
            .or_else(|| session.is_none().then(login_name).flatten()),
        allow_unknown_recipients: args.allow_unknown_recipients,
    };
    let pending = target
        .prepare(policy, metadata, options)
        .context(match &target {
            SealTarget::Online(_) => "preparing the header with the key server's current key",
            SealTarget::Offline { .. } => "building the sealed header",
        })?;

    let progress = Progress::new(opened.regular_len, args.quiet || args.json);
    // World-readable like any new file (minus the umask): a sealed file is
    // meant to be passed around.
    let output = destination.create(args.force, 0o666)?;
    // The sealer reads straight into its chunk buffer and writes whole
    // batches: no user-space copy beyond the encryption itself. Online, the
    // file is registered before `commit` gives the output its name.
    let sealed = pending
        .seal(
            &mut Metered::new(&mut opened.reader, &progress),
            output,
            args.threads.stream_options(),
        )
        .with_context(|| format!("sealing {input} into {destination}"))?;
    sealed.output.commit()?;
    drop(progress);

    let registered_with = match (&session, &sealed.registered) {
        (Some(session), Some(_)) => Some(session.server_url().to_owned()),
        _ => None,
    };
    let (plaintext_len, sealed_len) = (sealed.plaintext_len, sealed.sealed_len);
    let file_id = sealed.file_id.to_string();
    if args.json {
        print_json(&SealReport {
            ok: true,
            input: input.path().map(|p| p.display().to_string()),
            output: destination.path().map(|p| p.display().to_string()),
            file_id,
            plaintext_len,
            sealed_len,
            registered_with,
        });
    } else if !args.quiet {
        let registered = registered_with
            .map(|url| format!(", registered with {url}"))
            .unwrap_or_default();
        eprintln!(
            "sealed {input} into {destination}: {}, file id {file_id}{registered}",
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

/// The login name from the environment, the issuer of a file sealed offline.
fn login_name() -> Option<String> {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|name| !name.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_output_appends_irm() {
        assert_eq!(
            sealed_path_for(Path::new("d/calls.csv")),
            PathBuf::from("d/calls.csv.irm")
        );
    }
}
