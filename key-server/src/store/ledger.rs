//! The state ledger (PROTOCOL.md §11.3): what makes the rows the grant
//! decision reads unforgeable by whoever can write the database. Every
//! audit record that changes such a row carries a token
//! `state=OBJECT#MAC`, where MAC is an HMAC, under a key sealed in the
//! keystore, of the object's state as the decision reads it and of the
//! record's own sequence number. The writer keeps the newest token of each
//! object in memory (rebuilt from the chain when the keys are unsealed) and
//! checks a row against it before deciding on it: a row inserted, deleted
//! or written back from an older copy does not match, and is refused
//! (`state_integrity`), never taken as absent.

use std::collections::HashMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use irm_core::protocol::{ApprovalInfo, TakeOut};

use super::changes::Changed;
use super::contract::{DeviceRecord, StateKey, UserRecord};
use super::tables::{BreakGlassRow, CodeRow, FileRow, RequestRow, Tables};
use crate::error::StoreError;
use crate::grant::decision::FileControls;

/// The label every state MAC starts with.
const LABEL: &[u8] = b"irm/v1/state\n";
/// Bytes of a MAC kept and written (128 bits).
const MAC_LEN: usize = 16;

/// An object whose stored state decides who reads what.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Object {
    /// A user: active or suspended, and roles.
    User(String),
    /// A device: whose, active or revoked, and its keys.
    Device(String),
    /// A user's membership of a group.
    Member {
        /// The group.
        group: String,
        /// The user.
        user: String,
    },
    /// A file's administrative controls (revoked, expired, restricted).
    File(String),
    /// An approval rule: the approvals an action needs.
    Rule(String),
    /// A detection rule's setting (PROTOCOL.md §12.2).
    Detection(String),
    /// A user's live enrollment code (its hash, expiry and origin).
    Code(String),
    /// An approval request: its action, state and approvals.
    Request(String),
    /// The break-glass code.
    BreakGlass,
    /// A key server key's state (current, active or retired).
    Key(String),
    /// A detection rule's hold on a person's grants (PROTOCOL.md §12).
    Hold(String),
    /// An approved take-out: one way, one file, one person's device.
    TakeOut {
        /// Export, copy, print or program.
        how: TakeOut,
        /// The file.
        file: String,
        /// The person.
        user: String,
        /// Their device.
        device: String,
    },
}

impl Object {
    /// What a change to this object means for open documents (the push
    /// channel, PROTOCOL.md §13), if anything.
    pub(super) fn changed(&self) -> Option<Changed> {
        match self {
            Self::User(user) | Self::Hold(user) | Self::Member { user, .. } => {
                Some(Changed::User(user.clone()))
            }
            Self::Device(id) => Some(Changed::Device(id.clone())),
            Self::File(id) => Some(Changed::File(id.clone())),
            // Codes, rules, requests, keys and take-outs change no open grant.
            _ => None,
        }
    }
}

impl Object {
    /// The object's name in tokens: `user/NAME`, `device/ID`,
    /// `member/GROUP/USER`, `file/ID` (names and ids hold no `/`, `#` or
    /// space).
    pub(crate) fn name(&self) -> String {
        match self {
            Self::User(name) => format!("user/{name}"),
            Self::Device(id) => format!("device/{id}"),
            Self::Member { group, user } => format!("member/{group}/{user}"),
            Self::File(id) => format!("file/{id}"),
            Self::Rule(action) => format!("rule/{action}"),
            Self::Detection(rule) => format!("detection/{rule}"),
            Self::Code(user) => format!("code/{user}"),
            Self::Request(id) => format!("request/{id}"),
            Self::BreakGlass => "break_glass/current".into(),
            Self::Key(id) => format!("key/{id}"),
            Self::Hold(user) => format!("hold/{user}"),
            Self::TakeOut {
                how,
                file,
                user,
                device,
            } => format!("take_out/{}/{file}/{user}/{device}", how.as_str()),
        }
    }

    /// Its state as stored now, in the canonical text the MAC covers.
    pub(crate) fn state(&self, conn: &mut impl Tables) -> Result<String, StoreError> {
        Ok(match self {
            Self::User(name) => user_state(conn.user(name)?.as_ref()),
            Self::Device(id) => device_state(conn.device(id)?.as_ref()),
            Self::Member { group, user } => member_state(conn.user(user)?.as_ref(), group),
            Self::File(id) => file_state(conn.file(id)?.as_ref()),
            Self::Rule(action) => rule_state(conn.approval_rule(action)?),
            Self::Detection(rule) => conn
                .detection_rule(rule)?
                .unwrap_or_else(|| "absent".to_owned()),
            Self::Code(user) => code_state(conn.user_code(user)?.as_ref()),
            Self::Request(id) => {
                let row = conn.request(id)?;
                let approvals = match &row {
                    Some(_) => conn.approvals(id)?,
                    None => Vec::new(),
                };
                request_state(row.as_ref(), &approvals)
            }
            Self::BreakGlass => break_glass_state(conn.break_glass()?.as_ref()),
            Self::Key(id) => key_state(conn.key_state(id)?.as_deref()),
            Self::Hold(user) => hold_state(conn.hold(user)?.as_ref()),
            Self::TakeOut {
                how,
                file,
                user,
                device,
            } => take_out_state(conn.take_out(*how, file, user, device)?),
        })
    }

    /// The object a token names (`user/NAME`, ...), if it is one.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        let (kind, rest) = name.split_once('/')?;
        Some(match kind {
            "user" => Self::User(rest.to_owned()),
            "device" => Self::Device(rest.to_owned()),
            "member" => {
                let (group, user) = rest.split_once('/')?;
                Self::Member {
                    group: group.to_owned(),
                    user: user.to_owned(),
                }
            }
            "file" => Self::File(rest.to_owned()),
            "rule" => Self::Rule(rest.to_owned()),
            "detection" => Self::Detection(rest.to_owned()),
            "code" => Self::Code(rest.to_owned()),
            "request" => Self::Request(rest.to_owned()),
            "break_glass" => Self::BreakGlass,
            "key" => Self::Key(rest.to_owned()),
            "hold" => Self::Hold(rest.to_owned()),
            "take_out" => {
                let mut parts = rest.split('/');
                let how = match parts.next()? {
                    "export" => TakeOut::Export,
                    "copy" => TakeOut::Copy,
                    "print" => TakeOut::Print,
                    "program" => TakeOut::Program,
                    _ => return None,
                };
                Self::TakeOut {
                    how,
                    file: parts.next()?.to_owned(),
                    user: parts.next()?.to_owned(),
                    device: parts.next()?.to_owned(),
                }
            }
            _ => return None,
        })
    }

    /// The state an object has when no audit record ever set it.
    fn initial(&self) -> &'static str {
        match self {
            Self::File(_) | Self::Code(_) => "none",
            _ => "absent",
        }
    }
}

/// A hold's state: `absent`, or the rule and when it fired (the detail is
/// for people, not for the decision).
pub(crate) fn hold_state(hold: Option<&super::contract::HoldRow>) -> String {
    match hold {
        None => "absent".into(),
        Some(hold) => format!("rule={} since={}", hold.rule, hold.since),
    }
}

/// A user's state: `absent`, or whether active and the roles, sorted.
pub(crate) fn user_state(user: Option<&UserRecord>) -> String {
    match user {
        None => "absent".into(),
        Some(user) => {
            let mut roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
            roles.sort_unstable();
            format!("active={} roles={}", u8::from(user.active), roles.join(","))
        }
    }
}

/// A device's state: `absent`, or whose, whether active, and its keys.
pub(crate) fn device_state(device: Option<&DeviceRecord>) -> String {
    match device {
        None => "absent".into(),
        Some(device) => format!(
            "user={} active={} public={} signing={}",
            device.user,
            u8::from(device.active),
            hex::encode(device.public_key),
            hex::encode(device.signing_key)
        ),
    }
}

/// A membership's state, from its user's record: `present` or `absent`.
pub(crate) fn member_state(user: Option<&UserRecord>, group: &str) -> String {
    let member = user.is_some_and(|u| u.groups.iter().any(|g| g == group));
    if member { "present" } else { "absent" }.into()
}

/// A file's controls: `none`, or revoked, administrative expiry, restrictions.
pub(crate) fn file_state(file: Option<&FileRow>) -> String {
    match file.map(FileRow::controls) {
        Some(c) if c != FileControls::default() => format!(
            "revoked={} expires_at={} restricted={}",
            u8::from(c.revoked),
            c.admin_expires_at
                .map_or_else(|| "-".to_owned(), |t| t.to_string()),
            c.restricted.bits()
        ),
        _ => "none".into(),
    }
}

/// An approval rule's state: `absent` (the default applies) or `required=N`.
pub(crate) fn rule_state(required: Option<u8>) -> String {
    required.map_or_else(|| "absent".to_owned(), |n| format!("required={n}"))
}

/// A user's code: `none`, or its hash, expiry and origin (the count of
/// wrong tries is not part of it: it only ever narrows).
pub(crate) fn code_state(row: Option<&CodeRow>) -> String {
    match row {
        Some(CodeRow {
            hash: Some(hash),
            expires_at: Some(expires_at),
            origin,
            ..
        }) => format!(
            "hash={} expires={expires_at} origin={}",
            hex::encode(hash),
            origin.as_deref().unwrap_or("-")
        ),
        _ => "none".into(),
    }
}

/// An approval request: `absent`, or what it asks, who asked, where it
/// stands and who approved it.
pub(crate) fn request_state(row: Option<&RequestRow>, approvals: &[ApprovalInfo]) -> String {
    match row {
        None => "absent".into(),
        Some(r) => {
            let approvals: Vec<String> = approvals
                .iter()
                .map(|a| format!("{}@{}", a.approver, a.device))
                .collect();
            format!(
                "hash={} requester={}@{} required={} state={} expires={} code={} approvals={}",
                r.action_hash,
                r.requester,
                r.requester_device,
                r.required,
                r.state.as_str(),
                r.expires_at,
                r.code_first_hash
                    .map_or_else(|| "-".to_owned(), hex::encode),
                approvals.join(",")
            )
        }
    }
}

/// The break-glass code: `absent`, or its hash, expiry and use.
pub(crate) fn break_glass_state(row: Option<&BreakGlassRow>) -> String {
    match row {
        None => "absent".into(),
        Some(r) => format!(
            "hash={} expires={} used={}",
            hex::encode(&r.hash),
            r.expires_at,
            r.used_at.map_or_else(|| "-".to_owned(), |t| t.to_string())
        ),
    }
}

/// A key's state: `absent`, or `state=current|active|retired`.
pub(crate) fn key_state(state: Option<&str>) -> String {
    state.map_or_else(|| "absent".to_owned(), |s| format!("state={s}"))
}

/// An approved take-out's state: `absent`, or `until=T`.
pub(crate) fn take_out_state(expires_at: Option<u64>) -> String {
    expires_at.map_or_else(|| "absent".to_owned(), |t| format!("until={t}"))
}

impl StateKey {
    fn mac(&self, object: &str, state: &str, seq: u64) -> [u8; MAC_LEN] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.expose())
            .expect("HMAC takes a key of any length");
        mac.update(LABEL);
        mac.update(object.as_bytes());
        mac.update(b"\n");
        mac.update(state.as_bytes());
        mac.update(b"\n");
        mac.update(seq.to_string().as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// The seal of a record's ledger section: its tokens, bound to the
    /// record's sequence number.
    fn seal(&self, tokens: &str, seq: u64) -> [u8; MAC_LEN] {
        self.mac("ledger-section", tokens, seq)
    }
}

/// The newest token of one object: the record that set it, and its MAC.
pub(crate) type Entry = (u64, [u8; MAC_LEN]);

/// The writer's ledger: the key (once unsealed) and the newest entry of
/// every object any record ever set.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    key: Option<StateKey>,
    latest: HashMap<String, Entry>,
    /// States already found to match an entry (by its seq).
    checked: HashMap<String, (u64, String)>,
}

/// What starts a record's ledger section: the last words of its detail.
const SECTION: &str = " ledger: ";

/// The ledger section of a record's detail, if it holds one whose seal
/// verifies under `key` for record `seq`: its tokens. Free text earlier in
/// a detail (a reason, a name) cannot pass for a section: the server's own
/// section always comes last, and only the key holder can seal one.
pub(crate) fn section(
    key: &StateKey,
    detail: &str,
    seq: u64,
) -> Option<Vec<(String, [u8; MAC_LEN])>> {
    let start = detail.rfind(SECTION)?;
    let words: Vec<&str> = detail[start + SECTION.len()..].split(' ').collect();
    let (seal, tokens) = words.split_last()?;
    let seal = seal.strip_prefix("seal=")?;
    let expected = key.seal(&tokens.join(" "), seq);
    let mut given = [0u8; MAC_LEN];
    hex::decode_to_slice(seal, &mut given).ok()?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &given[..])) {
        return None;
    }
    tokens
        .iter()
        .map(|word| {
            let (object, mac) = word.strip_prefix("state=")?.rsplit_once('#')?;
            let mut bytes = [0u8; MAC_LEN];
            hex::decode_to_slice(mac, &mut bytes).ok()?;
            Some((object.to_owned(), bytes))
        })
        .collect()
}

impl Ledger {
    /// Arms the ledger with `key` and the newest entries of a chain.
    pub(crate) fn arm(&mut self, key: StateKey, latest: HashMap<String, Entry>) {
        self.key = Some(key);
        self.latest = latest;
        self.checked.clear();
    }

    /// Every object the ledger has an entry for.
    pub(crate) fn objects(&self) -> impl Iterator<Item = &str> {
        self.latest.keys().map(String::as_str)
    }

    /// Records that the record `seq` set `object` (after its commit).
    pub(crate) fn set(&mut self, object: String, entry: Entry) {
        self.latest.insert(object, entry);
    }

    /// The token for `object` in state `state`, set by record `seq`.
    pub(crate) fn token(&self, object: &str, state: &str, seq: u64) -> Option<(String, Entry)> {
        let key = self.key.as_ref()?;
        let mac = key.mac(object, state, seq);
        Some((format!("state={object}#{}", hex::encode(mac)), (seq, mac)))
    }

    /// The ledger section to end record `seq`'s detail with: `tokens` and
    /// their seal.
    pub(crate) fn sealed_section(&self, tokens: &[String], seq: u64) -> Option<String> {
        let key = self.key.as_ref()?;
        let joined = tokens.join(" ");
        let seal = key.seal(&joined, seq);
        Some(format!("{SECTION}{joined} seal={}", hex::encode(seal)))
    }

    /// The key, to read sections with.
    #[cfg(test)]
    pub(crate) fn key(&self) -> Option<&StateKey> {
        self.key.as_ref()
    }

    /// Whether `object`, whose stored state is `state`, is as its newest
    /// record set it (or, if no record ever set it, in its initial state).
    /// `staged` holds the entries of the batch so far, not yet committed.
    /// Always true when unarmed. A state once checked against an entry is
    /// remembered, so a repeat grant costs a comparison, not an HMAC.
    pub(crate) fn holds(
        &mut self,
        object: &Object,
        state: &str,
        staged: &[(String, Entry)],
    ) -> bool {
        let Some(key) = &self.key else {
            return true;
        };
        let name = object.name();
        let newest = staged
            .iter()
            .rev()
            .find(|(o, _)| *o == name)
            .map(|(_, e)| *e)
            .or_else(|| self.latest.get(&name).copied());
        let Some((seq, mac)) = newest else {
            return state == object.initial();
        };
        if let Some((checked_seq, checked_state)) = self.checked.get(&name)
            && *checked_seq == seq
            && checked_state == state
        {
            return true;
        }
        let expected = key.mac(&name, state, seq);
        let holds = bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &mac[..]));
        if holds {
            self.checked.insert(name, (seq, state.to_owned()));
        }
        holds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_map_to_what_open_documents_depend_on() {
        assert_eq!(
            Object::Hold("bob".into()).changed(),
            Some(Changed::User("bob".into()))
        );
        assert_eq!(
            Object::Member {
                group: "support".into(),
                user: "bob".into()
            }
            .changed(),
            Some(Changed::User("bob".into()))
        );
        assert_eq!(Object::Code("bob".into()).changed(), None);
        assert_eq!(
            Object::Device("d".into()).changed(),
            Some(Changed::Device("d".into()))
        );
    }

    #[test]
    fn a_section_is_read_back_only_with_its_seal_and_at_its_place() {
        let mut ledger = Ledger::default();
        ledger.arm(StateKey::new([7; 32]), HashMap::new());
        let (token, (_, mac)) = ledger.token("device/ab", "absent", 9).unwrap();
        let section = ledger
            .sealed_section(std::slice::from_ref(&token), 9)
            .unwrap();
        let key = ledger.key().unwrap();
        let detail = format!("device=ab name=x reason=T{section}");
        assert_eq!(
            super::section(key, &detail, 9),
            Some(vec![("device/ab".to_owned(), mac)])
        );
        // Bound to the record: the same section in another record is nothing.
        assert_eq!(super::section(key, &detail, 10), None);
        // Free text cannot pass for a section: unsealed, or not last.
        let forged = format!("reason=x ledger: {token} seal={}", "00".repeat(16));
        assert_eq!(super::section(key, &forged, 9), None);
        let (other, _) = ledger.token("device/cd", "absent", 9).unwrap();
        let injected = format!("reason=T{section} {other}");
        assert_eq!(super::section(key, &injected, 9), None);
    }
}
