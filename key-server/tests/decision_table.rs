//! The grant decision as a table (PROTOCOL.md §4.1): every combination the
//! issue lists, each row asserting a grant (with its rights and lease end)
//! or the exact denial. Headers are real sealed headers and the policy
//! binding is checked with real keys, so "header edited" is an edited byte.

use std::sync::Arc;

use irm_core::protocol::DenyReason;
use irm_core::{
    EnvelopeBuilder, KasSecretKey, KeyId, Policy, PolicyGrant, Recipient, Rights, SealedHeader,
};
use irm_key_server::decision::{FileControls, KeyState, StoredState, decide};
use irm_key_server::facts::grant_facts;

const NOW: u64 = 1_800_000_000;
const NB: u64 = NOW - 100; // not before
const NA: u64 = NOW + 100; // not after

struct Keys {
    old: Arc<KasSecretKey>,
    new: Arc<KasSecretKey>,
    foreign: Arc<KasSecretKey>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sealed {
    Current,
    Older,
    Foreign,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OldKey {
    Active,
    Retired,
}

struct Case {
    name: &'static str,
    user: &'static str,
    groups: &'static [&'static str],
    recipients: &'static [&'static str],
    rights: Rights,
    user_active: bool,
    device_active: bool,
    file: Option<FileControls>,
    now: u64,
    window: (Option<u64>, Option<u64>),
    edited: bool,
    sealed: Sealed,
    old_key: OldKey,
    want: Result<(Rights, u64), DenyReason>,
}

impl Case {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            user: "alice",
            groups: &[],
            recipients: &["alice"],
            rights: Rights::VIEW | Rights::PRINT,
            user_active: true,
            device_active: true,
            file: None,
            now: NOW,
            window: (Some(NB), Some(NA)),
            edited: false,
            sealed: Sealed::Current,
            old_key: OldKey::Active,
            want: Ok((Rights::VIEW | Rights::PRINT, NA)),
        }
    }
    fn user(mut self, user: &'static str, groups: &'static [&'static str]) -> Self {
        self.user = user;
        self.groups = groups;
        self
    }
    fn to(mut self, recipients: &'static [&'static str]) -> Self {
        self.recipients = recipients;
        self
    }
    fn suspended(mut self) -> Self {
        self.user_active = false;
        self
    }
    fn device_revoked(mut self) -> Self {
        self.device_active = false;
        self
    }
    fn file(mut self, controls: FileControls) -> Self {
        self.file = Some(controls);
        self
    }
    fn at(mut self, now: u64) -> Self {
        self.now = now;
        self
    }
    fn window(mut self, nb: Option<u64>, na: Option<u64>) -> Self {
        self.window = (nb, na);
        self
    }
    fn edited(mut self) -> Self {
        self.edited = true;
        self
    }
    fn sealed(mut self, sealed: Sealed, old_key: OldKey) -> Self {
        self.sealed = sealed;
        self.old_key = old_key;
        self
    }
    fn grant(mut self, rights: Rights, lease_end: u64) -> Self {
        self.want = Ok((rights, lease_end));
        self
    }
    fn deny(mut self, reason: DenyReason) -> Self {
        self.want = Err(reason);
        self
    }
}

fn revoked() -> FileControls {
    FileControls {
        revoked: true,
        ..FileControls::default()
    }
}

fn restricted(rights: Rights) -> FileControls {
    FileControls {
        restricted: rights,
        ..FileControls::default()
    }
}

fn expired_at(at: u64) -> FileControls {
    FileControls {
        admin_expires_at: Some(at),
        ..FileControls::default()
    }
}

fn header_for(case: &Case, keys: &Keys) -> SealedHeader {
    let policy = Policy::new(
        vec![PolicyGrant {
            recipients: case
                .recipients
                .iter()
                .map(|r| Recipient::parse(r).unwrap())
                .collect(),
            rights: case.rights,
        }],
        case.window.0,
        case.window.1,
        600,
        true,
        None,
    )
    .unwrap();
    let kas = match case.sealed {
        Sealed::Current => &keys.new,
        Sealed::Older => &keys.old,
        Sealed::Foreign => &keys.foreign,
    };
    let verified = EnvelopeBuilder::new(policy)
        .key_server("https://kas.example:8443", kas.public_key())
        .build()
        .unwrap();
    let mut bytes = verified.header().to_bytes();
    if case.edited {
        // Change one byte of the key server URL inside the bound record: the
        // header still parses, but its hash (the wrap's associated data) differs.
        let url = b"kas.example";
        let at = bytes.windows(url.len()).position(|w| w == url).unwrap();
        bytes[at] = b'K';
    }
    SealedHeader::parse(&bytes).unwrap().0
}

#[test]
fn every_row_of_the_decision_table() {
    let keys = Keys {
        old: Arc::new(KasSecretKey::generate().unwrap()),
        new: Arc::new(KasSecretKey::generate().unwrap()),
        foreign: Arc::new(KasSecretKey::generate().unwrap()),
    };
    let all = Rights::VIEW | Rights::PRINT;
    let cases = [
        // Recipients.
        Case::new("recipient by user name").grant(all, NA),
        Case::new("recipient through a group")
            .user("bob", &["support"])
            .to(&["@support"])
            .grant(all, NA),
        Case::new("recipient by user and by group: rights add up")
            .user("bob", &["support"])
            .to(&["@support", "bob"])
            .grant(all, NA),
        Case::new("not a recipient at all")
            .user("carol", &["billing"])
            .deny(DenyReason::NotRecipient),
        Case::new("admin but not a recipient")
            .user("admin", &[])
            .deny(DenyReason::NotRecipient),
        // The person and the device.
        Case::new("user suspended")
            .suspended()
            .deny(DenyReason::UserSuspended),
        Case::new("device revoked")
            .device_revoked()
            .deny(DenyReason::DeviceRevoked),
        Case::new("suspension is checked before the device")
            .suspended()
            .device_revoked()
            .deny(DenyReason::UserSuspended),
        // The file's administrative state.
        Case::new("file active (registered, untouched)")
            .file(FileControls::default())
            .grant(all, NA),
        Case::new("file revoked")
            .file(revoked())
            .deny(DenyReason::FileRevoked),
        Case::new("revocation beats not being a recipient")
            .user("carol", &[])
            .file(revoked())
            .deny(DenyReason::FileRevoked),
        Case::new("file restricted: print taken away")
            .file(restricted(Rights::PRINT))
            .grant(Rights::VIEW, NA),
        Case::new("file restricted to nothing")
            .file(restricted(Rights::VIEW | Rights::PRINT))
            .deny(DenyReason::RightsRestricted),
        Case::new("restriction of rights the user never had changes nothing")
            .file(restricted(Rights::EXPORT))
            .grant(all, NA),
        Case::new("administrator expiry in the past")
            .file(expired_at(NOW - 1))
            .deny(DenyReason::FileExpired),
        Case::new("administrator expiry this very second")
            .file(expired_at(NOW))
            .deny(DenyReason::FileExpired),
        Case::new("administrator expiry later caps the lease")
            .file(expired_at(NOW + 30))
            .grant(all, NOW + 30),
        // The validity window, server clock, boundaries included.
        Case::new("before not_before")
            .at(NB - 50)
            .deny(DenyReason::NotYetValid),
        Case::new("one second before not_before")
            .at(NB - 1)
            .deny(DenyReason::NotYetValid),
        Case::new("exactly not_before").at(NB).grant(all, NA),
        Case::new("within the window, lease capped at not_after").grant(all, NA),
        Case::new("one second before not_after")
            .at(NA - 1)
            .grant(all, NA),
        Case::new("exactly not_after")
            .at(NA)
            .deny(DenyReason::PolicyExpired),
        Case::new("after not_after")
            .at(NA + 50)
            .deny(DenyReason::PolicyExpired),
        Case::new("no window: lease is the full 600 s")
            .window(None, None)
            .grant(all, NOW + 600),
        Case::new("expiry beats restriction")
            .at(NA)
            .file(restricted(all))
            .deny(DenyReason::PolicyExpired),
        // The header.
        Case::new("header edited after sealing")
            .edited()
            .deny(DenyReason::PolicyBindingFailed),
        Case::new("edited header of a revoked file: binding first")
            .edited()
            .file(revoked())
            .deny(DenyReason::PolicyBindingFailed),
        // Keys.
        Case::new("sealed to the current key").grant(all, NA),
        Case::new("sealed to a rotated (older, active) key still opens")
            .sealed(Sealed::Older, OldKey::Active)
            .grant(all, NA),
        Case::new("sealed to a retired key")
            .sealed(Sealed::Older, OldKey::Retired)
            .deny(DenyReason::KeyRetired),
        Case::new("retired key beats an edited header")
            .sealed(Sealed::Older, OldKey::Retired)
            .edited()
            .deny(DenyReason::KeyRetired),
        Case::new("sealed to a key this server never held")
            .sealed(Sealed::Foreign, OldKey::Active)
            .deny(DenyReason::KeyUnknown),
        Case::new("a suspended user hears about suspension, not the key")
            .sealed(Sealed::Foreign, OldKey::Active)
            .suspended()
            .deny(DenyReason::UserSuspended),
    ];

    let mut seen = std::collections::BTreeSet::new();
    for case in &cases {
        let header = header_for(case, &keys);
        let held = |id: &KeyId| {
            [&keys.old, &keys.new]
                .into_iter()
                .find(|k| k.key_id() == *id)
                .cloned()
        };
        let (facts, _) = grant_facts(case.user, &header, held, None);
        let state = StoredState {
            user_active: case.user_active,
            groups: case.groups.iter().map(|g| (*g).to_owned()).collect(),
            device_active: case.device_active,
            keys: vec![
                (
                    keys.old.key_id(),
                    match case.old_key {
                        OldKey::Active => KeyState::Active,
                        OldKey::Retired => KeyState::Retired,
                    },
                ),
                (keys.new.key_id(), KeyState::Current),
            ],
            file: case.file,
            lease_limit_secs: 600,
        };
        let got = decide(&facts, &state, case.now).map(|d| (d.rights, d.lease_expires_at));
        assert_eq!(got, case.want, "row: {}", case.name);
        if let Err(reason) = case.want {
            seen.insert(reason.as_str());
        }
    }
    // Every grant-time reason appears in the table.
    for reason in [
        DenyReason::UserSuspended,
        DenyReason::DeviceRevoked,
        DenyReason::KeyUnknown,
        DenyReason::KeyRetired,
        DenyReason::PolicyBindingFailed,
        DenyReason::FileRevoked,
        DenyReason::NotRecipient,
        DenyReason::NotYetValid,
        DenyReason::PolicyExpired,
        DenyReason::FileExpired,
        DenyReason::RightsRestricted,
    ] {
        assert!(
            seen.contains(reason.as_str()),
            "no row denies with {reason:?}"
        );
    }
}

#[test]
fn the_server_lease_limit_and_the_policy_lease_take_the_smaller() {
    let kas = Arc::new(KasSecretKey::generate().unwrap());
    let policy = |lease| {
        Policy::new(
            vec![PolicyGrant {
                recipients: [Recipient::parse("alice").unwrap()].into(),
                rights: Rights::VIEW,
            }],
            None,
            None,
            lease,
            false,
            None,
        )
        .unwrap()
    };
    for (policy_lease, server_limit, want) in [(600, 600, 600), (60, 600, 60), (3600, 300, 300)] {
        let header = EnvelopeBuilder::new(policy(policy_lease))
            .key_server("https://kas.example", kas.public_key())
            .build()
            .unwrap()
            .header()
            .clone();
        let (facts, _) = grant_facts("alice", &header, |_| Some(kas.clone()), None);
        let state = StoredState {
            user_active: true,
            groups: vec![],
            device_active: true,
            keys: vec![(kas.key_id(), KeyState::Current)],
            file: None,
            lease_limit_secs: server_limit,
        };
        let decision = decide(&facts, &state, NOW).unwrap();
        assert_eq!(
            decision.lease_expires_at,
            NOW + want,
            "{policy_lease} vs {server_limit}"
        );
        assert!(!decision.watermark_required);
    }
}
