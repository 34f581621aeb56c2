//! Which audit records `GET /v1/audit` returns (PROTOCOL.md §7.5): from a
//! point on (for paging and following) or the newest ones (for a tail), by
//! person, file, kind of action and time. Written once here and used by the
//! server (which parses it) and the client (which writes it).

/// The most records one answer holds.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// A query of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records after this sequence number.
    pub after: u64,
    /// At most this many records (1 to [`MAX_AUDIT_PAGE`]).
    pub limit: u32,
    /// The newest `limit` matching records (still oldest first), rather
    /// than the first `limit` after `after`.
    pub newest: bool,
    /// Only records whose actor is this user.
    pub user: Option<String>,
    /// Only records about this file (32 hex digits).
    pub file: Option<String>,
    /// Only this action (`grant`), or every action under it (`admin`
    /// matches `admin.user.create`, `admin.file` matches `admin.file.revoke`).
    pub action: Option<String>,
    /// Only records at or after this time (Unix milliseconds).
    pub since_ms: Option<u64>,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            after: 0,
            limit: 100,
            newest: false,
            user: None,
            file: None,
            action: None,
            since_ms: None,
        }
    }
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl AuditQuery {
    /// The query string (without `?`), parameters in a fixed order.
    pub fn to_query(&self) -> String {
        let mut parts = vec![
            format!("after={}", self.after),
            format!("limit={}", self.limit),
        ];
        if self.newest {
            parts.push("newest=true".into());
        }
        if let Some(user) = &self.user {
            parts.push(format!("user={}", encode(user)));
        }
        if let Some(file) = &self.file {
            parts.push(format!("file={}", encode(file)));
        }
        if let Some(action) = &self.action {
            parts.push(format!("action={}", encode(action)));
        }
        if let Some(since) = self.since_ms {
            parts.push(format!("since_ms={since}"));
        }
        parts.join("&")
    }

    /// Parses a query string. Unknown parameters, numbers that do not fit
    /// the log's 63-bit sequence numbers and times, and a limit outside
    /// 1..=[`MAX_AUDIT_PAGE`] are refused with what is wrong; `reason` (why
    /// the caller reads, PROTOCOL.md §7) is left to the caller.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut parsed = Self::default();
        let number = |key: &str, value: &str| -> Result<u64, String> {
            // Digits only: `u64::from_str` would also take `+5`.
            Some(value)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|n| i64::try_from(*n).is_ok())
                .ok_or_else(|| format!("{key} must be a whole number below 2^63"))
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "reason" => {}
                "after" => parsed.after = number("after", &value)?,
                "limit" => {
                    parsed.limit = u32::try_from(number("limit", &value)?)
                        .ok()
                        .filter(|l| (1..=MAX_AUDIT_PAGE).contains(l))
                        .ok_or_else(|| format!("limit must be 1 to {MAX_AUDIT_PAGE}"))?;
                }
                "newest" => {
                    parsed.newest = match &*value {
                        "true" => true,
                        "false" => false,
                        _ => return Err("newest must be true or false".into()),
                    }
                }
                "user" => parsed.user = Some(value.into_owned()),
                "file" => {
                    if value.len() != 32 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err("file must be a file id (32 hex digits)".into());
                    }
                    parsed.file = Some(value.to_ascii_lowercase());
                }
                "action" => parsed.action = Some(value.into_owned()),
                "since_ms" => parsed.since_ms = Some(number("since_ms", &value)?),
                other => return Err(format!("unknown query parameter {other:?}")),
            }
        }
        Ok(parsed)
    }

    /// Whether `action` is one this query asks for.
    pub fn matches_action(&self, action: &str) -> bool {
        self.action.as_deref().is_none_or(|wanted| {
            action == wanted
                || action
                    .strip_prefix(wanted)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_reads_back_as_written_and_bad_ones_say_why() {
        let query = AuditQuery {
            after: 7,
            limit: 50,
            newest: true,
            user: Some("alice smith".into()),
            file: Some("ab".repeat(16)),
            action: Some("admin.file".into()),
            since_ms: Some(1_800_000_000_000),
        };
        assert_eq!(AuditQuery::parse(&query.to_query()), Ok(query.clone()));
        assert_eq!(AuditQuery::parse(""), Ok(AuditQuery::default()));
        for (bad, says) in [
            ("after=9223372036854775808", "below 2^63"),
            ("after=-1", "whole number"),
            ("after=+5", "whole number"),
            ("since_ms=", "whole number"),
            ("limit=0", "limit must be 1 to 1000"),
            ("limit=1001", "limit must be 1 to 1000"),
            ("file=abc", "32 hex digits"),
            ("newest=yes", "true or false"),
            ("colour=red", "unknown query parameter"),
        ] {
            let err = AuditQuery::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(query.matches_action("admin.file.revoke"));
        assert!(!query.matches_action("admin.filex"));
        assert!(!query.matches_action("admin.user.create"));
    }
}
