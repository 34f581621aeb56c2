//! The text form of keys (FORMAT.md §11): one key line, `PREFIX` followed by
//! the key's bytes in unpadded base64url, with comment and blank lines
//! allowed around it. Every key type's `to_text` and `from_text` (the
//! X25519 pairs in `keys`, the Ed25519 signing key in `request_auth`) goes
//! through [`encode`] and [`decode`], so the rules of §11 live here once.
//!
//! What a key is and which prefix it has belongs to its type; this module
//! only knows lines, prefixes and base64.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

/// Errors reading a key or id from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyParseError {
    /// The key line does not start with the expected prefix (or there is no
    /// key line, only comments and blank lines).
    #[error("not {expected}: the text must start with {prefix:?}")]
    WrongPrefix {
        /// What kind of key was expected.
        expected: &'static str,
        /// The prefix it must start with.
        prefix: &'static str,
    },
    /// The encoded bytes are malformed or have the wrong length.
    #[error("malformed {expected}: bad encoding or wrong length")]
    Malformed {
        /// What kind of key was expected.
        expected: &'static str,
    },
    /// More than one line is neither blank nor a `#` comment: a key file
    /// holds one key (FORMAT.md §11).
    #[error(
        "not {expected}: the text has more than one key line (a key file holds one key; comment lines start with '#')"
    )]
    MoreThanOneKey {
        /// What kind of key was expected.
        expected: &'static str,
    },
}

/// The one-line text form of `bytes`: `prefix` then unpadded base64url.
/// For a secret key the text is the secret, so it is encoded straight into
/// one buffer that is wiped on drop: no intermediate string or reallocation
/// leaves a copy behind (`encode_string` would pass through a stack buffer).
pub(crate) fn encode(prefix: &str, bytes: &[u8]) -> Zeroizing<String> {
    let encoded_len =
        base64::encoded_len(bytes.len(), false).expect("a key's base64 length fits in usize");
    let mut text = Zeroizing::new(vec![0u8; prefix.len() + encoded_len]);
    text[..prefix.len()].copy_from_slice(prefix.as_bytes());
    URL_SAFE_NO_PAD
        .encode_slice(bytes, &mut text[prefix.len()..])
        .expect("the buffer is sized to the encoding");
    // Moves the bytes into the String (no copy); the prefixes and base64 are ASCII.
    let text = String::from_utf8(std::mem::take(&mut *text))
        .expect("a key text prefix and base64url are ASCII");
    Zeroizing::new(text)
}

/// Reads the `N`-byte key of a key file's text, following FORMAT.md §11:
///
/// - lines are split at LF; a CR before the LF belongs to the line ending;
/// - white space (Unicode White_Space, as `str::trim`) is removed from both
///   ends of each line;
/// - a line that is then empty, or starts with `#`, is ignored;
/// - exactly one line must remain, the key line, which must be `prefix`
///   (case-sensitive) followed by exactly `N` bytes in unpadded base64url
///   (RFC 4648 §5, canonical), with nothing after it.
///
/// Comment lines are never searched for a key: the secret key file written
/// by `irm keygen` carries its public key in a `# public key:` comment.
pub(crate) fn decode<const N: usize>(
    text: &str,
    prefix: &'static str,
    expected: &'static str,
) -> Result<Zeroizing<[u8; N]>, KeyParseError> {
    let mut key_lines = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'));
    let line = key_lines.next().unwrap_or("");
    if key_lines.next().is_some() {
        return Err(KeyParseError::MoreThanOneKey { expected });
    }
    let encoded = line
        .strip_prefix(prefix)
        .ok_or(KeyParseError::WrongPrefix { expected, prefix })?;
    let bytes = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| KeyParseError::Malformed { expected })?,
    );
    let mut out = Zeroizing::new([0u8; N]);
    if bytes.len() != N {
        return Err(KeyParseError::Malformed { expected });
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "IRM-TEST-KEY-V1:";

    fn key_line(byte: u8) -> String {
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode([byte; 32]))
    }

    fn read(text: &str) -> Result<[u8; 32], KeyParseError> {
        decode::<32>(text, PREFIX, "a test key").map(|k| *k)
    }

    #[test]
    fn encode_writes_the_prefix_and_unpadded_base64url() {
        let text = encode(PREFIX, &[0xFB; 32]);
        assert_eq!(*text, key_line(0xFB));
        assert!(!text.contains('='), "{}", *text);
        assert_eq!(read(&text), Ok([0xFB; 32]));
    }

    /// FORMAT.md §11, row by row: what a reader makes of each text.
    #[test]
    fn key_files_read_as_section_11_says() {
        let key = key_line(7);
        let other = key_line(9);
        let wrong = || KeyParseError::WrongPrefix {
            expected: "a test key",
            prefix: PREFIX,
        };
        let malformed = || KeyParseError::Malformed {
            expected: "a test key",
        };
        let several = || KeyParseError::MoreThanOneKey {
            expected: "a test key",
        };
        type Case = (&'static str, String, Result<[u8; 32], KeyParseError>);
        let cases: Vec<Case> = vec![
            ("the key line alone", key.clone(), Ok([7; 32])),
            ("a final LF", format!("{key}\n"), Ok([7; 32])),
            (
                "CRLF line endings",
                format!("# c\r\n{key}\r\n\r\n"),
                Ok([7; 32]),
            ),
            ("blank lines around", format!("\n\n{key}\n\n"), Ok([7; 32])),
            (
                "spaces and tabs around",
                format!("  \t{key} \t\n"),
                Ok([7; 32]),
            ),
            (
                "U+3000 around",
                format!("\u{3000}{key}\u{3000}"),
                Ok([7; 32]),
            ),
            (
                "comments before and after",
                format!("# made by irm keygen\n{key}\n# end\n"),
                Ok([7; 32]),
            ),
            (
                "an indented comment",
                format!("   # note\n{key}"),
                Ok([7; 32]),
            ),
            (
                "a key in a comment is not read",
                format!("# public key: {other}\n{key}\n"),
                Ok([7; 32]),
            ),
            (
                "only a key in a comment",
                format!("# public key: {other}\n"),
                Err(wrong()),
            ),
            ("empty text", String::new(), Err(wrong())),
            ("comments only", "# a\n# b\n".to_owned(), Err(wrong())),
            ("two key lines", format!("{key}\n{other}\n"), Err(several())),
            (
                "a second line of anything",
                format!("{key}\nnot a comment\n"),
                Err(several()),
            ),
            ("a lowercase prefix", key.to_lowercase(), Err(wrong())),
            (
                "a BOM before the key",
                format!("\u{feff}{key}"),
                Err(wrong()),
            ),
            (
                "a trailing comment on the line",
                format!("{key} # mine"),
                Err(malformed()),
            ),
            (
                "a space after the prefix",
                key.replacen(':', ": ", 1),
                Err(malformed()),
            ),
            ("padding", format!("{key}="), Err(malformed())),
            (
                "standard base64's '+'",
                key.replacen('B', "+", 1),
                Err(malformed()),
            ),
            (
                "a CR inside the line",
                key.replacen('B', "\rB", 1),
                Err(malformed()),
            ),
            (
                "31 bytes",
                format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode([7; 31])),
                Err(malformed()),
            ),
            (
                "33 bytes",
                format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode([7; 33])),
                Err(malformed()),
            ),
        ];
        for (case, text, want) in cases {
            assert_eq!(read(&text), want, "{case}: {text:?}");
        }
    }

    /// The last base64 character of 32 bytes carries 4 bits of padding; a
    /// text with them set is another spelling of the same key and is refused,
    /// so a key has one text form.
    #[test]
    fn a_non_canonical_last_character_is_refused() {
        let key = key_line(0);
        assert!(key.ends_with('A'), "{key}");
        let mut other = key.clone();
        other.pop();
        other.push('B');
        assert_eq!(read(&key), Ok([0; 32]));
        assert_eq!(
            read(&other),
            Err(KeyParseError::Malformed {
                expected: "a test key"
            })
        );
    }
}
