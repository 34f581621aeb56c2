//! What a device asks the push channel for (`GET /v1/watch?..`,
//! PROTOCOL.md §13): the file it holds open and the change cursor to
//! resume from. Written once here, parsed by the server and written by the
//! client.

/// The longest change cursor accepted (an opaque token of the server's).
pub const MAX_WATCH_CURSOR_LEN: usize = 64;

/// A watch request's query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchQuery {
    /// The open file (32 hex digits), whose changes are reported besides
    /// those of the person and the device; none: the person and device only.
    pub file: Option<String>,
    /// Report the changes after this cursor (from the grant's
    /// `watch_cursor`, or the last event seen); none: from now.
    pub after: Option<String>,
}

impl WatchQuery {
    /// The query string (without `?`), parameters in a fixed order.
    pub fn to_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(file) = &self.file {
            query.append_pair("file", file);
        }
        if let Some(after) = &self.after {
            query.append_pair("after", after);
        }
        query.finish()
    }

    /// Parses a query string; unknown or repeated parameters, a file that
    /// is not a file id and an over-long or non-printable cursor are
    /// refused with what is wrong.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut parsed = Self::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*key {
                "file" => {
                    if value.len() != 32 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err("file must be a file id (32 hex digits)".into());
                    }
                    &mut parsed.file
                }
                "after" => {
                    if value.is_empty()
                        || value.len() > MAX_WATCH_CURSOR_LEN
                        || !value.bytes().all(|b| b.is_ascii_graphic())
                    {
                        return Err(format!(
                            "after must be a cursor the server gave (1 to {MAX_WATCH_CURSOR_LEN} printable characters)"
                        ));
                    }
                    &mut parsed.after
                }
                other => return Err(format!("unknown query parameter {other:?}")),
            };
            if slot.is_some() {
                return Err(format!("{key} is given twice"));
            }
            *slot = Some(if &*key == "file" {
                value.to_ascii_lowercase()
            } else {
                value.into_owned()
            });
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_query_reads_back_as_written_and_bad_ones_say_why() {
        let query = WatchQuery {
            file: Some("ab".repeat(16)),
            after: Some("00ff00ff00ff00ff.12".into()),
        };
        assert_eq!(WatchQuery::parse(&query.to_query()), Ok(query));
        assert_eq!(WatchQuery::parse(""), Ok(WatchQuery::default()));
        for (bad, says) in [
            ("file=abc", "file id"),
            ("after=", "cursor"),
            (&format!("after={}", "a".repeat(65)), "cursor"),
            ("after=a%0Ab", "cursor"),
            (
                "file=00000000000000000000000000000000&file=00000000000000000000000000000000",
                "twice",
            ),
            ("follow=1", "unknown"),
        ] {
            let err = WatchQuery::parse(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
