//! The payload's AES-256-GCM ([`PayloadCipher`]): the two backends (aws-lc-rs
//! and the portable `aes-gcm` crate, which give the same bytes), one chunk or a
//! batch of chunks sealed or opened in place or out of place over the stream's
//! threads, and the size of a stream's buffer. The payload key comes from a
//! [`VerifiedHeader`], the only type that can derive it.

use super::options::{PayloadBackend, TAG_LEN, nonce};
use crate::header::{VerifiedHeader, payload_len};
use crate::parallel::Workers;

enum Aead {
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc_rs::aead::LessSafeKey),
    Portable(Box<aes_gcm::Aes256Gcm>),
}

/// The per-file payload key, ready to seal or open chunks.
pub(crate) struct PayloadCipher {
    aead: Aead,
    pub(super) chunk_len: usize,
}

/// The buffer a sealer (`extra` = 0) or opener (`extra` = 1, the look-ahead
/// byte) needs: a batch of chunks, or exactly the declared payload when that
/// is smaller. Every buffer is wiped on drop, byte by byte (zeroize writes are
/// volatile), so sizing it to a 1 KiB file instead of a 64 KiB chunk is most of
/// the cost of sealing or opening a small file.
pub(super) fn buffer_len(
    cipher: &PayloadCipher,
    batch: usize,
    declared: Option<u64>,
    extra: usize,
) -> usize {
    let batch_len = batch * cipher.encrypted_chunk_len();
    let needed = declared
        .and_then(|d| payload_len(d, cipher.chunk_len as u64))
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(usize::MAX);
    batch_len.min(needed) + extra
}

impl PayloadCipher {
    /// The payload cipher of a file whose header verified (FORMAT.md §4.2).
    pub(super) fn for_header(header: &VerifiedHeader, backend: PayloadBackend) -> Self {
        Self::new(header.payload_key(), header.header().chunk_len(), backend)
    }

    pub(crate) fn new(key: &[u8; 32], chunk_len: u32, backend: PayloadBackend) -> Self {
        let aead = match backend {
            #[cfg(feature = "aws-lc")]
            PayloadBackend::Fast => {
                let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, key)
                    .expect("a 32-byte key is a valid AES-256 key");
                Aead::AwsLc(aws_lc_rs::aead::LessSafeKey::new(unbound))
            }
            #[cfg(not(feature = "aws-lc"))]
            PayloadBackend::Fast => Aead::Portable(Box::new(portable_cipher(key))),
            PayloadBackend::Portable => Aead::Portable(Box::new(portable_cipher(key))),
        };
        Self {
            aead,
            chunk_len: chunk_len as usize,
        }
    }

    pub(super) fn encrypted_chunk_len(&self) -> usize {
        self.chunk_len + TAG_LEN
    }

    /// Seals `chunk[..len - TAG_LEN]` in place and writes the tag after it.
    pub(super) fn seal_chunk(&self, index: u64, last: bool, chunk: &mut [u8]) {
        let (data, tag_out) = chunk.split_at_mut(chunk.len() - TAG_LEN);
        let nonce = nonce(index, last);
        match &self.aead {
            #[cfg(feature = "aws-lc")]
            Aead::AwsLc(key) => {
                let tag = key
                    .seal_in_place_separate_tag(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                        aws_lc_rs::aead::Aad::empty(),
                        data,
                    )
                    .expect("sealing a chunk below 16 MiB cannot fail");
                tag_out.copy_from_slice(tag.as_ref());
            }
            Aead::Portable(cipher) => {
                use aes_gcm::aead::AeadInOut;
                let tag = cipher
                    .encrypt_inout_detached(&nonce.into(), &[], data.into())
                    .expect("sealing a chunk below 16 MiB cannot fail");
                tag_out.copy_from_slice(&tag);
            }
        }
    }

    /// Seals `input` into `out` (`input.len() + TAG_LEN` bytes: the
    /// ciphertext, then the tag) without first copying the plaintext there:
    /// with aws-lc the cipher reads the caller's bytes and writes the
    /// ciphertext, so a chunk crosses memory once instead of three times
    /// (copy in, then read and write in place).
    pub(super) fn seal_chunk_from(&self, index: u64, last: bool, input: &[u8], out: &mut [u8]) {
        match &self.aead {
            #[cfg(feature = "aws-lc")]
            Aead::AwsLc(key) => {
                let (data, tag_out) = out.split_at_mut(input.len());
                key.seal_out_of_place_scatter(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce(index, last)),
                    aws_lc_rs::aead::Aad::empty(),
                    input,
                    data,
                    &[],
                    &mut tag_out[..TAG_LEN],
                )
                .expect("the output is sized to the input and one tag");
            }
            Aead::Portable(_) => {
                out[..input.len()].copy_from_slice(input);
                self.seal_chunk(index, last, &mut out[..input.len() + TAG_LEN]);
            }
        }
    }

    /// Opens `chunk` (ciphertext and tag) into `out` (exactly the plaintext's
    /// length), leaving `chunk` as it was. With aws-lc the cipher reads the
    /// ciphertext where it lies, so a chunk crosses memory once. On failure
    /// `out` holds garbage and must not be released.
    pub(super) fn open_chunk_into(
        &self,
        index: u64,
        last: bool,
        chunk: &[u8],
        out: &mut [u8],
    ) -> bool {
        let Some(len) = chunk.len().checked_sub(TAG_LEN).filter(|l| *l == out.len()) else {
            return false;
        };
        let (ciphertext, tag) = chunk.split_at(len);
        match &self.aead {
            #[cfg(feature = "aws-lc")]
            Aead::AwsLc(key) => key
                .open_separate_gather(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce(index, last)),
                    aws_lc_rs::aead::Aad::empty(),
                    ciphertext,
                    tag,
                    out,
                )
                .is_ok(),
            Aead::Portable(cipher) => {
                use aes_gcm::aead::AeadInOut;
                out.copy_from_slice(ciphertext);
                let Ok(tag) = aes_gcm::Tag::try_from(tag) else {
                    return false;
                };
                cipher
                    .decrypt_inout_detached(&nonce(index, last).into(), &[], out.into(), &tag)
                    .is_ok()
            }
        }
    }

    /// Opens `chunk` (ciphertext and tag) in place; on success the plaintext is
    /// `chunk[..len - TAG_LEN]`. On failure the bytes are garbage and must not
    /// be released.
    pub(super) fn open_chunk(&self, index: u64, last: bool, chunk: &mut [u8]) -> bool {
        if chunk.len() < TAG_LEN {
            return false;
        }
        let nonce = nonce(index, last);
        match &self.aead {
            #[cfg(feature = "aws-lc")]
            Aead::AwsLc(key) => key
                .open_in_place(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                    aws_lc_rs::aead::Aad::empty(),
                    chunk,
                )
                .is_ok(),
            Aead::Portable(cipher) => {
                use aes_gcm::aead::AeadInOut;
                let (data, tag) = chunk.split_at_mut(chunk.len() - TAG_LEN);
                let Ok(tag) = aes_gcm::Tag::try_from(&*tag) else {
                    return false;
                };
                cipher
                    .decrypt_inout_detached(&nonce.into(), &[], data.into(), &tag)
                    .is_ok()
            }
        }
    }

    /// Seals `count` consecutive chunks laid out at a stride of
    /// `encrypted_chunk_len()` in `buf`, starting at chunk `first_index`. The
    /// last of them carries `last_len` plaintext bytes and the final-chunk
    /// flag when `last_len` is `Some`.
    pub(super) fn seal_batch(
        &self,
        buf: &mut [u8],
        first_index: u64,
        count: usize,
        last_len: Option<usize>,
        workers: &Workers,
    ) {
        let stride = self.encrypted_chunk_len();
        let full = if last_len.is_some() { count - 1 } else { count };
        let (full_part, last_part) = buf.split_at_mut(full * stride);
        workers.for_each_chunk(full_part, stride, first_index, &|i, chunk| {
            self.seal_chunk(first_index + i as u64, false, chunk);
            true
        });
        if let Some(len) = last_len {
            self.seal_chunk(
                first_index + full as u64,
                true,
                &mut last_part[..len + TAG_LEN],
            );
        }
    }

    /// Seals the whole chunks in `buf` as non-final chunks from `first_index`
    /// on: the first `filled` already hold their plaintext; each later one is
    /// sealed from its piece of `input` straight into its slot by the thread
    /// that takes it (so the reading, bound by memory bandwidth, is shared
    /// too). A shorter last piece of `buf` receives `tail` and is not sealed.
    pub(super) fn copy_and_seal(
        &self,
        buf: &mut [u8],
        first_index: u64,
        filled: usize,
        input: &[u8],
        tail: &[u8],
        workers: &Workers,
    ) {
        let chunk_len = self.chunk_len;
        let whole = filled + input.len() / chunk_len;
        workers.for_each_chunk(buf, self.encrypted_chunk_len(), first_index, &|i, slot| {
            if i == whole {
                slot.copy_from_slice(tail);
                return true;
            }
            match i.checked_sub(filled) {
                Some(k) => self.seal_chunk_from(
                    first_index + i as u64,
                    false,
                    &input[k * chunk_len..(k + 1) * chunk_len],
                    slot,
                ),
                None => self.seal_chunk(first_index + i as u64, false, slot),
            }
            true
        });
    }

    /// Opens consecutive chunks; returns the index (within the batch) of the
    /// first chunk that failed.
    pub(super) fn open_batch(
        &self,
        buf: &mut [u8],
        first_index: u64,
        count: usize,
        last_enc_len: Option<usize>,
        workers: &Workers,
    ) -> Result<(), usize> {
        let stride = self.encrypted_chunk_len();
        let full = if last_enc_len.is_some() {
            count - 1
        } else {
            count
        };
        let (full_part, last_part) = buf.split_at_mut(full * stride);
        let failed = workers.for_each_chunk(full_part, stride, first_index, &|i, chunk| {
            self.open_chunk(first_index + i as u64, false, chunk)
        });
        if let Some(i) = failed {
            return Err(i);
        }
        if let Some(len) = last_enc_len {
            if !self.open_chunk(first_index + full as u64, true, &mut last_part[..len]) {
                return Err(full);
            }
        }
        Ok(())
    }
}

fn portable_cipher(key: &[u8; 32]) -> aes_gcm::Aes256Gcm {
    use aes_gcm::KeyInit;
    aes_gcm::Aes256Gcm::new(key.into())
}
