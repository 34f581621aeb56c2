//! `irm keygen`: a new key server key pair, the secret in KEY (mode 0600 from
//! the moment it exists) and the public key in KEY.pub.
//!
//! The secret is put in place before the public key, so a failure never
//! leaves a public key whose secret does not exist (anything sealed to it
//! would be lost).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use irm_core::KasSecretKey;

use crate::cli::KeygenArgs;
use crate::exit::Refusal;
use crate::keyfile;
use crate::output::AtomicFile;
use crate::text;

pub(crate) fn run(args: &KeygenArgs) -> Result<()> {
    if args.output.as_os_str() == "-" {
        return Err(Refusal::usage("keygen writes files, not standard output")
            .hint("give a path with -o, such as -o server-key")
            .into());
    }
    let secret_path = args.output.clone();
    let public_path = public_path_for(&secret_path);
    // Check both before writing either.
    for path in [&secret_path, &public_path] {
        if !args.force && std::fs::symlink_metadata(path).is_ok() {
            return Err(Refusal::usage(format!("{} already exists", path.display()))
                .hint(
                    "use --force to replace the key pair; files sealed to the old key \
                     can then be opened only with a copy of the old secret key",
                )
                .into());
        }
    }

    let key = KasSecretKey::generate().context("generating a key pair")?;
    let created = text::now_unix();

    let mut secret = AtomicFile::create(&secret_path, args.force, 0o600)?;
    secret
        .write_all(keyfile::secret_file_text(&key, created).as_bytes())
        .with_context(|| format!("writing {}", secret_path.display()))?;
    let mut public = AtomicFile::create(&public_path, args.force, 0o644)?;
    public
        .write_all(format!("{}\n", key.public_key().to_text()).as_bytes())
        .with_context(|| format!("writing {}", public_path.display()))?;

    secret.commit()?;
    if let Err(err) = public.commit() {
        // Take the new secret back out, so a retry starts clean.
        let _ = std::fs::remove_file(&secret_path);
        return Err(err);
    }

    if !args.quiet {
        eprintln!(
            "wrote the key server secret key to {} (mode 0600) and its public key to {}\n\
             key id: {}\n\
             Whoever holds {} can read every file sealed to it: keep it on the key server only.",
            secret_path.display(),
            public_path.display(),
            key.key_id(),
            secret_path.display()
        );
    }
    Ok(())
}

/// `server-key` -> `server-key.pub` (appended, not replacing an extension).
fn public_path_for(secret: &Path) -> PathBuf {
    let mut name = OsString::from(secret.as_os_str());
    name.push(".pub");
    PathBuf::from(name)
}
