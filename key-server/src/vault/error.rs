//! What can go wrong with the sealed keys, for every part of the vault.

use std::path::PathBuf;

/// Sealing, unsealing or resealing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The keystore or share set is damaged or not this root key's.
    #[error("{}: {problem}", path.display())]
    Keystore {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The data directory holds no way to the root key.
    #[error(
        "{0} holds neither {share_set} nor {bootstrap}: the server's keys cannot be unsealed; restore the data directory from its backup (the share set is part of it)",
        share_set = "unseal-shares.json",
        bootstrap = "bootstrap-share.key"
    )]
    NoRootShare(PathBuf),
    /// The keystore lacks a key the server needs.
    #[error("the keystore holds no {0}")]
    MissingEntry(String),
    /// A key in the keystore does not parse.
    #[error("the keystore's {0} is not a valid key")]
    BadEntry(String),
    /// The server is sealed: the operation needs the root key.
    #[error("the server is sealed")]
    Sealed,
    /// Splitting the root key failed (bad threshold or holder count).
    #[error("splitting the root key failed: {0}")]
    Sharing(String),
    /// Random number generation failed.
    #[error("the system random number generator failed")]
    Random,
}
