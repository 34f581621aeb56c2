//! The weekly digest to each group's data owner (PROTOCOL.md §7.7): who
//! the owner is (a mailbox or a webhook, configured on the key server per
//! group), what the server tells auditors about them
//! (`GET /v1/admin/data-owners`), and what the CLI reports back once it has
//! sent the digests (`POST /v1/admin/digests`).
//!
//! Building and sending the digest is the CLI's (`irm admin audit digest`);
//! what a stretch of the log says is its audit report's. This module only
//! holds the shapes both sides agree on and the one check of a contact, so
//! that the server refuses at start what the CLI could not send to.

use serde::{Deserialize, Serialize};

/// The longest contact the server accepts (`mailto:` or `https://` URL).
pub const MAX_OWNER_CONTACT_LEN: usize = 512;

/// The most deliveries one `POST /v1/admin/digests` may report.
pub const MAX_DIGEST_DELIVERIES: usize = 1000;

/// A group's data owner: where their digest goes. `Debug` shows a webhook
/// by its host only ([`OwnerContact::shown`]): its path is often its token,
/// and settings get logged.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum OwnerContact {
    /// `mailto:ADDRESS`: an e-mail to one mailbox.
    Mailbox(String),
    /// `https://...`: the digest's JSON body POSTed to a receiver.
    Webhook(String),
}

impl std::fmt::Debug for OwnerContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mailbox(address) => f.debug_tuple("Mailbox").field(address).finish(),
            Self::Webhook(_) => f.debug_tuple("Webhook").field(&self.shown()).finish(),
        }
    }
}

/// A contact that is not one line of `mailto:` or `https://`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContactError {
    /// Empty, too long, or holding white space or control characters
    /// (a line break in a mail header would let it add headers).
    #[error(
        "a data-owner contact is one word of at most {MAX_OWNER_CONTACT_LEN} bytes, without spaces or control characters"
    )]
    Malformed,
    /// Neither `mailto:` nor `https://`.
    #[error("a data-owner contact is mailto:ADDRESS or https://HOST/PATH (plain http is refused)")]
    Scheme,
    /// `mailto:` with something that is not `local@domain`, or with
    /// more than one address or any header (`?cc=`).
    #[error("a mailto: contact names exactly one address local@domain, with no ?headers")]
    Address,
    /// `https://` without a host.
    #[error("an https:// contact needs a host")]
    Host,
}

impl OwnerContact {
    /// Checks a contact as the config file gives it.
    pub fn parse(text: &str) -> Result<Self, ContactError> {
        if text.is_empty()
            || text.len() > MAX_OWNER_CONTACT_LEN
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
            || text.chars().any(is_bidi_control)
        {
            return Err(ContactError::Malformed);
        }
        if let Some(address) = text.strip_prefix("mailto:") {
            let (local, domain) = address.rsplit_once('@').ok_or(ContactError::Address)?;
            // One address, no headers, nothing a mail header would read
            // as a second address or a comment.
            let forbidden = |c: char| {
                matches!(
                    c,
                    '?' | '&' | ',' | ';' | '<' | '>' | '"' | '(' | ')' | '\\' | '@'
                )
            };
            if local.is_empty()
                || domain.is_empty()
                || local.chars().any(forbidden)
                || domain.chars().any(forbidden)
                || !domain.contains(|c: char| c.is_alphanumeric())
            {
                return Err(ContactError::Address);
            }
            return Ok(Self::Mailbox(address.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("https://") {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            if host.is_empty() || host.starts_with(':') {
                return Err(ContactError::Host);
            }
            return Ok(Self::Webhook(text.to_owned()));
        }
        Err(ContactError::Scheme)
    }

    /// The contact as configured: `mailto:ADDRESS` or the URL.
    pub fn as_config(&self) -> String {
        match self {
            Self::Mailbox(address) => format!("mailto:{address}"),
            Self::Webhook(url) => url.clone(),
        }
    }

    /// The contact as the audit log names it: the address, or for a
    /// webhook only its scheme and host, since a receiver's path often
    /// carries its access token (`https://hooks.example/T0/B1/XXXX`).
    pub fn shown(&self) -> String {
        match self {
            Self::Mailbox(address) => format!("mailto:{address}"),
            Self::Webhook(url) => {
                let rest = url.strip_prefix("https://").unwrap_or(url);
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
                format!("https://{host}/")
            }
        }
    }
}

/// The Unicode controls that reorder text (U+202A..U+202E, U+2066..U+2069,
/// and the marks U+200E, U+200F, U+061C): refused in a contact, where they
/// could make one address read as another.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// `GET /v1/admin/data-owners`: every group with a data owner configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataOwners {
    /// When the server answered (Unix seconds).
    pub at: u64,
    /// One per configured group, by group name.
    pub owners: Vec<DataOwner>,
}

/// One group's data owner, and what the group covers now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataOwner {
    /// The group, without `@`.
    pub group: String,
    /// `mailto:ADDRESS` or an `https://` URL, as configured
    /// ([`OwnerContact::parse`] holds).
    pub contact: String,
    /// Its members now, sorted.
    pub members: Vec<String>,
    /// The files the server knows whose policy names `@group`, sorted:
    /// "the group's files" of its digest.
    pub files: Vec<String>,
}

/// `POST /v1/admin/digests`: the digests a run sent, for the record
/// (audited as `admin.digest.sent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DigestSentRequest {
    /// The period's start (Unix milliseconds, inclusive).
    pub since_ms: u64,
    /// The period's end (Unix milliseconds, exclusive).
    pub until_ms: u64,
    /// The `seq` of the last audit record the digests were built from.
    pub head_seq: u64,
    /// One per group the run tried, at most [`MAX_DIGEST_DELIVERIES`].
    pub deliveries: Vec<DigestDelivery>,
}

/// One group's digest: whether its owner took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DigestDelivery {
    /// The group (it must have a data owner configured).
    pub group: String,
    /// Whether the mail server or the webhook took it.
    pub delivered: bool,
    /// How many tries it took (or were made).
    pub attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_one_mailbox_or_an_https_url() {
        assert_eq!(
            OwnerContact::parse("mailto:owner@client.example"),
            Ok(OwnerContact::Mailbox("owner@client.example".into()))
        );
        let hook = OwnerContact::parse("https://hooks.client.example/T0/secret").unwrap();
        assert_eq!(hook.shown(), "https://hooks.client.example/");
        assert_eq!(hook.as_config(), "https://hooks.client.example/T0/secret");
        assert!(!format!("{hook:?}").contains("secret"), "{hook:?}");
        for bad in [
            "",
            "http://hooks.example/x",
            "owner@client.example",
            "mailto:owner@client.example\r\nBcc: spy@evil.example",
            "mailto:owner@client.example\nBcc:spy@evil.example",
            "mailto:a@b.example,c@d.example",
            "mailto:a@b.example?cc=c@d.example",
            "mailto:<a@b.example>",
            "mailto:@b.example",
            "mailto:a@",
            "mailto:ow\u{202E}ner@client.example",
            "https://",
            "https:///path",
            "mailto:owner@client.example ",
        ] {
            assert!(OwnerContact::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("https://h.example/{}", "a".repeat(MAX_OWNER_CONTACT_LEN));
        assert_eq!(OwnerContact::parse(&long), Err(ContactError::Malformed));
    }
}
