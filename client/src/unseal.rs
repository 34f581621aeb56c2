//! Sealed server keys from a holder's side (docs/PROTOCOL.md §11.2): asking
//! where unsealing stands, fetching this person's root-key share (wrapped
//! to this device), unwrapping it here and submitting it, so a share is
//! never typed on the server; and filing a reissue of the shares.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irm_core::protocol::{ReissueSharesRequest, RequestAnswer, UnsealRequest, UnsealStatus};
use irm_core::{ShareContext, WrappedShare};
use reqwest::Method;

use crate::error::ClientError;
use crate::session::Session;

/// What [`Session::unseal`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsealing {
    /// The server was not sealed; nothing was sent.
    NotSealed(UnsealStatus),
    /// This person's share was submitted; the status after it.
    Submitted(UnsealStatus),
}

impl Session {
    /// `GET /v1/unseal`: where unsealing stands, and this person's wrapped
    /// share if they hold one.
    pub fn unseal_status(&self) -> Result<UnsealStatus, ClientError> {
        self.signed(Method::GET, "/v1/unseal", None::<&()>)
    }

    /// Fetches this person's share, unwraps it with this device's key and
    /// submits it (`POST /v1/unseal`). The share exists in the clear only in
    /// this process, for the moment of sending.
    pub fn unseal(&self) -> Result<Unsealing, ClientError> {
        let status = self.unseal_status()?;
        if !status.sealed {
            return Ok(Unsealing::NotSealed(status));
        }
        let Some(share) = &status.share else {
            return Err(ClientError::InvalidArgument(format!(
                "{} holds no share of this key server's root key on this device (holders: {}); a holder submits theirs from a device enrolled when the shares were issued",
                self.user(),
                if status.holders.is_empty() {
                    "none".to_owned()
                } else {
                    status.holders.join(", ")
                }
            )));
        };
        let bad = |problem: &str| ClientError::bad_response("reading the wrapped share", problem);
        let decode = |text: &str| {
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| bad("not base64url"))
        };
        let ephemeral_public: [u8; 32] = decode(&share.ephemeral_public)?
            .try_into()
            .map_err(|_| bad("the ephemeral key is not 32 bytes"))?;
        let wrapped = WrappedShare {
            ephemeral_public,
            ciphertext: decode(&share.ciphertext)?,
        };
        let context = ShareContext {
            root_id: hex::decode(&share.root_id)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("the root id is not 32 hex digits"))?,
            index: share.index,
            device_id: self.device_id_bytes(),
        };
        let plain = self
            .device_key()
            .unwrap_share(&wrapped, &context)
            .map_err(|_| bad("the share does not unwrap with this device's key"))?;
        let request = UnsealRequest {
            root_id: share.root_id.clone(),
            index: share.index,
            share: URL_SAFE_NO_PAD.encode(&plain[..]),
        };
        let after = self.signed(Method::POST, "/v1/unseal", Some(&request))?;
        Ok(Unsealing::Submitted(after))
    }

    /// `POST /v1/admin/shares`: split the root key anew among `holders`,
    /// `threshold` of whom unseal; filed for approval.
    pub fn reissue_shares(
        &self,
        threshold: u8,
        holders: &[String],
    ) -> Result<RequestAnswer, ClientError> {
        let body = ReissueSharesRequest {
            threshold,
            holders: holders.to_vec(),
        };
        self.signed(Method::POST, "/v1/admin/shares", Some(&body))
    }
}
