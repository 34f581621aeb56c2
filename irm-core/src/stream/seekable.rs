//! [`SeekableOpener`]: random access to a sealed payload over `Read + Seek`
//! (FORMAT.md §6.5). Every length is checked before anything is read; then
//! only the chunks that hold the bytes asked for are read and verified.

use std::io::{self, Read, Seek, SeekFrom};

use zeroize::Zeroizing;

use super::cipher::PayloadCipher;
use super::options::{PayloadBackend, TAG_LEN};
use crate::error::OpenError;
use crate::header::{MAX_PLAINTEXT_LEN, VerifiedHeader, payload_len};

/// Where an [`Opener`] over a seekable reader finds its chunks.
#[derive(Debug, Clone, Copy)]
struct SeekLayout {
    payload_offset: u64,
    chunk_count: u64,
    last_encrypted_len: usize,
    plaintext_len: u64,
}

/// Random access to a sealed payload over `Read + Seek`: any byte range can
/// be read by decrypting only the chunks that hold it (FORMAT.md §6.5).
pub struct SeekableOpener<R> {
    inner: R,
    cipher: PayloadCipher,
    layout: SeekLayout,
    buf: Zeroizing<Vec<u8>>,
    position: u64,
    cached_chunk: Option<u64>,
}

impl<R: Read + Seek> SeekableOpener<R> {
    /// Opens the payload that follows the header in `inner`, which must be
    /// positioned at the first payload byte (as
    /// [`SealedHeader::read_from`](crate::SealedHeader::read_from) leaves it).
    /// The payload's length is checked against the declared plaintext length
    /// up front, so truncation and appended data are caught before any read.
    pub fn new(header: &VerifiedHeader, mut inner: R, backend: PayloadBackend) -> io::Result<Self> {
        let payload_offset = inner.stream_position()?;
        let end = inner.seek(SeekFrom::End(0))?;
        let cipher = PayloadCipher::for_header(header, backend);
        let payload = end.saturating_sub(payload_offset);
        let stride = cipher.encrypted_chunk_len() as u64;
        let declared = header.metadata().plaintext_len;
        if let Some(expected) = declared.and_then(|d| payload_len(d, cipher.chunk_len as u64)) {
            if payload > expected {
                return Err(OpenError::TrailingData.into());
            }
            if payload < expected {
                return Err(OpenError::Truncated.into());
            }
        }
        let chunk_count = payload.div_ceil(stride);
        let last_encrypted_len = (payload - chunk_count.saturating_sub(1) * stride) as usize;
        if chunk_count == 0 {
            return Err(OpenError::Truncated.into());
        }
        if last_encrypted_len < TAG_LEN {
            // Too short to be a chunk: stray bytes after a full final chunk,
            // or a final chunk cut short. The chunk before tells which, as
            // the streaming opener decides it (FORMAT.md §6.4).
            let mut err = OpenError::Truncated;
            if chunk_count >= 2 {
                let mut chunk = Zeroizing::new(vec![0u8; stride as usize]);
                inner.seek(SeekFrom::Start(payload_offset + (chunk_count - 2) * stride))?;
                inner.read_exact(&mut chunk)?;
                if cipher.open_chunk(chunk_count - 2, true, &mut chunk) {
                    err = OpenError::TrailingData;
                }
            }
            return Err(err.into());
        }
        let plaintext_len = payload - chunk_count * TAG_LEN as u64;
        // FORMAT.md §6.2: checked with the other lengths, before any read.
        if plaintext_len > MAX_PLAINTEXT_LEN {
            return Err(OpenError::LimitExceeded {
                limit: MAX_PLAINTEXT_LEN,
            }
            .into());
        }
        let mut opener = Self {
            buf: Zeroizing::new(vec![0u8; cipher.encrypted_chunk_len()]),
            inner,
            cipher,
            layout: SeekLayout {
                payload_offset,
                chunk_count,
                last_encrypted_len,
                plaintext_len,
            },
            position: 0,
            cached_chunk: None,
        };
        // An empty final chunk holds no plaintext, so no read would ever load
        // and authenticate it: check it now. Otherwise a file cut to a chunk
        // boundary plus 16 bytes (no declared length) read as a shorter valid
        // file, an empty one when cut to 16 bytes (tests/tamper.rs).
        if last_encrypted_len == TAG_LEN {
            opener.load_chunk(chunk_count - 1)?;
        }
        Ok(opener)
    }

    /// The plaintext length.
    pub fn plaintext_len(&self) -> u64 {
        self.layout.plaintext_len
    }

    /// Reads and verifies chunk `index` into the buffer.
    fn load_chunk(&mut self, index: u64) -> io::Result<()> {
        if self.cached_chunk == Some(index) {
            return Ok(());
        }
        self.cached_chunk = None;
        let layout = self.layout;
        let stride = self.cipher.encrypted_chunk_len();
        let last = index + 1 == layout.chunk_count;
        let len = if last {
            layout.last_encrypted_len
        } else {
            stride
        };
        self.inner.seek(SeekFrom::Start(
            layout.payload_offset + index * stride as u64,
        ))?;
        self.inner.read_exact(&mut self.buf[..len]).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::from(OpenError::Truncated)
            } else {
                e
            }
        })?;
        // FORMAT.md §6.4: an empty final chunk is allowed only as the only chunk.
        if (last && len == TAG_LEN && index != 0)
            || !self.cipher.open_chunk(index, last, &mut self.buf[..len])
        {
            return Err(OpenError::ChunkAuthenticationFailed { index }.into());
        }
        self.cached_chunk = Some(index);
        Ok(())
    }
}

impl<R: Read + Seek> Read for SeekableOpener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.layout.plaintext_len || out.is_empty() {
            return Ok(0);
        }
        let chunk_len = self.cipher.chunk_len as u64;
        let index = self.position / chunk_len;
        let offset = (self.position % chunk_len) as usize;
        self.load_chunk(index)?;
        let chunk_plain = if index + 1 == self.layout.chunk_count {
            self.layout.last_encrypted_len - TAG_LEN
        } else {
            self.cipher.chunk_len
        };
        let n = out.len().min(chunk_plain - offset);
        out[..n].copy_from_slice(&self.buf[offset..offset + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SeekableOpener<R> {
    /// Positions are plaintext offsets; seeking past the end is allowed and
    /// reads return 0 there.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
            SeekFrom::End(d) => self.layout.plaintext_len.checked_add_signed(d),
        };
        self.position = target.ok_or_else(|| io::Error::from(OpenError::InvalidPosition))?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KasSecretKey;
    use crate::stream::tests::builder;

    /// A `Read + Seek` that claims `len` bytes of zeros: a payload far too
    /// large to write, for the seekable opener's length checks.
    struct Sparse {
        len: u64,
        position: u64,
    }

    impl Read for Sparse {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out
                .len()
                .min(usize::try_from(self.len.saturating_sub(self.position)).unwrap_or(usize::MAX));
            out[..n].fill(0);
            self.position += n as u64;
            Ok(n)
        }
    }

    impl Seek for Sparse {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.position = match pos {
                SeekFrom::Start(p) => p,
                SeekFrom::End(d) => self.len.checked_add_signed(d).unwrap(),
                SeekFrom::Current(d) => self.position.checked_add_signed(d).unwrap(),
            };
            Ok(self.position)
        }
    }

    /// FORMAT.md §6.2: a reader that knows the payload's length refuses one
    /// whose plaintext would pass the cap before reading it, and takes one
    /// that holds the cap exactly.
    #[test]
    fn a_seekable_opener_refuses_a_payload_past_the_cap() {
        let kas = KasSecretKey::generate().unwrap();
        let header = builder(&kas, 1024, None).build().unwrap();
        let stride = (1024 + TAG_LEN) as u64;
        let at_cap = MAX_PLAINTEXT_LEN / 1024 * stride;
        for (len, refused) in [
            (at_cap, false),
            (at_cap + stride, true),
            (at_cap + 17, true),
        ] {
            let sparse = Sparse { len, position: 0 };
            let result = SeekableOpener::new(&header, sparse, PayloadBackend::Portable);
            match result {
                Ok(opener) => {
                    assert!(!refused, "{len}-byte payload accepted");
                    assert_eq!(opener.plaintext_len(), MAX_PLAINTEXT_LEN);
                }
                Err(err) => assert!(
                    refused
                        && matches!(
                            OpenError::from_io(&err),
                            Some(OpenError::LimitExceeded {
                                limit: MAX_PLAINTEXT_LEN
                            })
                        ),
                    "{len}-byte payload: {err:?}"
                ),
            }
        }
    }
}
