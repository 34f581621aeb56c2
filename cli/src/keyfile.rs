//! Key server key files: reading the public key for sealing and the secret
//! key for recovery (warning when others can read it), and the text written
//! by `irm keygen`. The key formats themselves belong to `irm_core`.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use irm_core::{KasPublicKey, KasSecretKey};
use zeroize::Zeroizing;

use crate::exit::Refusal;
use crate::text;

/// Key files are a few lines; anything larger is the wrong file.
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// Reads a whole key file as UTF-8 into a buffer that is wiped afterwards.
fn read_key_text(path: &Path, what: &str) -> Result<(File, Zeroizing<String>)> {
    let mut file =
        File::open(path).with_context(|| format!("opening the {what} {}", path.display()))?;
    let mut bytes = Zeroizing::new(Vec::new());
    (&mut file)
        .take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the {what} {}", path.display()))?;
    if bytes.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(
            Refusal::failure(format!("{} is too large to be a {what}", path.display()))
                .hint("use the file written by `irm keygen`")
                .into(),
        );
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => Zeroizing::new(text.to_owned()),
        Err(_) => {
            return Err(
                Refusal::failure(format!("{} is not a {what} (not text)", path.display()))
                    .hint("use the file written by `irm keygen`")
                    .into(),
            );
        }
    };
    Ok((file, text))
}

/// Reads a `.pub` file written by `irm keygen`.
pub(crate) fn read_public(path: &Path) -> Result<KasPublicKey> {
    let (_, text) = read_key_text(path, "key server public key")?;
    KasPublicKey::from_text(&text)
        .with_context(|| format!("reading the key server public key {}", path.display()))
}

/// Reads a secret key file written by `irm keygen`, warning on stderr when
/// its mode lets other users read it.
pub(crate) fn read_secret(path: &Path) -> Result<KasSecretKey> {
    let (file, text) = read_key_text(path, "key server secret key")?;
    let key = KasSecretKey::from_text(&text)
        .with_context(|| format!("reading the key server secret key {}", path.display()))?;
    // Warn only about a real secret key: a .pub file given by mistake fails above.
    if let Ok(meta) = file.metadata() {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: the secret key {} is accessible to other users (mode {mode:04o})\n\
                 hint: whoever can read it can read every file sealed to it; run: chmod 600 {}",
                path.display(),
                path.display()
            );
        }
    }
    Ok(key)
}

/// The secret key file's contents: a comment header saying what it is, then
/// the key line.
pub(crate) fn secret_file_text(key: &KasSecretKey, created_unix: u64) -> Zeroizing<String> {
    let public = key.public_key();
    let mut text = Zeroizing::new(String::new());
    text.push_str("# IRM key server secret key (X25519), written by `irm keygen`.\n");
    text.push_str(&format!("# created: {}\n", text::time(created_unix)));
    text.push_str(&format!("# public key: {}\n", public.to_text()));
    text.push_str(&format!("# key id: {}\n", public.key_id()));
    text.push_str(
        "# WHOEVER HOLDS THIS KEY CAN READ EVERY FILE SEALED TO IT, whatever the file's policy.\n\
         # Keep it on the key server only (mode 0600), with an offline backup for disaster recovery.\n",
    );
    text.push_str(&key.to_text());
    text.push('\n');
    text
}
