//! The policy carried in every header (FORMAT.md §5): who may open the file,
//! with which rights, and during which window.
//!
//! This module owns the policy's types, validation and canonical encoding, and
//! the pure question "which rights does this person get from the header". It
//! does not decide whether a grant is issued now: that needs the key server's
//! clock and revocation state, and lives there.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{RecordReader, RecordWriter, value};
use crate::error::{FormatError, PolicyError};

/// FORMAT.md §7 limits.
pub(crate) const MAX_GRANTS: usize = 256;
pub(crate) const MAX_RECIPIENTS_PER_GRANT: usize = 4096;
pub(crate) const MAX_NAME_LEN: usize = 256;
pub(crate) const MAX_CLASSIFICATION_LEN: usize = 256;

/// The lease a viewer may hold offline when the sealer did not choose one.
pub const DEFAULT_MAX_LEASE_SECS: u32 = 600;

bitflags::bitflags! {
    /// What a person may do with an opened file. Unknown bits (rights added by
    /// later versions) are kept so that the header re-encodes identically,
    /// but grant nothing to this version.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Rights: u32 {
        /// Read the content on screen.
        const VIEW = 1 << 0;
        /// Print it (watermarked, audited).
        const PRINT = 1 << 1;
        /// Copy selections to the clipboard.
        const COPY = 1 << 2;
        /// Save a plaintext copy.
        const EXPORT = 1 << 3;
        /// Hand plaintext to another program through the library (irm_read).
        const PROGRAM = 1 << 4;
    }
}

impl Rights {
    /// The names, in bit order, as used by the CLI, JSON and the protocol.
    pub const NAMES: [(&'static str, Rights); 5] = [
        ("view", Rights::VIEW),
        ("print", Rights::PRINT),
        ("copy", Rights::COPY),
        ("export", Rights::EXPORT),
        ("program", Rights::PROGRAM),
    ];

    /// Parses a comma-separated list such as `view,print`.
    pub fn parse_list(list: &str) -> Result<Rights, PolicyError> {
        let mut rights = Rights::empty();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let (_, right) = Self::NAMES
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(name))
                .ok_or_else(|| PolicyError::UnknownRight {
                    name: name.to_owned(),
                })?;
            rights |= *right;
        }
        Ok(rights)
    }

    /// The names of the known rights that are set.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(_, right)| self.contains(*right))
            .map(|(name, _)| *name)
            .collect()
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            f.write_str("(none)")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

impl Serialize for Rights {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Rights {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Rights::parse_list(&names.join(",")).map_err(serde::de::Error::custom)
    }
}

/// A person (`alice`) or a group (`@support`) named in a grant. Ordered by
/// the bytes of the encoded form, the order FORMAT.md §5.1 requires.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// One user, by login name.
    User(String),
    /// Every member of a group, by group name without the `@`.
    Group(String),
}

impl Recipient {
    /// Parses `alice` or `@support`.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let invalid = || PolicyError::InvalidRecipient {
            name: text.to_owned(),
        };
        if text.is_empty()
            || text.len() > MAX_NAME_LEN
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        match text.strip_prefix('@') {
            Some("") => Err(invalid()),
            Some(group) if group.starts_with('@') => Err(invalid()),
            Some(group) => Ok(Self::Group(group.to_owned())),
            None => Ok(Self::User(text.to_owned())),
        }
    }

    /// Parses a recipient list: names separated by commas, each trimmed of
    /// surrounding white space, empty items skipped (`alice, @support,`).
    /// Every front end that takes a list (the CLI's `--to` and `--grant`,
    /// libirm's `irm_policy_add_grant`) reads it here. At least one name.
    pub fn parse_list(list: &str) -> Result<BTreeSet<Self>, PolicyError> {
        let recipients = list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(Self::parse)
            .collect::<Result<BTreeSet<_>, _>>()?;
        if recipients.is_empty() {
            return Err(PolicyError::NoRecipients);
        }
        Ok(recipients)
    }

    /// The encoded form: the user name, or `@` and the group name.
    pub fn encoded(&self) -> String {
        match self {
            Self::User(name) => name.clone(),
            Self::Group(name) => format!("@{name}"),
        }
    }

    fn matches(&self, user: &str, groups: &[&str]) -> bool {
        match self {
            Self::User(name) => name == user,
            Self::Group(name) => groups.contains(&name.as_str()),
        }
    }
}

impl Recipient {
    fn encoded_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        let (prefix, name): (&[u8], &str) = match self {
            Self::User(name) => (b"", name),
            Self::Group(name) => (b"@", name),
        };
        prefix.iter().copied().chain(name.bytes())
    }
}

impl Ord for Recipient {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.encoded_bytes().cmp(other.encoded_bytes())
    }
}

impl PartialOrd for Recipient {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded())
    }
}

impl Serialize for Recipient {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.encoded().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Recipient::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The OpenAPI schemas of the two policy types whose JSON form is not their
/// Rust shape: [`Rights`] travels as a list of right names, [`Recipient`] as
/// its encoded text. Written from the same tables the serde impls use.
#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};

    use super::{Recipient, Rights};

    impl utoipa::PartialSchema for Rights {
        fn schema() -> RefOr<Schema> {
            let right = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(Rights::NAMES.iter().map(|(name, _)| *name)));
            ArrayBuilder::new()
                .items(right)
                .unique_items(true)
                .description(Some("Right names (FORMAT.md §5.2)."))
                .into()
        }
    }

    impl utoipa::ToSchema for Rights {}

    impl utoipa::PartialSchema for Recipient {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "A user (`alice`) or a group (`@support`), FORMAT.md §5.1.",
                ))
                .into()
        }
    }

    impl utoipa::ToSchema for Recipient {}
}

/// One line of a policy: these recipients get these rights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyGrant {
    /// Users and groups, sorted and without duplicates.
    pub recipients: BTreeSet<Recipient>,
    /// The rights they get.
    pub rights: Rights,
}

impl PolicyGrant {
    /// A grant of `rights` to `recipients`; both must be non-empty.
    pub fn new(recipients: BTreeSet<Recipient>, rights: Rights) -> Result<Self, PolicyError> {
        if recipients.is_empty() {
            return Err(PolicyError::NoRecipients);
        }
        if rights.is_empty() {
            return Err(PolicyError::NoRights);
        }
        Ok(Self { recipients, rights })
    }

    /// Parses the one written form of a grant, `RECIPIENTS=RIGHTS`, such as
    /// `@agents=view` or `alice, @leads=view,print` (the CLI's `--grant`).
    /// The recipients are a list as [`Recipient::parse_list`] reads it, the
    /// rights a list as [`Rights::parse_list`] reads it.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let (recipients, rights) =
            text.split_once('=')
                .ok_or_else(|| PolicyError::GrantSyntax {
                    text: text.to_owned(),
                })?;
        Self::new(
            Recipient::parse_list(recipients)?,
            Rights::parse_list(rights)?,
        )
    }
}

/// A file's policy (FORMAT.md §5). Build one with [`Policy::builder`], which
/// validates it and puts it in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    /// Grants, sorted by their encoding, without duplicates.
    pub grants: Vec<PolicyGrant>,
    /// The file cannot be opened before this time (Unix seconds, UTC).
    pub not_before_unix: Option<u64>,
    /// The file cannot be opened from this time on (Unix seconds, UTC).
    pub not_after_unix: Option<u64>,
    /// The longest lease a viewer may hold without asking the key server again.
    pub max_lease_secs: u32,
    /// Whether viewers must draw a watermark naming the person.
    pub watermark_required: bool,
    /// A free-form classification such as "confidential".
    pub classification: Option<String>,
}

/// Builds a [`Policy`] field by field, so that the two optional times and
/// the lease cannot be passed in each other's place; [`PolicyBuilder::build`]
/// validates the result and puts it in canonical form.
///
/// ```
/// # use irm_core::{Policy, PolicyGrant, Rights};
/// let policy = Policy::builder()
///     .grant(PolicyGrant::parse("@support=view")?)
///     .not_after(1_900_000_000)
///     .classification(Some("confidential"))
///     .build()?;
/// assert_eq!(policy.max_lease_secs, irm_core::DEFAULT_MAX_LEASE_SECS);
/// assert!(policy.watermark_required);
/// # Ok::<(), irm_core::PolicyError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct PolicyBuilder {
    policy: Policy,
}

impl Default for PolicyBuilder {
    fn default() -> Self {
        Self {
            policy: Policy {
                grants: Vec::new(),
                not_before_unix: None,
                not_after_unix: None,
                max_lease_secs: DEFAULT_MAX_LEASE_SECS,
                watermark_required: true,
                classification: None,
            },
        }
    }
}

impl PolicyBuilder {
    /// Adds one grant.
    pub fn grant(mut self, grant: PolicyGrant) -> Self {
        self.policy.grants.push(grant);
        self
    }

    /// Adds several grants.
    pub fn grants(mut self, grants: impl IntoIterator<Item = PolicyGrant>) -> Self {
        self.policy.grants.extend(grants);
        self
    }

    /// The file cannot be opened before this time (Unix seconds, UTC); `None` for no limit.
    pub fn not_before(mut self, unix: impl Into<Option<u64>>) -> Self {
        self.policy.not_before_unix = unix.into();
        self
    }

    /// The file cannot be opened from this time on (Unix seconds, UTC); `None` for never.
    pub fn not_after(mut self, unix: impl Into<Option<u64>>) -> Self {
        self.policy.not_after_unix = unix.into();
        self
    }

    /// The longest lease a viewer may hold without asking the key server again.
    pub fn max_lease_secs(mut self, secs: u32) -> Self {
        self.policy.max_lease_secs = secs;
        self
    }

    /// Whether viewers must draw a watermark naming the person (default: yes).
    pub fn watermark_required(mut self, required: bool) -> Self {
        self.policy.watermark_required = required;
        self
    }

    /// A classification such as `Some("confidential")`; `None` for none.
    pub fn classification(mut self, classification: Option<impl Into<String>>) -> Self {
        self.policy.classification = classification.map(Into::into);
        self
    }

    /// Validates the policy (FORMAT.md §5, §7) and puts it in canonical form:
    /// grants sorted by their encoding and exact duplicates merged.
    pub fn build(self) -> Result<Policy, PolicyError> {
        let mut policy = self.policy;
        policy.canonicalize();
        policy.validate()?;
        Ok(policy)
    }
}

mod tag {
    pub(super) const GRANTS: u16 = 1;
    pub(super) const NOT_BEFORE: u16 = 3;
    pub(super) const NOT_AFTER: u16 = 5;
    pub(super) const MAX_LEASE: u16 = 7;
    pub(super) const WATERMARK: u16 = 9;
    pub(super) const CLASSIFICATION: u16 = 10;
    pub(super) const GRANT_RECIPIENTS: u16 = 1;
    pub(super) const GRANT_RIGHTS: u16 = 3;
}

impl Policy {
    /// A builder with the secure defaults: no time window, the default lease
    /// ([`DEFAULT_MAX_LEASE_SECS`]), the watermark required, no classification.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// Puts the grants in the order FORMAT.md §5.1 requires (ascending by
    /// their encoding, duplicates merged). The fields are public, so a policy
    /// built by hand or read from JSON may need this before it is sealed.
    pub fn canonicalize(&mut self) {
        self.grants.sort_by_cached_key(encode_grant);
        self.grants.dedup();
    }

    /// Checks the rules of FORMAT.md §5 and §7.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.grants.is_empty() {
            return Err(PolicyError::NoGrants);
        }
        if self.grants.len() > MAX_GRANTS {
            return Err(PolicyError::TooLarge {
                what: "the number of grants",
                limit: MAX_GRANTS,
            });
        }
        for grant in &self.grants {
            if grant.recipients.is_empty() {
                return Err(PolicyError::NoRecipients);
            }
            if grant.recipients.len() > MAX_RECIPIENTS_PER_GRANT {
                return Err(PolicyError::TooLarge {
                    what: "the number of recipients in a grant",
                    limit: MAX_RECIPIENTS_PER_GRANT,
                });
            }
            if grant.rights.is_empty() {
                return Err(PolicyError::NoRights);
            }
            for recipient in &grant.recipients {
                // Re-parse so that hand-built values obey the same rules.
                Recipient::parse(&recipient.encoded())?;
            }
        }
        if let (Some(nb), Some(na)) = (self.not_before_unix, self.not_after_unix) {
            if nb >= na {
                return Err(PolicyError::EmptyWindow);
            }
        }
        if let Some(classification) = &self.classification {
            if classification.len() > MAX_CLASSIFICATION_LEN
                || classification.chars().any(char::is_control)
            {
                return Err(PolicyError::TooLarge {
                    what: "the classification",
                    limit: MAX_CLASSIFICATION_LEN,
                });
            }
        }
        Ok(())
    }

    /// The rights this person gets from the policy: the union over every grant
    /// naming the user or one of their groups. Says nothing about time or
    /// revocation (the key server checks those).
    pub fn rights_for(&self, user: &str, groups: &[&str]) -> Rights {
        self.grants
            .iter()
            .filter(|g| g.recipients.iter().any(|r| r.matches(user, groups)))
            .fold(Rights::empty(), |acc, g| acc | g.rights)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let grants: Vec<Vec<u8>> = self.grants.iter().map(encode_grant).collect();
        let mut w = RecordWriter::new();
        w.list(tag::GRANTS, grants.iter());
        if let Some(nb) = self.not_before_unix {
            w.u64(tag::NOT_BEFORE, nb);
        }
        if let Some(na) = self.not_after_unix {
            w.u64(tag::NOT_AFTER, na);
        }
        w.u32(tag::MAX_LEASE, self.max_lease_secs);
        w.u8(tag::WATERMARK, u8::from(self.watermark_required));
        if let Some(classification) = &self.classification {
            w.field(tag::CLASSIFICATION, classification.as_bytes());
        }
        w.into_bytes()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        const CX: &str = "policy";
        let mut r = RecordReader::new(bytes, CX);
        let (mut grants, mut nb, mut na, mut lease, mut watermark, mut classification) =
            (None, None, None, None, None, None);
        while let Some(f) = r.next_field()? {
            match f.tag {
                tag::GRANTS => {
                    let items = value::list(f.value, MAX_GRANTS, "policy grants")?;
                    let mut decoded = Vec::with_capacity(items.len());
                    let mut previous: Option<&[u8]> = None;
                    for item in items {
                        // FORMAT.md §5.1: grants strictly ascending by encoding.
                        if previous.is_some_and(|p| p >= item) {
                            return Err(FormatError::CorruptHeader {
                                context: "policy grants",
                                problem: "grants are not in strictly ascending order",
                            });
                        }
                        previous = Some(item);
                        decoded.push(decode_grant(item)?);
                    }
                    grants = Some(decoded);
                }
                tag::NOT_BEFORE => nb = Some(value::u64(f.value, CX)?),
                tag::NOT_AFTER => na = Some(value::u64(f.value, CX)?),
                tag::MAX_LEASE => lease = Some(value::u32(f.value, CX)?),
                tag::WATERMARK => watermark = Some(value::bool(f.value, CX)?),
                tag::CLASSIFICATION => {
                    classification = Some(value::string(
                        f.value,
                        MAX_CLASSIFICATION_LEN,
                        "classification",
                    )?)
                }
                _ => r.unknown(&f)?,
            }
        }
        let missing = |problem| FormatError::CorruptHeader {
            context: CX,
            problem,
        };
        let policy = Self {
            grants: grants.ok_or_else(|| missing("the grants field is missing"))?,
            not_before_unix: nb,
            not_after_unix: na,
            max_lease_secs: lease.ok_or_else(|| missing("the lease field is missing"))?,
            watermark_required: watermark
                .ok_or_else(|| missing("the watermark field is missing"))?,
            classification,
        };
        policy.validate().map_err(FormatError::Policy)?;
        Ok(policy)
    }
}

fn encode_grant(grant: &PolicyGrant) -> Vec<u8> {
    let names: Vec<String> = grant.recipients.iter().map(Recipient::encoded).collect();
    let mut w = RecordWriter::new();
    w.list(tag::GRANT_RECIPIENTS, names.iter());
    w.u32(tag::GRANT_RIGHTS, grant.rights.bits());
    w.into_bytes()
}

fn decode_grant(bytes: &[u8]) -> Result<PolicyGrant, FormatError> {
    const CX: &str = "policy grant";
    let mut r = RecordReader::new(bytes, CX);
    let (mut recipients, mut rights) = (None, None);
    while let Some(f) = r.next_field()? {
        match f.tag {
            tag::GRANT_RECIPIENTS => {
                let mut set = BTreeSet::new();
                let mut previous: Option<String> = None;
                for item in value::list(f.value, MAX_RECIPIENTS_PER_GRANT, "recipients")? {
                    let name = value::string(item, MAX_NAME_LEN, "recipient")?;
                    // FORMAT.md §5.1: recipients strictly ascending by their bytes.
                    if previous.as_deref().is_some_and(|p| p >= name.as_str()) {
                        return Err(FormatError::CorruptHeader {
                            context: "recipients",
                            problem: "recipients are not in strictly ascending order",
                        });
                    }
                    set.insert(Recipient::parse(&name).map_err(FormatError::Policy)?);
                    previous = Some(name);
                }
                recipients = Some(set);
            }
            tag::GRANT_RIGHTS => {
                rights = Some(Rights::from_bits_retain(value::u32(f.value, CX)?));
            }
            _ => r.unknown(&f)?,
        }
    }
    let missing = |problem| FormatError::CorruptHeader {
        context: CX,
        problem,
    };
    Ok(PolicyGrant {
        recipients: recipients.ok_or_else(|| missing("the recipients field is missing"))?,
        rights: rights.ok_or_else(|| missing("the rights field is missing"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(recipients: &[&str], rights: Rights) -> PolicyGrant {
        PolicyGrant {
            recipients: recipients
                .iter()
                .map(|r| Recipient::parse(r).unwrap())
                .collect(),
            rights,
        }
    }

    #[test]
    fn recipients_sort_by_their_encoding() {
        // The BTreeSet order must equal the byte order of the encoded names,
        // or the decoder would reject what the encoder wrote.
        let names = ["zed", "@agents", "alice", "@Zgroup", "Bob", "@a"];
        let g = grant(&names, Rights::VIEW);
        let encoded: Vec<String> = g.recipients.iter().map(Recipient::encoded).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
    }

    #[test]
    fn policy_encoding_is_canonical_whatever_the_grant_order() {
        let a = grant(&["@agents"], Rights::VIEW);
        let b = grant(&["@supervisors"], Rights::VIEW | Rights::PRINT);
        let p1 = Policy::builder()
            .grants(vec![a.clone(), b.clone()])
            .not_after(10)
            .max_lease_secs(60)
            .build()
            .unwrap();
        let p2 = Policy::builder()
            .grants(vec![b, a.clone(), a])
            .not_after(10)
            .max_lease_secs(60)
            .build()
            .unwrap();
        assert_eq!(p1.encode(), p2.encode());
        assert_eq!(Policy::decode(&p1.encode()).unwrap(), p1);
    }

    #[test]
    fn rights_are_the_union_of_matching_grants() {
        let p = Policy::builder()
            .grants(vec![
                grant(&["@agents"], Rights::VIEW),
                grant(&["@supervisors", "carol"], Rights::VIEW | Rights::PRINT),
            ])
            .max_lease_secs(60)
            .build()
            .unwrap();
        assert_eq!(p.rights_for("alice", &["agents"]), Rights::VIEW);
        assert_eq!(
            p.rights_for("carol", &["agents"]),
            Rights::VIEW | Rights::PRINT
        );
        assert_eq!(p.rights_for("mallory", &["agent"]), Rights::empty());
        // A user named like a group does not match the group.
        assert_eq!(p.rights_for("agents", &[]), Rights::empty());
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert_eq!(
            Policy::builder().max_lease_secs(60).build(),
            Err(PolicyError::NoGrants)
        );
        assert_eq!(
            Policy::builder()
                .grant(grant(&["a"], Rights::empty()))
                .max_lease_secs(60)
                .build(),
            Err(PolicyError::NoRights)
        );
        assert_eq!(
            Policy::builder()
                .grant(grant(&["a"], Rights::VIEW))
                .not_before(5)
                .not_after(5)
                .max_lease_secs(60)
                .build(),
            Err(PolicyError::EmptyWindow)
        );
        for bad in ["", "@", "@@x", "a b", "tab\t", &"x".repeat(257)] {
            assert!(Recipient::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            Rights::parse_list("view,fly"),
            Err(PolicyError::UnknownRight { .. })
        ));
    }

    #[test]
    fn unknown_right_bits_survive_a_round_trip_but_grant_nothing_known() {
        let mut p = Policy::builder()
            .grant(grant(&["a"], Rights::VIEW))
            .max_lease_secs(60)
            .watermark_required(false)
            .build()
            .unwrap();
        p.grants[0].rights = Rights::from_bits_retain(Rights::VIEW.bits() | 1 << 20);
        let decoded = Policy::decode(&p.encode()).unwrap();
        assert_eq!(decoded.encode(), p.encode());
        assert_eq!(decoded.rights_for("a", &[]).names(), vec!["view"]);
    }
}
