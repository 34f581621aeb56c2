//! The grant decision as tables (PROTOCOL.md §4.1), in two layers.
//!
//! `every_row_of_the_decision_table` drives the pure `decide` with real
//! sealed headers and real keys (so "header edited" is an edited byte):
//! quick, and the place for the lease arithmetic.
//!
//! `every_row_on_a_real_server` drives the same dimensions through the real
//! HTTPS server: users, groups, roles and devices are created and enrolled
//! through the API, files registered, keys rotated and retired, users
//! suspended, devices and files revoked, restricted and expired by an
//! administrator, time moved on the server's test clock (never slept), and
//! each row then asks for one grant. It asserts the status, the rights and
//! lease end or the exact denial reason, and that exactly one audit record
//! was appended for that request, read back through the admin audit API,
//! with the right action, result, reason, user, device and file id. It runs
//! on SQLite and on PostgreSQL.
//!
//! The dimensions are recipient (by user / by group / not at all),
//! user (active / suspended), device (active / revoked), file (active /
//! revoked / restricted, and expired by an administrator), the validity
//! window (before / within / after), header edited or not, key (active /
//! rotated / retired, and unknown), and a requester who is an administrator
//! but not a recipient. Their full cross product is 3·2·2·4·3·2·4·2 = 2,304
//! rows of mostly the same denial, so the server table covers instead:
//! every value of every dimension against an all-granting baseline (with the
//! exact boundary seconds of the window and of an administrator's expiry,
//! renewals, admins and maintainers with and without a grant, an auditor
//! without one), and every pair of
//! denials that can hold at once, whose answer must be the earlier check of
//! §4.1. Two pairs cannot hold together and are left out: a key both unknown
//! and retired, and a time both before `not_before` and at `not_after`
//! (the window is non-empty). Since each check depends only on its own
//! dimension, the first-failing-check rule over every pair pins down the
//! answer for every larger combination too.

#[macro_use]
mod common;

use std::sync::Arc;

use common::{Backend, Device, SealedFile, T0, TestServer, seal_to};
use irm_core::protocol::KeyState;
use irm_core::protocol::{AuditRecord, DenyReason, GrantResponse, Role};
use irm_core::{
    EnvelopeBuilder, KasPublicKey, KasSecretKey, KeyId, Policy, PolicyGrant, Recipient, Rights,
    SealedHeader,
};
use irm_key_server::grant::decision::{FileControls, StoredState, decide};
use irm_key_server::grant::facts::grant_facts;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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
    rows_hold: bool,
    held: bool,
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
            rows_hold: true,
            held: false,
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
    fn forged(mut self) -> Self {
        self.rows_hold = false;
        self
    }
    fn suspended(mut self) -> Self {
        self.user_active = false;
        self
    }
    fn held(mut self) -> Self {
        self.held = true;
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
    let policy = Policy::builder()
        .grant(PolicyGrant {
            recipients: case
                .recipients
                .iter()
                .map(|r| Recipient::parse(r).unwrap())
                .collect(),
            rights: case.rights,
        })
        .not_before(case.window.0)
        .not_after(case.window.1)
        .max_lease_secs(600)
        .build()
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
        // Roles are not an input of `decide`; the server table below
        // checks a requester who really holds the admin role.
        Case::new("a user named admin who is not a recipient")
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
        // A detection rule's hold (PROTOCOL.md §12).
        Case::new("held for review by a detection rule")
            .held()
            .deny(DenyReason::StepUpRequired),
        Case::new("suspension is said before a hold")
            .held()
            .suspended()
            .deny(DenyReason::UserSuspended),
        Case::new("a hold is said before the device, the file and the recipients")
            .held()
            .device_revoked()
            .file(revoked())
            .user("carol", &[])
            .deny(DenyReason::StepUpRequired),
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
        // The rows themselves (PROTOCOL.md §11.3).
        Case::new("a row not as the audit log set it")
            .forged()
            .deny(DenyReason::StateIntegrity),
        Case::new("a forged row beats every other reason")
            .forged()
            .suspended()
            .device_revoked()
            .file(revoked())
            .edited()
            .sealed(Sealed::Foreign, OldKey::Active)
            .deny(DenyReason::StateIntegrity),
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
            rows_hold: case.rows_hold,
            held: case.held,
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
        DenyReason::StateIntegrity,
        DenyReason::UserSuspended,
        DenyReason::StepUpRequired,
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
        Policy::builder()
            .grant(PolicyGrant {
                recipients: [Recipient::parse("alice").unwrap()].into(),
                rights: Rights::VIEW,
            })
            .max_lease_secs(lease)
            .watermark_required(false)
            .build()
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
            rows_hold: true,
            held: false,
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

// ---------- the same dimensions on a real server ----------

/// The server table's policy window and usual request time.
const S_NB: u64 = T0 + 1000;
const S_NA: u64 = T0 + 2000;
const S_NOW: u64 = T0 + 1500;
/// The policy's rights in every row.
const VIEW_PRINT: Rights = Rights::VIEW.union(Rights::PRINT);

/// How the policy reaches the requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reaches {
    User,
    Group,
    Both,
    Nobody,
}

/// Which key server key the file is sealed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SealedTo {
    /// The current key.
    Current,
    /// An older key, rotated out but still active.
    Rotated,
    /// A key retired by an administrator.
    Retired,
    /// A key this server never held.
    Unknown,
}

#[derive(Debug, Clone)]
struct Row {
    name: String,
    reaches: Reaches,
    /// The requester's one role.
    role: Role,
    suspended: bool,
    device_revoked: bool,
    /// What an administrator did to the file; `admin_expires_at` is the
    /// server time at which `expire` is called.
    file: FileControls,
    window: Option<(u64, u64)>,
    now: u64,
    edited: bool,
    key: SealedTo,
    renew: bool,
    want: Result<(Rights, u64), DenyReason>,
}

impl Row {
    fn baseline(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            reaches: Reaches::User,
            role: Role::User,
            suspended: false,
            device_revoked: false,
            file: FileControls::default(),
            window: Some((S_NB, S_NA)),
            now: S_NOW,
            edited: false,
            key: SealedTo::Current,
            renew: false,
            want: Ok((VIEW_PRINT, S_NA)),
        }
    }
    fn with(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
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

/// One reason to refuse, as a change to a granting row; `ORDER` is the
/// order of the checks in PROTOCOL.md §4.1 (2 to 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Suspended,
    DeviceRevoked,
    KeyUnknown,
    KeyRetired,
    Edited,
    FileRevoked,
    NotRecipient,
    TooEarly,
    TooLate,
    FileExpired,
    AllRestricted,
}

impl Fault {
    const ORDER: [Self; 11] = [
        Self::Suspended,
        Self::DeviceRevoked,
        Self::KeyUnknown,
        Self::KeyRetired,
        Self::Edited,
        Self::FileRevoked,
        Self::NotRecipient,
        Self::TooEarly,
        Self::TooLate,
        Self::FileExpired,
        Self::AllRestricted,
    ];

    fn reason(self) -> DenyReason {
        match self {
            Self::Suspended => DenyReason::UserSuspended,
            Self::DeviceRevoked => DenyReason::DeviceRevoked,
            Self::KeyUnknown => DenyReason::KeyUnknown,
            Self::KeyRetired => DenyReason::KeyRetired,
            Self::Edited => DenyReason::PolicyBindingFailed,
            Self::FileRevoked => DenyReason::FileRevoked,
            Self::NotRecipient => DenyReason::NotRecipient,
            Self::TooEarly => DenyReason::NotYetValid,
            Self::TooLate => DenyReason::PolicyExpired,
            Self::FileExpired => DenyReason::FileExpired,
            Self::AllRestricted => DenyReason::RightsRestricted,
        }
    }

    fn apply(self, row: &mut Row) {
        match self {
            Self::Suspended => row.suspended = true,
            Self::DeviceRevoked => row.device_revoked = true,
            Self::KeyUnknown => row.key = SealedTo::Unknown,
            Self::KeyRetired => row.key = SealedTo::Retired,
            Self::Edited => row.edited = true,
            Self::FileRevoked => row.file.revoked = true,
            Self::NotRecipient => row.reaches = Reaches::Nobody,
            Self::TooEarly => row.now = S_NB - 1,
            Self::TooLate => row.now = S_NA,
            // Expired by an administrator at the start, long before any request.
            Self::FileExpired => row.file.admin_expires_at = Some(T0),
            Self::AllRestricted => row.file.restricted = VIEW_PRINT,
        }
    }

    /// Pairs that cannot hold at once.
    fn excludes(self, other: Self) -> bool {
        let pair = |a, b| (self == a && other == b) || (self == b && other == a);
        pair(Self::KeyUnknown, Self::KeyRetired) || pair(Self::TooEarly, Self::TooLate)
    }
}

fn server_rows() -> Vec<Row> {
    let base = |name: &str| Row::baseline(name);
    let mut rows = vec![
        // Recipient.
        base("recipient by user name"),
        base("recipient through a group").with(|r| r.reaches = Reaches::Group),
        base("recipient by user and by group").with(|r| r.reaches = Reaches::Both),
        // No role opens or blocks: admin, auditor, maintainer.
        base("admin but not a recipient")
            .with(|r| {
                r.role = Role::Admin;
                r.reaches = Reaches::Nobody;
            })
            .deny(DenyReason::NotRecipient),
        base("admin and a recipient").with(|r| r.role = Role::Admin),
        base("maintainer but not a recipient")
            .with(|r| {
                r.role = Role::Maintainer;
                r.reaches = Reaches::Nobody;
            })
            .deny(DenyReason::NotRecipient),
        base("maintainer and a recipient").with(|r| r.role = Role::Maintainer),
        base("auditor but not a recipient")
            .with(|r| {
                r.role = Role::Auditor;
                r.reaches = Reaches::Nobody;
            })
            .deny(DenyReason::NotRecipient),
        // The file's administrative state.
        base("file restricted: print taken away")
            .with(|r| r.file.restricted = Rights::PRINT)
            .grant(Rights::VIEW, S_NA),
        base("file restricted of a right nobody had").with(|r| r.file.restricted = Rights::EXPORT),
        base("administrator expiry later caps the lease")
            .with(|r| r.file.admin_expires_at = Some(S_NOW + 30))
            .grant(VIEW_PRINT, S_NOW + 30),
        base("administrator expiry one second later")
            .with(|r| r.file.admin_expires_at = Some(S_NOW + 1))
            .grant(VIEW_PRINT, S_NOW + 1),
        base("administrator expiry this very second")
            .with(|r| r.file.admin_expires_at = Some(S_NOW))
            .deny(DenyReason::FileExpired),
        // The window, server clock, boundaries to the second.
        base("well before not_before")
            .with(|r| r.now = S_NB - 500)
            .deny(DenyReason::NotYetValid),
        base("exactly not_before")
            .with(|r| r.now = S_NB)
            .grant(VIEW_PRINT, S_NB + 600),
        base("one second before not_after").with(|r| r.now = S_NA - 1),
        base("well after not_after")
            .with(|r| r.now = S_NA + 500)
            .deny(DenyReason::PolicyExpired),
        base("no window: the whole lease")
            .with(|r| r.window = None)
            .grant(VIEW_PRINT, S_NOW + 600),
        // Keys.
        base("sealed to a rotated, still active key").with(|r| r.key = SealedTo::Rotated),
        // Renewals run the same checks and are audited as such.
        base("renewal").with(|r| r.renew = true),
        base("renewal of a revoked file")
            .with(|r| {
                r.renew = true;
                r.file.revoked = true;
            })
            .deny(DenyReason::FileRevoked),
    ];
    // Every denial alone against the baseline...
    for fault in Fault::ORDER {
        rows.push(
            base(&format!("only {fault:?}"))
                .with(|r| fault.apply(r))
                .deny(fault.reason()),
        );
    }
    // ...and every pair that can hold at once: the earlier check answers.
    for (i, first) in Fault::ORDER.iter().enumerate() {
        for second in &Fault::ORDER[i + 1..] {
            if first.excludes(*second) {
                continue;
            }
            rows.push(
                base(&format!("{first:?} and {second:?}"))
                    .with(|r| {
                        first.apply(r);
                        second.apply(r);
                    })
                    .deny(first.reason()),
            );
        }
    }
    rows
}

/// A row made real: its requester, file and the header bytes it sends.
struct Staged {
    device: Device,
    file: SealedFile,
    sent: Vec<u8>,
}

fn seal_row(row: &Row, user: &str, keys: &ServerKeys) -> SealedFile {
    let recipients: Vec<&str> = match row.reaches {
        Reaches::User => vec![user],
        Reaches::Group => vec!["@table"],
        Reaches::Both => vec!["@table", user],
        // A group the requester is not in, and another person.
        Reaches::Nobody => vec!["@elsewhere", "nobody"],
    };
    let (nb, na) = row.window.unzip();
    let key = match row.key {
        SealedTo::Current => keys.current,
        SealedTo::Rotated => keys.rotated,
        SealedTo::Retired => keys.retired,
        SealedTo::Unknown => keys.unknown,
    };
    seal_to(&[key], common::policy(&recipients, VIEW_PRINT, nb, na))
}

/// The header with one byte of the key server URL changed: it still parses
/// and keeps its file id, but its hash (the wrap's associated data) differs.
fn edited(header: &[u8]) -> Vec<u8> {
    let url = b"127.0.0.1:8443";
    let mut bytes = header.to_vec();
    let at = bytes
        .windows(url.len())
        .position(|w| w == url)
        .expect("the URL is in the header");
    bytes[at + 8] = b'9';
    bytes
}

struct ServerKeys {
    current: KasPublicKey,
    rotated: KasPublicKey,
    retired: KasPublicKey,
    unknown: KasPublicKey,
}

fn public(info: &Value) -> KasPublicKey {
    KasPublicKey::from_text(info["public_key"].as_str().expect("a public key")).expect("a key")
}

async fn admin_post(admin: &Device, path: &str, body: Option<Value>, status: StatusCode) -> Value {
    admin.expect(Method::POST, path, body, status).await
}

on_each_backend!(every_row_on_a_real_server);
async fn every_row_on_a_real_server(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let rows = server_rows();
    admin.create_group("table").await;
    admin.create_group("elsewhere").await;

    // Keys: the first key is rotated out twice; the oldest is retired once
    // every file sealed to it is registered.
    let first = admin.server_key.clone();
    let rotated = admin_post(&admin, "/v1/admin/keys/rotate", None, StatusCode::OK).await;
    let current = admin_post(&admin, "/v1/admin/keys/rotate", None, StatusCode::OK).await;
    let keys = ServerKeys {
        current: public(&current),
        rotated: public(&rotated),
        retired: KasPublicKey::from_text(&first.public_key).unwrap(),
        unknown: KasSecretKey::generate().unwrap().public_key(),
    };

    // One person, device and file per row, so rows cannot disturb each other.
    let mut staged = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let name = format!("r{index:03}");
        let roles: &[Role] = &[row.role];
        let groups: &[&str] = match row.reaches {
            Reaches::Group | Reaches::Both => &["table"],
            Reaches::User | Reaches::Nobody => &[],
        };
        let device = server.user(&admin, &name, roles, groups).await;
        let file = seal_row(row, &name, &keys);
        if row.key != SealedTo::Unknown {
            // Registered now, so the row's grant is its only audit record
            // (a first sighting would add `file.register`).
            let body = json!({"header": base64_url(&file.header_bytes)});
            admin_post(&admin, "/v1/files", Some(body), StatusCode::OK).await;
        }
        let sent = if row.edited {
            edited(&file.header_bytes)
        } else {
            file.header_bytes.clone()
        };
        staged.push(Staged { device, file, sent });
    }
    admin_post(
        &admin,
        &format!("/v1/admin/keys/{}/retire", first.key_id),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;

    // What administrators did. A file with an unknown key was never seen by
    // the server: its controls are set by id (PROTOCOL.md §7).
    for (row, st) in rows.iter().zip(&staged) {
        let id = st.file.id();
        if row.file.revoked {
            admin_post(
                &admin,
                &format!("/v1/admin/files/{id}/revoke"),
                None,
                StatusCode::OK,
            )
            .await;
        }
        if !row.file.restricted.is_empty() {
            let body = json!({ "remove": row.file.restricted });
            let path = format!("/v1/admin/files/{id}/restrict");
            admin_post(&admin, &path, Some(body), StatusCode::OK).await;
        }
        if let Some(at) = row.file.admin_expires_at {
            server.clock.set_secs(at);
            admin_post(
                &admin,
                &format!("/v1/admin/files/{id}/expire"),
                None,
                StatusCode::OK,
            )
            .await;
        }
        if row.suspended {
            let path = format!("/v1/admin/users/{}/suspend", st.device.user);
            admin_post(&admin, &path, None, StatusCode::OK).await;
        }
        if row.device_revoked {
            let path = format!("/v1/admin/devices/{}/revoke", st.device.id);
            admin_post(&admin, &path, None, StatusCode::OK).await;
        }
    }

    let mut failures = Vec::new();
    let mut reasons = std::collections::BTreeSet::new();
    for (row, st) in rows.iter().zip(&staged) {
        server.clock.set_secs(row.now);
        let (before, _) = server.state().store.audit_head().unwrap();
        let response = st.device.grant_raw(&st.sent, row.renew).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let got: Result<GrantResponse, String> = match status {
            StatusCode::OK => match serde_json::from_str(&text) {
                // The wrapped key must unwrap to the file's content key, as
                // a client would check.
                Ok(grant) => Ok(st.device.verify_grant(&st.file, grant)),
                Err(e) => Err(format!("a grant body that does not parse ({e}): {text}")),
            },
            StatusCode::FORBIDDEN => match serde_json::from_str::<Value>(&text) {
                Ok(body) if body["reason"].is_string() => {
                    Err(body["reason"].as_str().unwrap_or_default().to_owned())
                }
                _ => Err(format!("403 without a reason: {text}")),
            },
            other => Err(format!("HTTP {other}: {text}")),
        };
        let (after, _) = server.state().store.audit_head().unwrap();
        // Read back through the admin API; the read's own record comes after
        // what it returns.
        let records: Vec<AuditRecord> = serde_json::from_value(
            admin
                .expect(
                    Method::GET,
                    &format!("/v1/audit?after={before}&limit=10"),
                    None,
                    StatusCode::OK,
                )
                .await,
        )
        .unwrap();
        if let Some(problem) = check_row(row, st, &got, &records, after - before) {
            failures.push(format!("row {:?}: {problem}", row.name));
        }
        if let Err(reason) = row.want {
            reasons.insert(reason.as_str());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    for fault in Fault::ORDER {
        assert!(
            reasons.contains(fault.reason().as_str()),
            "{fault:?} never tested"
        );
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is wrong with a row's outcome and its audit records, if anything.
fn check_row(
    row: &Row,
    st: &Staged,
    got: &Result<GrantResponse, String>,
    records: &[AuditRecord],
    new_records: u64,
) -> Option<String> {
    let got_summary = got
        .as_ref()
        .map(|g| (g.rights, g.lease_expires_at))
        .map_err(String::as_str);
    let want_summary = row.want.map_err(DenyReason::as_str);
    if got_summary != want_summary {
        return Some(format!("got {got_summary:?}, want {want_summary:?}"));
    }
    if new_records != 1 {
        return Some(format!(
            "the request appended {new_records} audit records, want exactly one"
        ));
    }
    let [record] = records else {
        return Some(format!(
            "want exactly one new audit record, got {records:?}"
        ));
    };
    let action = if row.renew { "renew" } else { "grant" };
    let (result, reason) = match row.want {
        Ok(_) => ("ok", None),
        Err(reason) => ("denied", Some(reason.as_str())),
    };
    let mut wrong = Vec::new();
    if record.action != action {
        wrong.push(format!("action {:?}", record.action));
    }
    if record.result != result {
        wrong.push(format!("result {:?}", record.result));
    }
    if record.reason.as_deref() != reason {
        wrong.push(format!("reason {:?}", record.reason));
    }
    if record.actor_user.as_deref() != Some(st.device.user.as_str()) {
        wrong.push(format!("user {:?}", record.actor_user));
    }
    if record.actor_device.as_deref() != Some(st.device.id.as_str()) {
        wrong.push(format!("device {:?}", record.actor_device));
    }
    if record.file_id.as_deref() != Some(st.file.id().as_str()) {
        wrong.push(format!("file {:?}", record.file_id));
    }
    if record.at_ms != row.now * 1000 {
        wrong.push(format!("at_ms {}", record.at_ms));
    }
    if let Ok(grant) = got {
        let detail = record.detail.as_deref().unwrap_or("");
        if !detail.contains(&format!("grant={}", grant.grant_id))
            || !detail.contains(&format!("lease_expires_at={}", grant.lease_expires_at))
        {
            wrong.push(format!("detail {detail:?}"));
        }
    }
    (!wrong.is_empty()).then(|| format!("audit record {}: {}", record.seq, wrong.join(", ")))
}
