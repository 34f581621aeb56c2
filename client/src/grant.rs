//! [`Grant`]: a key server's permission to read one file on this device,
//! with its content key unwrapped and checked, and a lease measured on this
//! computer's monotonic clock (docs/PROTOCOL.md §4.1).
//!
//! The verified header (the only thing that can decrypt the payload) is
//! handed out only while the lease holds. Renewal and usage reports go
//! through the `Session`; when to renew is the caller's choice
//! ([`Grant::renew_due`] says when the CLI and viewer do it).

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irm_core::protocol::{GrantResponse, Notice};
use irm_core::{
    DeviceWrappedKey, FileId, RewrapContext, Rights, SealedHeader, VerifiedHeader, WRAPPED_KEY_LEN,
};

use crate::config::DeviceConfig;
use crate::error::ClientError;
use crate::keystore::DeviceKeys;
use crate::witness::WitnessAlarm;

/// The content key of one file, released to this device until the lease
/// deadline. Dropping it wipes the key.
pub struct Grant {
    verified: VerifiedHeader,
    grant_id: String,
    user: String,
    display_name: String,
    device_id: String,
    rights: Rights,
    watermark_required: bool,
    not_after: Option<u64>,
    lease_expires_at: u64,
    lease: Duration,
    granted_at: Instant,
    deadline: Instant,
    notices: Vec<Notice>,
    witness_alarm: Option<WitnessAlarm>,
    watch_cursor: Option<String>,
    watermark_id: Option<String>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No key material: the verified header's own Debug omits its keys.
        f.debug_struct("Grant")
            .field("file_id", &self.file_id())
            .field("grant_id", &self.grant_id)
            .field("user", &self.user)
            .field("rights", &self.rights)
            .field("time_left", &self.time_left())
            .finish_non_exhaustive()
    }
}

impl Grant {
    /// Checks a grant answer against the header it was asked for and turns it
    /// into a live grant. `asked_at` is when the request left, so the deadline
    /// errs on the early side by the round trip.
    pub(crate) fn from_response(
        config: &DeviceConfig,
        keys: &DeviceKeys,
        header: &SealedHeader,
        answer: GrantResponse,
        asked_at: Instant,
    ) -> Result<Self, ClientError> {
        let bad = |problem: String| ClientError::bad_response("POST /v1/grant", problem);
        if answer.file_id != header.file_id().to_string() {
            return Err(bad(format!(
                "it is for file {}, not {}",
                answer.file_id,
                header.file_id()
            )));
        }
        if !answer.device_id.eq_ignore_ascii_case(&config.device_id) {
            return Err(bad(format!(
                "it is for device {}, not this device ({})",
                answer.device_id, config.device_id
            )));
        }
        if answer.lease_expires_at <= answer.server_time {
            return Err(bad("its lease has already ended".into()));
        }
        // The server caps the lease by the policy; do not trust a longer one.
        let lease_secs = (answer.lease_expires_at - answer.server_time)
            .min(u64::from(header.policy().max_lease_secs.max(1)));
        let wrapped = URL_SAFE_NO_PAD
            .decode(&answer.wrapped_key)
            .ok()
            .filter(|w| w.len() == 32 + WRAPPED_KEY_LEN)
            .ok_or_else(|| bad("its wrapped key is not 80 bytes of base64url".into()))?;
        let (ephemeral, ciphertext) = wrapped.split_at(32);
        let wrapped = DeviceWrappedKey {
            ephemeral_public: ephemeral.try_into().expect("split at 32"),
            ciphertext: ciphertext.try_into().expect("80 - 32 = 48 bytes"),
        };
        // FORMAT.md §4.5: the wrap is bound to file, header, device and lease end.
        let context = RewrapContext {
            file_id: header.file_id(),
            header_hash: *header.hash(),
            device_id: config.device_id_bytes(),
            lease_expires_at_unix: answer.lease_expires_at,
        };
        let content_key =
            keys.device
                .unwrap_grant(&wrapped, &context)
                .map_err(|e| ClientError::Integrity {
                    context: "unwrapping the content key with this device's key",
                    source: Box::new(e),
                })?;
        // FORMAT.md §4.2: the key commitment proves it is this file's key.
        let verified = header
            .clone()
            .verify(content_key)
            .map_err(|e| ClientError::Integrity {
                context: "checking the content key against the file's key commitment",
                source: Box::new(e),
            })?;
        let lease = Duration::from_secs(lease_secs);
        Ok(Self {
            verified,
            grant_id: answer.grant_id,
            user: answer.user,
            display_name: answer.display_name,
            device_id: answer.device_id,
            rights: answer.rights,
            watermark_required: answer.watermark_required,
            not_after: answer.not_after,
            lease_expires_at: answer.lease_expires_at,
            lease,
            granted_at: asked_at,
            deadline: asked_at + lease,
            notices: answer.notices,
            witness_alarm: None,
            watch_cursor: answer.watch_cursor,
            // Shown to people and read back off photos: only the canonical
            // form of a well-formed id (PROTOCOL.md §7.8), never free text.
            watermark_id: answer
                .watermark_id
                .as_deref()
                .and_then(irm_core::protocol::grant_prefix_of_watermark)
                .and_then(|prefix| irm_core::protocol::watermark_id(&prefix)),
        })
    }

    /// The verified header, from which the payload can be decrypted, while
    /// the lease holds; [`ClientError::LeaseExpired`] after it.
    pub fn verified_header(&self) -> Result<&VerifiedHeader, ClientError> {
        if self.is_live() {
            Ok(&self.verified)
        } else {
            Err(ClientError::LeaseExpired)
        }
    }

    /// The header the grant is for (public data; usable after the lease for renewal).
    pub fn header(&self) -> &SealedHeader {
        self.verified.header()
    }

    /// The file's id.
    pub fn file_id(&self) -> FileId {
        self.verified.header().file_id()
    }

    /// The effective rights: the policy's rights for this user minus any
    /// administrator restriction.
    pub fn rights(&self) -> Rights {
        self.rights
    }

    /// Whether viewers must draw the watermark.
    pub fn watermark_required(&self) -> bool {
        self.watermark_required
    }

    /// The user the grant is for (the watermark names them).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Their full name as the key server knows it, if it said (for the
    /// watermark).
    pub fn display_name(&self) -> Option<&str> {
        Some(self.display_name.trim()).filter(|name| !name.is_empty())
    }

    /// The device the grant is bound to (hex).
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The grant's id (hex); usage events name it.
    pub fn grant_id(&self) -> &str {
        &self.grant_id
    }

    /// The grant's watermark id (`W7K2-9QXM-4HTD`, PROTOCOL.md §7.8), which
    /// the watermark shows so that a photo of the screen or of a print names
    /// this grant; `None` from servers that issue none.
    pub fn watermark_id(&self) -> Option<&str> {
        self.watermark_id.as_deref()
    }

    /// The policy's not-after time (Unix seconds), if any.
    pub fn not_after(&self) -> Option<u64> {
        self.not_after
    }

    /// When the lease ends on the server's clock (Unix seconds), for display.
    pub fn lease_expires_at(&self) -> u64 {
        self.lease_expires_at
    }

    /// The lease's length as granted.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// How long the lease still holds (zero once it has ended).
    pub fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// What the key server told this person with the grant (a new device
    /// enrolled for their account, PROTOCOL.md §4.3). Each notice comes
    /// once: show it to the person, who alone can tell whether it was them.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// Whether the audit checkpoint the grant carried failed to continue the
    /// one this device witnessed before (PROTOCOL.md §9.2: the server's log
    /// went back or was rewritten). Show it to the person; the grant itself
    /// is good.
    pub fn witness_alarm(&self) -> Option<&WitnessAlarm> {
        self.witness_alarm.as_ref()
    }

    pub(crate) fn set_witness_alarm(&mut self, alarm: Option<WitnessAlarm>) {
        self.witness_alarm = alarm;
    }

    /// Whether the lease still holds.
    pub fn is_live(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// When to renew: two thirds into the lease (PROTOCOL.md §4.2).
    pub fn renew_due(&self) -> Instant {
        self.granted_at + self.lease * 2 / 3
    }

    /// Replaces this grant with a renewed one for the same file.
    /// Where this grant's push channel starts (PROTOCOL.md §13), if the
    /// server has one.
    pub(crate) fn watch_cursor(&self) -> Option<&str> {
        self.watch_cursor.as_deref()
    }

    pub(crate) fn replace(&mut self, renewed: Grant) {
        *self = renewed;
    }

    #[cfg(test)]
    pub(crate) fn end_lease_for_test(&mut self) {
        self.deadline = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use irm_core::protocol::ServerKeyInfo;
    use irm_core::{EnvelopeBuilder, KasSecretKey, Policy, PolicyGrant, Recipient, rewrap};

    use super::*;

    const DEVICE: &str = "00112233445566778899aabbccddeeff";
    const NOW: u64 = 1_800_000_000;

    struct Fixture {
        kas: KasSecretKey,
        keys: DeviceKeys,
        config: DeviceConfig,
        header: SealedHeader,
    }

    fn fixture() -> Fixture {
        let kas = KasSecretKey::generate().unwrap();
        let keys = DeviceKeys::generate().unwrap();
        let policy = Policy::builder()
            .grant(PolicyGrant {
                recipients: BTreeSet::from([Recipient::parse("alice").unwrap()]),
                rights: Rights::VIEW | Rights::EXPORT,
            })
            .max_lease_secs(600)
            .build()
            .unwrap();
        let header = EnvelopeBuilder::new(policy)
            .key_server("https://kas.example", kas.public_key())
            .build()
            .unwrap()
            .header()
            .clone();
        let config = DeviceConfig {
            version: 1,
            server_url: "https://kas.example".into(),
            ca_pem: String::new(),
            user: "alice".into(),
            device_id: DEVICE.into(),
            device_name: "pc".into(),
            device_public_key: keys.device_public_b64(),
            signing_public_key: keys.signing.public_key_b64(),
            roles: vec![],
            groups: vec![],
            server_key: ServerKeyInfo {
                key_id: kas.key_id().to_string(),
                public_key: kas.public_key().to_text(),
                url: "https://kas.example".into(),
            },
            enrolled_at: NOW,
        };
        Fixture {
            kas,
            keys,
            config,
            header,
        }
    }

    /// What the key server would answer, rewrapped for `lease_expires_at`.
    fn answer(f: &Fixture, bound_lease_end: u64, claimed_lease_end: u64) -> GrantResponse {
        let key = f.kas.unwrap(&f.header).unwrap();
        let context = RewrapContext {
            file_id: f.header.file_id(),
            header_hash: *f.header.hash(),
            device_id: f.config.device_id_bytes(),
            lease_expires_at_unix: bound_lease_end,
        };
        let wrapped = rewrap(&key, &f.keys.device.public_key(), &context).unwrap();
        let mut bytes = wrapped.ephemeral_public.to_vec();
        bytes.extend_from_slice(&wrapped.ciphertext);
        GrantResponse {
            file_id: f.header.file_id().to_string(),
            grant_id: "ab".repeat(16),
            user: "alice".into(),
            display_name: "Alice Example".into(),
            device_id: DEVICE.into(),
            rights: Rights::VIEW | Rights::EXPORT,
            watermark_required: true,
            server_time: NOW,
            lease_expires_at: claimed_lease_end,
            not_after: None,
            wrapped_key: URL_SAFE_NO_PAD.encode(bytes),
            notices: Vec::new(),
            checkpoint: None,
            watch_cursor: None,
            watermark_id: None,
        }
    }

    #[test]
    fn a_grant_unwraps_verifies_and_runs_on_the_monotonic_clock() {
        let f = fixture();
        let asked = Instant::now();
        let grant = Grant::from_response(
            &f.config,
            &f.keys,
            &f.header,
            answer(&f, NOW + 300, NOW + 300),
            asked,
        )
        .unwrap();
        assert!(grant.is_live());
        assert_eq!(grant.lease(), Duration::from_secs(300));
        assert!(grant.time_left() <= Duration::from_secs(300));
        assert!(grant.time_left() > Duration::from_secs(290));
        assert_eq!(grant.renew_due(), asked + Duration::from_secs(200));
        assert_eq!(grant.rights(), Rights::VIEW | Rights::EXPORT);
        assert_eq!(grant.display_name(), Some("Alice Example"));
        let verified = grant.verified_header().unwrap();
        assert_eq!(verified.header().file_id(), f.header.file_id());
    }

    #[test]
    fn the_verified_header_is_never_handed_out_past_the_lease() {
        let f = fixture();
        let mut grant = Grant::from_response(
            &f.config,
            &f.keys,
            &f.header,
            answer(&f, NOW + 300, NOW + 300),
            Instant::now(),
        )
        .unwrap();
        grant.end_lease_for_test();
        assert!(!grant.is_live());
        assert_eq!(grant.time_left(), Duration::ZERO);
        assert!(matches!(
            grant.verified_header(),
            Err(ClientError::LeaseExpired)
        ));
    }

    #[test]
    fn a_lease_longer_than_the_policy_allows_is_cut_to_the_policy() {
        let f = fixture();
        let grant = Grant::from_response(
            &f.config,
            &f.keys,
            &f.header,
            answer(&f, NOW + 86_400, NOW + 86_400),
            Instant::now(),
        )
        .unwrap();
        assert_eq!(grant.lease(), Duration::from_secs(600));
    }

    #[test]
    fn a_grant_bound_to_another_lease_end_does_not_unwrap() {
        let f = fixture();
        let err = Grant::from_response(
            &f.config,
            &f.keys,
            &f.header,
            answer(&f, NOW + 300, NOW + 600),
            Instant::now(),
        )
        .unwrap_err();
        assert!(matches!(err, ClientError::Integrity { .. }), "{err:?}");
    }

    #[test]
    fn a_grant_for_another_file_or_device_is_refused() {
        let f = fixture();
        let mut wrong_file = answer(&f, NOW + 300, NOW + 300);
        wrong_file.file_id = "ff".repeat(16);
        let mut wrong_device = answer(&f, NOW + 300, NOW + 300);
        wrong_device.device_id = "ee".repeat(16);
        let mut bad_key = answer(&f, NOW + 300, NOW + 300);
        bad_key.wrapped_key = "AAAA".into();
        for bad in [wrong_file, wrong_device, bad_key] {
            let err = Grant::from_response(&f.config, &f.keys, &f.header, bad, Instant::now())
                .unwrap_err();
            assert!(matches!(err, ClientError::BadResponse { .. }), "{err:?}");
        }
    }

    #[test]
    fn a_grant_rewrapped_to_another_device_key_does_not_unwrap() {
        let f = fixture();
        let other = fixture();
        // The answer is bound to `f`'s device key; `other`'s key cannot open it.
        let mut config = other.config.clone();
        config.device_id = DEVICE.into();
        let err = Grant::from_response(
            &config,
            &other.keys,
            &f.header,
            answer(&f, NOW + 300, NOW + 300),
            Instant::now(),
        )
        .unwrap_err();
        assert!(matches!(err, ClientError::Integrity { .. }));
    }
}
