//! Sealed server keys on the wire (PROTOCOL.md §11.2): where unsealing
//! stands, a holder's share as the server hands it to their device, the
//! share the device sends back, and the request to split the root key anew.

use serde::{Deserialize, Serialize};

/// The fewest shares a root key is split into a threshold of: one person
/// alone never unseals the server.
pub const MIN_SHARE_THRESHOLD: u8 = 2;

/// How the server's root key is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SealMode {
    /// A new server: the root key's only share is a file in the data
    /// directory, which the server reads at every start (and warns about).
    Bootstrap,
    /// Split among holders, `threshold` of whom unseal after a restart.
    Shares,
}

/// A holder's share, wrapped to one of their devices
/// (`irm_core::wrap_share`): only that device can read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WrappedShareInfo {
    /// The root key's id (32 hex digits).
    pub root_id: String,
    /// The share's index (1 to 255).
    pub index: u8,
    /// The server's ephemeral X25519 public key (base64url).
    pub ephemeral_public: String,
    /// AES-256-GCM of the share and its tag (base64url).
    pub ciphertext: String,
}

/// `GET /v1/unseal`: where unsealing stands, and the caller's share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnsealStatus {
    /// Whether the server is sealed (answering `server_sealed`).
    pub sealed: bool,
    /// How the root key is held.
    pub mode: SealMode,
    /// Shares needed to unseal (1 in the bootstrap mode).
    pub threshold: u8,
    /// Who holds a share, sorted (empty in the bootstrap mode).
    pub holders: Vec<String>,
    /// While sealed: the holders whose shares the server has, sorted.
    pub submitted: Vec<String>,
    /// The share of the calling device's user, wrapped to that device, if
    /// they hold one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<WrappedShareInfo>,
}

/// `POST /v1/unseal`: a holder's share, unwrapped on their device.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnsealRequest {
    /// The root key's id the share is for (32 hex digits).
    pub root_id: String,
    /// The share's index.
    pub index: u8,
    /// The share (base64url).
    pub share: String,
}

impl Drop for UnsealRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.share);
    }
}

impl std::fmt::Debug for UnsealRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsealRequest")
            .field("root_id", &self.root_id)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/admin/shares`: split the root key anew (filed for approval).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReissueSharesRequest {
    /// Shares needed to unseal (at least [`MIN_SHARE_THRESHOLD`]).
    pub threshold: u8,
    /// The holders (administrators or maintainers with an enrolled device),
    /// one share each.
    pub holders: Vec<String>,
}
