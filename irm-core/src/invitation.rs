//! The one-line enrollment invitation (docs/PROTOCOL.md §3.4): the key
//! server's URL, the SHA-256 fingerprint of its CA certificate and a
//! one-time enrollment code, or one administrator's half of it.
//!
//! The text form is shared by the key server (the bootstrap
//! administrator's invitation), the CLI and the viewer, so it lives here
//! and not in a client crate. Fetching the CA and checking it against the
//! fingerprint is the client's.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What every invitation starts with.
pub const INVITATION_PREFIX: &str = "irm-invite:1?";

/// Which part of the code an invitation carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePart {
    /// The whole code (`ABCDE-FGHIJ-KLMNO-PQRST`).
    Whole,
    /// The requesting administrator's half (`ABCDE-FGHIJ`).
    First,
    /// The approving administrator's half (`KLMNO-PQRST`).
    Second,
}

impl CodePart {
    fn as_str(self) -> Option<&'static str> {
        match self {
            Self::Whole => None,
            Self::First => Some("1/2"),
            Self::Second => Some("2/2"),
        }
    }

    /// How many groups of five characters the part holds.
    fn groups(self) -> usize {
        match self {
            Self::Whole => 4,
            Self::First | Self::Second => 2,
        }
    }
}

/// A parsed invitation.
#[derive(Clone, PartialEq, Eq)]
pub struct Invitation {
    /// `https://host:port`, with no path, query or fragment.
    pub server_url: String,
    /// SHA-256 of the DER of the key server's CA certificate.
    pub ca_sha256: [u8; 32],
    /// The code or half-code, upper case, groups joined by `-`: a secret.
    pub code: Zeroizing<String>,
    /// Which part of the code this is.
    pub part: CodePart,
}

impl fmt::Debug for Invitation {
    // The code is a one-time secret: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invitation")
            .field("server_url", &self.server_url)
            .field("ca_sha256", &hex::encode(self.ca_sha256))
            .field("part", &self.part)
            .finish_non_exhaustive()
    }
}

/// Why a text is not an invitation; the message says which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an enrollment invitation: {0}")]
pub struct InvitationError(String);

/// The fingerprint an invitation carries for a CA certificate: SHA-256 of
/// the DER of the first certificate in `pem` (what `openssl x509
/// -fingerprint -sha256` prints), or `None` if `pem` holds no certificate.
pub fn ca_fingerprint(pem: &str) -> Option<[u8; 32]> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let der = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()?;
    Some(Sha256::digest(der.as_ref()).into())
}

impl Invitation {
    /// An invitation, checking each field as [`FromStr`] would.
    pub fn new(
        server_url: &str,
        ca_sha256: [u8; 32],
        code: &str,
        part: CodePart,
    ) -> Result<Self, InvitationError> {
        Ok(Self {
            server_url: check_server_url(server_url)?,
            ca_sha256,
            code: check_code(code, part)?,
            part,
        })
    }

    /// The whole code from one whole-code invitation, or from the two
    /// halves (in either order) of the same server and CA.
    pub fn combine(invitations: &[Invitation]) -> Result<Invitation, InvitationError> {
        let err = |m: &str| Err(InvitationError(m.to_owned()));
        match invitations {
            [one] if one.part == CodePart::Whole => Ok(one.clone()),
            [_] => err(
                "this is one administrator's half of the code; give the other administrator's \
                 invitation as well",
            ),
            [a, b] => {
                let (first, second) = match (a.part, b.part) {
                    (CodePart::First, CodePart::Second) => (a, b),
                    (CodePart::Second, CodePart::First) => (b, a),
                    _ => {
                        return err(
                            "two invitations must be the two halves (1/2 and 2/2) of one code",
                        );
                    }
                };
                if first.server_url != second.server_url || first.ca_sha256 != second.ca_sha256 {
                    return err("the two halves name different key servers or CA certificates");
                }
                Ok(Invitation {
                    server_url: first.server_url.clone(),
                    ca_sha256: first.ca_sha256,
                    code: Zeroizing::new(format!("{}-{}", *first.code, *second.code)),
                    part: CodePart::Whole,
                })
            }
            [] => err("no invitation given"),
            _ => err("at most two invitations (the two halves of one code)"),
        }
    }
}

impl fmt::Display for Invitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{INVITATION_PREFIX}server={}&ca={}&code={}",
            self.server_url,
            hex::encode(self.ca_sha256),
            *self.code
        )?;
        if let Some(part) = self.part.as_str() {
            write!(f, "&part={part}")?;
        }
        Ok(())
    }
}

impl FromStr for Invitation {
    type Err = InvitationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |m: String| InvitationError(m);
        let query = text
            .trim()
            .strip_prefix(INVITATION_PREFIX)
            .ok_or_else(|| err(format!("it does not start with {INVITATION_PREFIX}")))?;
        let (mut server, mut ca, mut code, mut part) = (None, None, None, None);
        for pair in query.split('&') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| err(format!("{pair:?} is not key=value")))?;
            let slot = match key {
                "server" => &mut server,
                "ca" => &mut ca,
                "code" => &mut code,
                "part" => &mut part,
                _ => return Err(err(format!("unknown field {key:?}"))),
            };
            if slot.replace(value).is_some() {
                return Err(err(format!("the field {key:?} appears twice")));
            }
        }
        let part = match part {
            None => CodePart::Whole,
            Some("1/2") => CodePart::First,
            Some("2/2") => CodePart::Second,
            Some(other) => return Err(err(format!("part {other:?} is not 1/2 or 2/2"))),
        };
        let ca = ca.ok_or_else(|| err("the CA fingerprint (ca=) is missing".into()))?;
        let mut ca_sha256 = [0u8; 32];
        hex::decode_to_slice(ca, &mut ca_sha256)
            .map_err(|_| err("the CA fingerprint is not 64 hex digits".into()))?;
        Self::new(
            server.ok_or_else(|| err("the server URL (server=) is missing".into()))?,
            ca_sha256,
            code.ok_or_else(|| err("the code (code=) is missing".into()))?,
            part,
        )
    }
}

/// `https://host[:port]` and nothing that would need escaping here.
fn check_server_url(url: &str) -> Result<String, InvitationError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| InvitationError(format!("the server {url:?} is not an https:// URL")))?;
    let host = rest.strip_suffix('/').unwrap_or(rest);
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if host.is_empty() || !host.chars().all(fine) {
        return Err(InvitationError(format!(
            "the server {url:?} is not https://host:port"
        )));
    }
    Ok(format!("https://{host}"))
}

/// Groups of five of the code alphabet (`A-Z 2-7`), as many as `part` holds.
fn check_code(code: &str, part: CodePart) -> Result<Zeroizing<String>, InvitationError> {
    let code = Zeroizing::new(code.trim().to_ascii_uppercase());
    let groups: Vec<&str> = code.split('-').collect();
    let fine = groups.len() == part.groups()
        && groups.iter().all(|g| {
            g.len() == 5
                && g.bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        });
    if fine {
        Ok(code)
    } else {
        Err(InvitationError(format!(
            "the code is not {} groups of five letters and digits",
            part.groups()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE: &str = "irm-invite:1?server=https://ks.example:8443&ca=\
        0101010101010101010101010101010101010101010101010101010101010101\
        &code=ABCDE-FGHIJ-KLMNO-PQRST";

    #[test]
    fn round_trips_and_pins_its_text() {
        let inv: Invitation = WHOLE.parse().unwrap();
        assert_eq!(inv.server_url, "https://ks.example:8443");
        assert_eq!(inv.ca_sha256, [1; 32]);
        assert_eq!(inv.part, CodePart::Whole);
        assert_eq!(inv.to_string(), WHOLE);
        let half = Invitation::new(
            "https://[::1]:8443/",
            [2; 32],
            "abcde-fghij",
            CodePart::Second,
        )
        .unwrap();
        assert_eq!(
            half.to_string(),
            format!(
                "irm-invite:1?server=https://[::1]:8443&ca={}&code=ABCDE-FGHIJ&part=2/2",
                "02".repeat(32)
            )
        );
        assert_eq!(half.to_string().parse::<Invitation>().unwrap(), half);
    }

    #[test]
    fn halves_combine_in_either_order_and_only_when_they_match() {
        let first =
            Invitation::new("https://a:1", [3; 32], "ABCDE-FGHIJ", CodePart::First).unwrap();
        let second =
            Invitation::new("https://a:1", [3; 32], "KLMNO-PQRST", CodePart::Second).unwrap();
        for pair in [
            [first.clone(), second.clone()],
            [second.clone(), first.clone()],
        ] {
            let whole = Invitation::combine(&pair).unwrap();
            assert_eq!(*whole.code, "ABCDE-FGHIJ-KLMNO-PQRST");
            assert_eq!(whole.part, CodePart::Whole);
        }
        assert!(Invitation::combine(std::slice::from_ref(&first)).is_err());
        assert!(Invitation::combine(&[first.clone(), first.clone()]).is_err());
        let elsewhere = Invitation {
            server_url: "https://b:1".into(),
            ..second.clone()
        };
        assert!(Invitation::combine(&[first.clone(), elsewhere]).is_err());
        let other_ca = Invitation {
            ca_sha256: [4; 32],
            ..second
        };
        assert!(Invitation::combine(&[first, other_ca]).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_vouch_for() {
        let bad = [
            "",
            "https://ks.example:8443",
            &WHOLE.replace("https://", "http://"),
            &WHOLE.replace("ks.example", "ks.example/x?y"),
            &WHOLE.replace("&ca=01", "&ca=0g"),
            &WHOLE.replace("PQRST", "PQRS"),
            &WHOLE.replace("PQRST", "PQRS1"),
            &format!("{WHOLE}&part=3/2"),
            &format!("{WHOLE}&code=ABCDE-FGHIJ-KLMNO-PQRST"),
            &format!("{WHOLE}&extra=1"),
            &format!("{WHOLE}&part=1/2"),
        ];
        for text in bad {
            assert!(text.parse::<Invitation>().is_err(), "{text}");
        }
    }

    #[test]
    fn fingerprints_the_certificate_not_the_text_around_it() {
        use base64::Engine as _;
        let der = b"not really DER, but the fingerprint only hashes it";
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let pem = format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
        let expected: [u8; 32] = Sha256::digest(der).into();
        assert_eq!(ca_fingerprint(&pem), Some(expected));
        assert_eq!(ca_fingerprint(&format!("a comment\n{pem}")), Some(expected));
        assert_eq!(ca_fingerprint("no certificate here"), None);
    }

    #[test]
    fn debug_hides_the_code() {
        let inv: Invitation = WHOLE.parse().unwrap();
        assert!(!format!("{inv:?}").contains("ABCDE"));
    }
}
