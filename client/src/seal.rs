//! Sealing for a key server, once for every front end (the CLI, libirm,
//! the Rust example): where the content key is wrapped to ([`SealTarget`]),
//! the header built for it, the payload sealed, and, online, the file
//! registered with the key server (`POST /v1/files`) after its last byte
//! is written and before the caller gives the output its name, so that a
//! file sealed online is never left behind unknown to the key server.
//!
//! Where the plaintext comes from and how the output is made to appear
//! (atomic rename, standard output) stay the caller's: this module takes a
//! reader and a writer, or a buffer to seal in place.

use std::io::{Read, Write};

use irm_core::protocol::{FileInfo, RecipientCheck, RecipientCheckRequest};
use irm_core::{
    EnvelopeBuilder, KasPublicKey, Metadata, Policy, Sealer, StreamOptions, VerifiedHeader,
    seal_in_place,
};

use crate::error::ClientError;
use crate::session::Session;

/// Where a sealed file's content key is wrapped to.
#[derive(Debug)]
pub enum SealTarget<'a> {
    /// The session's key server: its current key is fetched
    /// (`GET /v1/server-key`), and the file is registered.
    Online(&'a Session),
    /// A key server public key and the URL recorded beside it; nothing is
    /// contacted and nothing registered (the key server registers the file
    /// the first time anyone asks for it).
    Offline {
        /// The key server's public key (`irm keygen`'s `.pub` file).
        key: KasPublicKey,
        /// The URL recorded in the key-access entry.
        url: String,
    },
}

/// Refuses a policy naming a user or group the key server does not know: a
/// typo would seal a file nobody can open (PROTOCOL.md §6.1).
fn check_recipients(session: &Session, policy: &Policy) -> Result<(), ClientError> {
    let recipients: Vec<String> = policy
        .grants
        .iter()
        .flat_map(|grant| grant.recipients.iter().map(ToString::to_string))
        .collect();
    let check: RecipientCheck = session.signed(
        reqwest::Method::POST,
        "/v1/recipients",
        Some(&RecipientCheckRequest { recipients }),
    )?;
    if check.unknown.is_empty() {
        return Ok(());
    }
    let lines: Vec<&str> = check.unknown.iter().map(|u| u.message.as_str()).collect();
    Err(ClientError::InvalidArgument(format!(
        "{}; nothing was sealed (a file for a name nobody has can be opened by no one). Fix the name, or seal with --allow-unknown-recipients for people not created yet",
        lines.join("; ")
    )))
}

/// Header choices beyond the policy and the metadata.
#[derive(Debug, Clone, Default)]
pub struct HeaderOptions {
    /// Plaintext bytes per chunk; irm-core's default when `None`.
    pub chunk_len: Option<u32>,
    /// Who seals, recorded in the header; online, the session's user when
    /// `None`.
    pub issuer: Option<String>,
    /// Online: seal even for recipients the key server does not know yet
    /// (people not created yet). Without it, an unknown user or group is
    /// refused with what was probably meant (PROTOCOL.md §6.1).
    pub allow_unknown_recipients: bool,
}

impl<'a> SealTarget<'a> {
    /// Builds the header of a new file for `policy`, wrapped to this
    /// target's key. Online, this asks the key server for its current key.
    pub fn prepare(
        &self,
        policy: Policy,
        metadata: Metadata,
        options: HeaderOptions,
    ) -> Result<PendingSeal<'a>, ClientError> {
        let (session, url, key) = match self {
            Self::Online(session) => {
                if !options.allow_unknown_recipients {
                    check_recipients(session, &policy)?;
                }
                let (info, key) = session.server_key()?;
                (Some(*session), info.url, key)
            }
            Self::Offline { key, url } => (None, url.clone(), *key),
        };
        let mut builder = EnvelopeBuilder::new(policy)
            .key_server(url, key)
            .metadata(metadata);
        if let Some(chunk_len) = options.chunk_len {
            builder = builder.chunk_len(chunk_len);
        }
        let issuer = options
            .issuer
            .or_else(|| session.map(|s| s.user().to_owned()));
        if let Some(issuer) = issuer {
            builder = builder.issuer(issuer);
        }
        let header = builder.build().map_err(ClientError::Seal)?;
        Ok(PendingSeal { header, session })
    }
}

/// A header built for a target, waiting for its payload.
#[derive(Debug)]
pub struct PendingSeal<'a> {
    header: VerifiedHeader,
    session: Option<&'a Session>,
}

/// A file sealed (and, online, registered): the output, ready for the caller
/// to give its name, and what to report about it.
#[derive(Debug)]
pub struct Sealed<W> {
    /// The writer the sealed bytes went to, flushed.
    pub output: W,
    /// The file's id.
    pub file_id: irm_core::FileId,
    /// Plaintext bytes sealed.
    pub plaintext_len: u64,
    /// Sealed bytes written: header, payload and tags (irm-core's count).
    pub sealed_len: u64,
    /// What the key server recorded, when sealed online.
    pub registered: Option<FileInfo>,
}

impl PendingSeal<'_> {
    /// The header the file will carry.
    pub fn header(&self) -> &VerifiedHeader {
        &self.header
    }

    /// Seals everything `input` yields into `output`, then registers the
    /// file when sealing online. On any error nothing is registered, and
    /// the caller discards `output`.
    pub fn seal<W: Write>(
        self,
        input: &mut impl Read,
        output: W,
        options: StreamOptions,
    ) -> Result<Sealed<W>, ClientError> {
        let sealing = |e| ClientError::io("sealing", e);
        let mut sealer = Sealer::new(&self.header, output, options).map_err(sealing)?;
        let plaintext_len = sealer.seal_from(input).map_err(sealing)?;
        let output = sealer.finish().map_err(sealing)?;
        let registered = self.register()?;
        Ok(Sealed {
            output,
            file_id: self.header.header().file_id(),
            plaintext_len,
            sealed_len: self.sealed_len(plaintext_len)?,
            registered,
        })
    }

    /// Seals `buf` (the plaintext) in place into the sealed file's bytes,
    /// then registers the file when sealing online. Reserve
    /// [`VerifiedHeader::sealed_len`] bytes in `buf` beforehand, so that
    /// growing it never moves, and leaves behind, a plaintext copy.
    pub fn seal_in_place(
        self,
        buf: &mut Vec<u8>,
        options: StreamOptions,
    ) -> Result<Sealed<()>, ClientError> {
        let plaintext_len = buf.len() as u64;
        seal_in_place(&self.header, buf, options).map_err(ClientError::Seal)?;
        let registered = self.register()?;
        Ok(Sealed {
            output: (),
            file_id: self.header.header().file_id(),
            plaintext_len,
            sealed_len: self.sealed_len(plaintext_len)?,
            registered,
        })
    }

    fn sealed_len(&self, plaintext_len: u64) -> Result<u64, ClientError> {
        self.header
            .header()
            .sealed_len_for(plaintext_len)
            .ok_or_else(|| ClientError::InvalidArgument("the input is too large to seal".into()))
    }

    fn register(&self) -> Result<Option<FileInfo>, ClientError> {
        let Some(session) = self.session else {
            return Ok(None);
        };
        let file_name = self.header.metadata().file_name.as_deref();
        session
            .register_file(self.header.header(), file_name)
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use irm_core::{KasSecretKey, Opener, PolicyGrant, SealedHeader};

    use super::*;

    fn policy() -> Policy {
        Policy::builder()
            .grant(PolicyGrant::parse("alice=view").unwrap())
            .build()
            .unwrap()
    }

    fn metadata(len: u64) -> Metadata {
        Metadata {
            file_name: Some("calls.csv".into()),
            media_type: Some("text/csv".into()),
            plaintext_len: Some(len),
        }
    }

    fn open(sealed: &[u8], kas: &KasSecretKey) -> (SealedHeader, Vec<u8>) {
        let mut input = sealed;
        let header = SealedHeader::read_from(&mut input).unwrap();
        let verified = header.clone().verify(kas.unwrap(&header).unwrap()).unwrap();
        let mut plain = Vec::new();
        Opener::new(&verified, input, StreamOptions::default())
            .read_to_end(&mut plain)
            .unwrap();
        (header, plain)
    }

    #[test]
    fn offline_sealing_writes_a_file_the_key_opens_and_counts_its_bytes() {
        let kas = KasSecretKey::generate().unwrap();
        let target = SealTarget::Offline {
            key: kas.public_key(),
            url: "https://kas.example:8443".into(),
        };
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let options = HeaderOptions {
            chunk_len: Some(1024),
            issuer: Some("tester".into()),
            allow_unknown_recipients: false,
        };
        let pending = target.prepare(policy(), metadata(5000), options).unwrap();
        let sealed = pending
            .seal(&mut &data[..], Vec::new(), StreamOptions::default())
            .unwrap();
        assert!(sealed.registered.is_none(), "nothing registers offline");
        assert_eq!(sealed.plaintext_len, 5000);
        assert_eq!(sealed.sealed_len, sealed.output.len() as u64);
        let (header, plain) = open(&sealed.output, &kas);
        assert_eq!(plain, data);
        assert_eq!(header.file_id(), sealed.file_id);
        assert_eq!(header.issuer(), Some("tester"));
        assert_eq!(header.chunk_len(), 1024);
        assert_eq!(header.key_access()[0].kas_url, "https://kas.example:8443");
    }

    #[test]
    fn sealing_in_place_gives_the_same_kind_of_file() {
        let kas = KasSecretKey::generate().unwrap();
        let target = SealTarget::Offline {
            key: kas.public_key(),
            url: "https://kas.example:8443".into(),
        };
        let pending = target
            .prepare(policy(), metadata(3), HeaderOptions::default())
            .unwrap();
        let mut buf = Vec::with_capacity(pending.header().sealed_len().unwrap() as usize);
        buf.extend_from_slice(b"abc");
        let sealed = pending
            .seal_in_place(&mut buf, StreamOptions::default())
            .unwrap();
        assert_eq!(sealed.sealed_len, buf.len() as u64);
        assert_eq!(open(&buf, &kas).1, b"abc");
    }

    #[test]
    fn a_bad_header_choice_is_a_seal_error_and_input_that_lies_about_its_length_fails() {
        let kas = KasSecretKey::generate().unwrap();
        let target = SealTarget::Offline {
            key: kas.public_key(),
            url: "https://kas.example:8443".into(),
        };
        let bad_chunk = HeaderOptions {
            chunk_len: Some(1000),
            ..HeaderOptions::default()
        };
        assert!(matches!(
            target.prepare(policy(), metadata(1), bad_chunk),
            Err(ClientError::Seal(
                irm_core::SealError::InvalidChunkLen { .. }
            ))
        ));
        // Declared 10 bytes, given 3: refused, so nothing would be registered.
        let pending = target
            .prepare(policy(), metadata(10), HeaderOptions::default())
            .unwrap();
        let err = pending
            .seal(&mut &b"abc"[..], Vec::new(), StreamOptions::default())
            .unwrap_err();
        assert!(matches!(err, ClientError::Io { .. }), "{err}");
    }
}
