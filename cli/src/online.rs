//! What every online command shares: where the passphrase comes from
//! (`--passphrase-file`, then `$IRM_PASSPHRASE`, then a prompt on the
//! terminal), and unlocking this device's credentials into a
//! [`Session`](irm_client::Session).
//!
//! What the commands ask the key server is theirs; the client crate does the
//! talking.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, Result};
use irm_client::{Passphrase, Session, config_dir};
use zeroize::Zeroizing;

use crate::cli::PassphraseArg;
use crate::exit::Refusal;

/// The environment variable scripts and tests use to give the passphrase.
pub(crate) const PASSPHRASE_ENV: &str = "IRM_PASSPHRASE";
/// Passphrase files are one line; anything larger is the wrong file.
const MAX_PASSPHRASE_FILE_LEN: u64 = 4096;
/// The shortest passphrase accepted at enrollment.
const MIN_PASSPHRASE_CHARS: usize = 8;

/// Whether to ask twice (choosing a passphrase) or once (unlocking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    Choose,
    Unlock,
}

/// The passphrase, from the first source that has one.
pub(crate) fn passphrase(arg: &PassphraseArg, ask: Ask) -> Result<Passphrase> {
    let passphrase = if let Some(path) = &arg.passphrase_file {
        read_passphrase_file(path)?
    } else if let Some(text) = std::env::var_os(PASSPHRASE_ENV) {
        let text = text.into_string().map_err(|_| {
            Refusal::usage(format!("${PASSPHRASE_ENV} is not valid UTF-8"))
                .hint("set it to the passphrase as plain text")
        })?;
        Passphrase::new(text)?
    } else if std::io::stdin().is_terminal() {
        prompt(ask)?
    } else {
        return Err(Refusal::usage(
            "a passphrase is needed to unlock this device's keys, and there is no terminal to ask on",
        )
        .hint(format!(
            "give it with --passphrase-file FILE or in ${PASSPHRASE_ENV}"
        ))
        .into());
    };
    if ask == Ask::Choose && passphrase.expose_secret().chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(Refusal::usage(format!(
            "the passphrase is shorter than {MIN_PASSPHRASE_CHARS} characters"
        ))
        .hint("choose a longer passphrase: it is all that protects this device's keys")
        .into());
    }
    Ok(passphrase)
}

fn read_passphrase_file(path: &Path) -> Result<Passphrase> {
    let file = File::open(path)
        .with_context(|| format!("opening the passphrase file {}", path.display()))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_PASSPHRASE_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the passphrase file {}", path.display()))?;
    if bytes.len() as u64 > MAX_PASSPHRASE_FILE_LEN {
        return Err(Refusal::usage(format!(
            "{} is too large to be a passphrase file",
            path.display()
        ))
        .hint("put the passphrase alone on the file's first line")
        .into());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Refusal::usage(format!("{} is not UTF-8 text", path.display()))
            .hint("put the passphrase alone on the file's first line")
    })?;
    // The first line only, so an editor's trailing newline does not count.
    let line = text.lines().next().unwrap_or("");
    Ok(Passphrase::new(line)?)
}

fn prompt(ask: Ask) -> Result<Passphrase> {
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .context("reading the passphrase from the terminal")
    };
    match ask {
        Ask::Unlock => Ok(Passphrase::new(
            read("Passphrase for this device: ")?.as_str(),
        )?),
        Ask::Choose => {
            let first = read("Choose a passphrase to protect this device's keys: ")?;
            let second = read("Type it again: ")?;
            if *first != *second {
                return Err(Refusal::usage("the two passphrases differ")
                    .hint("run the command again and type the same passphrase twice")
                    .into());
            }
            Ok(Passphrase::new(first.as_str())?)
        }
    }
}

/// Unlocks this device's credentials.
pub(crate) fn unlock(arg: &PassphraseArg) -> Result<Session> {
    let dir = config_dir()?;
    // Check enrollment before asking for a passphrase that could not help.
    irm_client::DeviceConfig::load(&dir)?;
    let passphrase = passphrase(arg, Ask::Unlock)?;
    Ok(Session::unlock(&dir, &passphrase)?)
}

/// Tells the person, on stderr, what the key server said with a grant
/// (PROTOCOL.md §4.3): each notice comes once, so it is never left unsaid.
pub(crate) fn tell_notices(grant: &irm_client::Grant) {
    for notice in grant.notices() {
        eprintln!(
            "NOTICE ({}): {}",
            crate::text::time(notice.at),
            crate::text::printable(&notice.message())
        );
    }
    if let Some(alarm) = grant.witness_alarm() {
        eprintln!("WARNING: {}", crate::text::printable(&alarm.to_string()));
    }
}
