//! The payload (FORMAT.md §6): STREAM-style chunked AES-256-GCM. A [`Sealer`]
//! is a `Write` adaptor, an [`Opener`] a `Read` (and, over `Read + Seek`, a
//! `Seek`) adaptor; both hold a bounded number of chunks in memory whatever
//! the file size.
//!
//! Nonce for chunk `i`: 11-byte big-endian `i`, then `0x01` for the final chunk
//! and `0x00` otherwise. Each chunk is `ciphertext || 16-byte tag`; every chunk
//! but the last carries exactly `chunk_len` plaintext bytes.

use std::io::{self, BufRead, IoSlice, IoSliceMut, Read, Seek, SeekFrom, Write};

use zeroize::Zeroizing;

use crate::error::OpenError;
use crate::header::{MAX_PLAINTEXT_LEN, VerifiedHeader, max_plaintext_len_usize};
use crate::parallel::Workers;

/// The AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// Which AES-256-GCM implementation encrypts the payload. Both produce the
/// same bytes; the choice only changes speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadBackend {
    /// aws-lc-rs when built with the `aws-lc` feature (the default),
    /// otherwise the portable backend.
    #[default]
    Fast,
    /// The pure-Rust `aes-gcm` crate.
    Portable,
}

enum Aead {
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc_rs::aead::LessSafeKey),
    Portable(Box<aes_gcm::Aes256Gcm>),
}

/// The per-file payload key, ready to seal or open chunks.
pub(crate) struct PayloadCipher {
    aead: Aead,
    chunk_len: usize,
}

/// FORMAT.md §6.2: the nonce of chunk `index`.
fn nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// The payload length of a sealed file whose plaintext is `plaintext_len`
/// bytes, or `None` on overflow.
pub(crate) fn payload_len(plaintext_len: u64, chunk_len: u64) -> Option<u64> {
    let chunks = plaintext_len.div_ceil(chunk_len).max(1);
    plaintext_len.checked_add(chunks.checked_mul(TAG_LEN as u64)?)
}

/// The buffer a sealer (`extra` = 0) or opener (`extra` = 1, the look-ahead
/// byte) needs: a batch of chunks, or exactly the declared payload when that
/// is smaller. Every buffer is wiped on drop, byte by byte (zeroize writes are
/// volatile), so sizing it to a 1 KiB file instead of a 64 KiB chunk is most of
/// the cost of sealing or opening a small file.
fn buffer_len(cipher: &PayloadCipher, batch: usize, declared: Option<u64>, extra: usize) -> usize {
    let batch_len = batch * cipher.encrypted_chunk_len();
    let needed = declared
        .and_then(|d| payload_len(d, cipher.chunk_len as u64))
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(usize::MAX);
    batch_len.min(needed) + extra
}

impl PayloadCipher {
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

    fn encrypted_chunk_len(&self) -> usize {
        self.chunk_len + TAG_LEN
    }

    /// Seals `chunk[..len - TAG_LEN]` in place and writes the tag after it.
    fn seal_chunk(&self, index: u64, last: bool, chunk: &mut [u8]) {
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
    fn seal_chunk_from(&self, index: u64, last: bool, input: &[u8], out: &mut [u8]) {
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
    fn open_chunk_into(&self, index: u64, last: bool, chunk: &[u8], out: &mut [u8]) -> bool {
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
    fn open_chunk(&self, index: u64, last: bool, chunk: &mut [u8]) -> bool {
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
    fn seal_batch(
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
    fn copy_and_seal(
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
    fn open_batch(
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

/// How a [`Sealer`] or [`Opener`] works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Threads to encrypt or decrypt with, the caller's included. With more
    /// than one, a stream keeps `threads - 1` worker threads until it is
    /// dropped and processes chunks in batches of `16 × threads`. An
    /// [`Opener`] gains from them over a `BufRead` ([`Opener::from_buf_read`])
    /// or in memory ([`open_into`]); over a plain `Read` the copy out of the
    /// reader, one thread's work, costs more than the decryption, and a
    /// second thread gains little or nothing (docs/PERFORMANCE.md §2).
    pub threads: usize,
    /// Which AES-GCM implementation to use.
    pub backend: PayloadBackend,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            backend: PayloadBackend::Fast,
        }
    }
}

impl StreamOptions {
    /// Chunks per batch. With several threads, 16 per thread (1 MiB of
    /// 64 KiB chunks each): the pool stays up between batches, so a hand-off
    /// costs microseconds and a batch need only dwarf that, while the opener
    /// holds two batches (one decrypting, one being read). On one thread the
    /// sealer takes 16, so that `seal_from` reads a file a megabyte per call
    /// as `dd bs=1M` does; the opener takes one: a buffer above glibc's mmap
    /// threshold (128 KiB) is mapped and page-faulted afresh for every file,
    /// which cost more than decrypting a 1 MiB file (measured: 42% of the
    /// baseline against 99%).
    fn batch_chunks(&self, sealing: bool) -> usize {
        match (self.threads, sealing) {
            (0 | 1, true) => 16,
            (0 | 1, false) => 1,
            (n, _) => n * 16,
        }
    }
}

/// Encrypts a payload as it is written. Call [`Sealer::finish`] to write the
/// final chunk: dropping a `Sealer` without it leaves an envelope that every
/// reader rejects as truncated.
pub struct Sealer<W: Write> {
    inner: W,
    cipher: PayloadCipher,
    workers: Workers,
    /// `batch` chunk slots at a stride of `chunk_len + TAG_LEN`.
    buf: SealBuffer,
    batch: usize,
    /// Slots `..sealed` are sealed; `sealed..slot` are full but not yet
    /// sealed (known not to be final); `slot` holds `slot_fill` bytes.
    sealed: usize,
    slot: usize,
    slot_fill: usize,
    next_index: u64,
    written: u64,
    declared_len: Option<u64>,
    /// FORMAT.md §6.2: the most plaintext a file may hold (lowered by tests).
    plaintext_cap: u64,
}

impl<W: Write> Sealer<W> {
    /// Writes the header to `inner` and returns a sealer for the payload.
    pub fn new(header: &VerifiedHeader, mut inner: W, options: StreamOptions) -> io::Result<Self> {
        inner.write_all(&header.header().to_bytes())?;
        let cipher = header.payload_cipher(options.backend);
        let batch = options.batch_chunks(true);
        let declared_len = header.metadata().plaintext_len;
        Ok(Self {
            buf: SealBuffer {
                bytes: crate::buffers::take(buffer_len(&cipher, batch, declared_len, 0)),
                holds_plaintext: true,
            },
            inner,
            cipher,
            workers: Workers::stream(options.threads),
            batch,
            sealed: 0,
            slot: 0,
            slot_fill: 0,
            next_index: 0,
            written: 0,
            declared_len,
            plaintext_cap: MAX_PLAINTEXT_LEN,
        })
    }

    /// FORMAT.md §6.2: refuses to seal past the format's plaintext cap.
    fn check_cap(&self, written: u64) -> io::Result<()> {
        if written > self.plaintext_cap {
            return Err(crate::SealError::TooLarge {
                what: "the plaintext",
                limit: usize::try_from(self.plaintext_cap).unwrap_or(usize::MAX),
            }
            .into());
        }
        Ok(())
    }

    /// Seals the pending slots (`sealed..count`; the last one as the final
    /// chunk with `last_len` bytes when given) and writes slots `..count`.
    fn flush_batch(&mut self, count: usize, last_len: Option<usize>) -> io::Result<()> {
        let stride = self.cipher.encrypted_chunk_len();
        let from = self.sealed * stride;
        self.cipher.seal_batch(
            &mut self.buf[from..],
            self.next_index + self.sealed as u64,
            count - self.sealed,
            last_len,
            &self.workers,
        );
        let end = match last_len {
            Some(len) => (count - 1) * stride + len + TAG_LEN,
            None => count * stride,
        };
        self.inner.write_all(&self.buf[..end])?;
        self.next_index += count as u64;
        (self.sealed, self.slot, self.slot_fill) = (0, 0, 0);
        Ok(())
    }

    /// Seals the final chunk, flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(declared) = self.declared_len {
            if declared != self.written {
                return Err(crate::SealError::LengthMismatch {
                    declared,
                    written: self.written,
                }
                .into());
            }
        }
        self.flush_batch(self.slot + 1, Some(self.slot_fill))?;
        // Everything left in the buffer is now ciphertext.
        self.buf.holds_plaintext = false;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// The sealer's chunk buffer. Chunks are sealed where they lie, so once
/// `finish` has sealed the last one the buffer holds only ciphertext and the
/// byte-by-byte wipe (as slow as sealing a 64 KiB chunk) can be skipped; an
/// unfinished sealer still holds plaintext and wipes it.
struct SealBuffer {
    bytes: Vec<u8>,
    holds_plaintext: bool,
}

impl std::ops::Deref for SealBuffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.bytes
    }
}

impl std::ops::DerefMut for SealBuffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

impl Drop for SealBuffer {
    fn drop(&mut self) {
        if self.holds_plaintext {
            wipe(&mut self.bytes);
        }
        crate::buffers::give(std::mem::take(&mut self.bytes));
    }
}

/// A buffer that has held plaintext, wiped on drop.
struct WipedBuf(Vec<u8>);

impl std::ops::Deref for WipedBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for WipedBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for WipedBuf {
    fn drop(&mut self) {
        wipe(&mut self.0);
        crate::buffers::give(std::mem::take(&mut self.0));
    }
}

/// Wipes `bytes` with zeroize's volatile writes, sixteen bytes at a time
/// where aligned: zeroize writes one element per volatile store, so wiping
/// a multi-megabyte batch byte by byte cost a quarter of decrypting it.
fn wipe(bytes: &mut [u8]) {
    use zeroize::Zeroize;
    let (head, words, tail) = bytemuck::pod_align_to_mut::<u8, u128>(bytes);
    head.zeroize();
    words.zeroize();
    tail.zeroize();
}

impl<W: Write> Sealer<W> {
    /// Seals everything `reader` yields, reading straight into the chunk
    /// buffer with vectored reads (one call fills a whole batch), so that the
    /// only copies are the kernel's, as with `dd`. Returns the bytes read.
    pub fn seal_from<R: Read>(&mut self, reader: &mut R) -> io::Result<u64> {
        let chunk_len = self.cipher.chunk_len;
        let stride = self.cipher.encrypted_chunk_len();
        let mut total = 0u64;
        loop {
            // Where the next byte goes: the current chunk, or the next one
            // when the current one is full (not yet known to be final).
            let (first_slot, first_fill) = if self.slot_fill == chunk_len {
                (self.slot + 1, 0)
            } else {
                (self.slot, self.slot_fill)
            };
            let mut slices = Vec::with_capacity(self.batch);
            if first_slot < self.batch {
                let mut rest = self.buf.get_mut(first_slot * stride..).unwrap_or_default();
                let mut fill = first_fill;
                while !rest.is_empty() {
                    // A buffer sized to a small declared length ends early.
                    let room = chunk_len.min(rest.len().saturating_sub(TAG_LEN));
                    if room <= fill {
                        break;
                    }
                    let (slot, tail) = rest.split_at_mut(stride.min(rest.len()));
                    slices.push(IoSliceMut::new(&mut slot[fill..room]));
                    (fill, rest) = (0, tail);
                }
            }
            if slices.is_empty() {
                // The batch is full: seal it only if more data follows (the
                // final chunk must be sealed as final), via the `write` path.
                let mut byte = [0u8; 1];
                if read_retrying(reader, &mut byte)? == 0 {
                    return Ok(total);
                }
                self.write_all(&byte)?;
                total += 1;
                continue;
            }
            let n = match reader.read_vectored(&mut slices) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let written = self.written + n as u64;
            if let Some(declared) = self.declared_len.filter(|d| written > *d) {
                return Err(crate::SealError::LengthMismatch { declared, written }.into());
            }
            self.check_cap(written)?;
            let (mut slot, mut fill, mut left) = (first_slot, first_fill, n);
            loop {
                let take = left.min(chunk_len - fill);
                fill += take;
                left -= take;
                if left == 0 {
                    break;
                }
                (slot, fill) = (slot + 1, 0);
            }
            (self.slot, self.slot_fill, self.written) = (slot, fill, written);
            total += n as u64;
        }
    }
}

/// FORMAT.md §6.2: whether `chunks` chunks from chunk `first` on, the last
/// of them holding `last_len` plaintext bytes, take a file's plaintext past
/// `cap` bytes. Readers check it before they decrypt the chunks.
fn past_cap(first: u64, chunks: usize, chunk_len: usize, last_len: usize, cap: u64) -> bool {
    (first + chunks as u64 - 1)
        .checked_mul(chunk_len as u64)
        .and_then(|full| full.checked_add(last_len as u64))
        .is_none_or(|total| total > cap)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(got) => n += got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_retrying<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let chunk_len = self.cipher.chunk_len;
        let stride = self.cipher.encrypted_chunk_len();
        let written = self.written.saturating_add(data.len() as u64);
        if let Some(declared) = self.declared_len {
            if written > declared {
                return Err(crate::SealError::LengthMismatch { declared, written }.into());
            }
        }
        self.check_cap(written)?;
        let mut rest = data;
        while !rest.is_empty() {
            if self.slot_fill == chunk_len {
                // The current chunk is full and more data follows, so it is
                // not the final chunk.
                self.slot += 1;
                self.slot_fill = 0;
                if self.slot == self.batch {
                    self.flush_batch(self.batch, None)?;
                }
            }
            // Whole chunks of `rest` with at least one byte after them are
            // not final: copy and seal them now, together with the pending
            // slots, each thread copying and sealing its own share.
            let whole = if self.slot_fill == 0 {
                ((rest.len().saturating_sub(1)) / chunk_len)
                    .min((self.buf.len() / stride).saturating_sub(self.slot))
            } else {
                0
            };
            if whole > 0 {
                let (now, later) = rest.split_at(whole * chunk_len);
                let end = self.slot + whole;
                // The bytes after the last whole chunk (which may be final,
                // so stay unsealed) are copied in the same hand-off when
                // they are all that is left and fit.
                let tail =
                    if later.len() <= chunk_len && end * stride + later.len() <= self.buf.len() {
                        later
                    } else {
                        &[]
                    };
                self.cipher.copy_and_seal(
                    &mut self.buf[self.sealed * stride..end * stride + tail.len()],
                    self.next_index + self.sealed as u64,
                    self.slot - self.sealed,
                    now,
                    tail,
                    &self.workers,
                );
                (self.sealed, self.slot, self.slot_fill) = (end, end, tail.len());
                rest = &later[tail.len()..];
                if self.slot == self.batch {
                    self.flush_batch(self.batch, None)?;
                }
                continue;
            }
            let take = rest.len().min(chunk_len - self.slot_fill);
            let at = self.slot * stride + self.slot_fill;
            self.buf[at..at + take].copy_from_slice(&rest[..take]);
            self.slot_fill += take;
            rest = &rest[take..];
        }
        self.written += data.len() as u64;
        Ok(data.len())
    }

    /// Flushes the inner writer. Buffered plaintext stays buffered: a chunk
    /// is sealed only when it is known whether it is the final one.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Seals a whole in-memory plaintext, returning the envelope. Chunks are
/// encrypted in place in the output buffer, on `options.threads` threads.
pub fn seal_to_vec(
    header: &VerifiedHeader,
    plaintext: &[u8],
    options: StreamOptions,
) -> Result<Vec<u8>, crate::SealError> {
    let chunk_len = header.header().chunk_len() as usize;
    let declared = header.metadata().plaintext_len;
    if declared.is_some_and(|d| d != plaintext.len() as u64) {
        return Err(crate::SealError::LengthMismatch {
            declared: declared.unwrap_or(0),
            written: plaintext.len() as u64,
        });
    }
    if plaintext.len() as u64 > MAX_PLAINTEXT_LEN {
        return Err(crate::SealError::TooLarge {
            what: "the plaintext",
            limit: max_plaintext_len_usize(),
        });
    }
    let header_bytes = header.header().to_bytes();
    let payload = payload_len(plaintext.len() as u64, chunk_len as u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(crate::SealError::TooLarge {
            what: "the plaintext",
            limit: usize::MAX,
        })?;
    let mut out = Vec::with_capacity(header_bytes.len() + payload);
    out.extend_from_slice(&header_bytes);
    for chunk in plaintext.chunks(chunk_len) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(&[0u8; TAG_LEN]);
    }
    if plaintext.is_empty() {
        out.extend_from_slice(&[0u8; TAG_LEN]);
    }
    seal_payload_in_place(header, &mut out[header_bytes.len()..], options);
    Ok(out)
}

/// Seals the plaintext in `buf` where it lies: `buf` grows to the sealed
/// length, each chunk moves once to its final place (back to front, so nothing
/// is overwritten before it moved), the header is written in front and the
/// chunks are encrypted in place. Peak memory is the sealed size, not twice it.
pub fn seal_in_place(
    header: &VerifiedHeader,
    buf: &mut Vec<u8>,
    options: StreamOptions,
) -> Result<(), crate::SealError> {
    let chunk_len = header.header().chunk_len() as usize;
    let plaintext_len = buf.len();
    let declared = header.metadata().plaintext_len;
    if let Some(declared) = declared.filter(|d| *d != plaintext_len as u64) {
        return Err(crate::SealError::LengthMismatch {
            declared,
            written: plaintext_len as u64,
        });
    }
    if plaintext_len as u64 > MAX_PLAINTEXT_LEN {
        return Err(crate::SealError::TooLarge {
            what: "the plaintext",
            limit: max_plaintext_len_usize(),
        });
    }
    let header_bytes = header.header().to_bytes();
    let payload = payload_len(plaintext_len as u64, chunk_len as u64)
        .and_then(|p| usize::try_from(p).ok())
        .and_then(|p| p.checked_add(header_bytes.len()))
        .ok_or(crate::SealError::TooLarge {
            what: "the plaintext",
            limit: usize::MAX,
        })?;
    buf.resize(payload, 0);
    let stride = chunk_len + TAG_LEN;
    let count = plaintext_len.div_ceil(chunk_len);
    for i in (0..count).rev() {
        let src = i * chunk_len..plaintext_len.min((i + 1) * chunk_len);
        let dst = header_bytes.len() + i * stride;
        buf.copy_within(src, dst);
    }
    buf[..header_bytes.len()].copy_from_slice(&header_bytes);
    seal_payload_in_place(header, &mut buf[header_bytes.len()..], options);
    Ok(())
}

/// The in-place API for callers that own their buffer: `payload` holds the
/// plaintext laid out as sealed chunks (each chunk's plaintext followed by
/// `TAG_LEN` spare bytes), and is sealed where it lies. Its length must be
/// what [`VerifiedHeader::sealed_len`] minus the header length gives.
pub fn seal_payload_in_place(header: &VerifiedHeader, payload: &mut [u8], options: StreamOptions) {
    let cipher = header.payload_cipher(options.backend);
    let stride = cipher.encrypted_chunk_len();
    let count = payload.len().div_ceil(stride).max(1);
    let last_len = payload.len() - (count - 1) * stride - TAG_LEN;
    let workers = Workers::one_shot(options.threads);
    cipher.seal_batch(payload, 0, count, Some(last_len), &workers);
}

/// Where an [`Opener`] over a seekable reader finds its chunks.
#[derive(Debug, Clone, Copy)]
struct SeekLayout {
    payload_offset: u64,
    chunk_count: u64,
    last_encrypted_len: usize,
    plaintext_len: u64,
}

/// Decrypts a payload as it is read. Plaintext of a chunk is released only
/// after its tag verifies; a missing final chunk is an error, not a short file.
pub struct Opener<R> {
    inner: R,
    cipher: PayloadCipher,
    workers: Workers,
    declared_len: Option<u64>,
    buf: WipedBuf,
    /// Verified plaintext ready in `buf`: (start, end) of each chunk.
    ready: Vec<(usize, usize)>,
    ready_pos: usize,
    ready_offset: usize,
    /// Streaming: the byte read past the current batch, proving it was not final.
    carry: Option<u8>,
    /// With several threads: the next batch, read while the current one was
    /// being decrypted (its byte count, or the read's error), in `spare`.
    ahead: Option<io::Result<usize>>,
    spare: Option<WipedBuf>,
    next_index: u64,
    /// Payload bytes consumed before the current batch.
    consumed: u64,
    done: bool,
    failed: bool,
    /// Set by [`Opener::from_buf_read`]: the source's own buffer is read
    /// directly.
    source_buffer: Option<SourceBuffer<R>>,
    /// FORMAT.md §6.2: the most plaintext a file may hold (lowered by tests).
    plaintext_cap: u64,
}

/// `BufRead`'s two methods, kept as function pointers so that one `Opener`
/// type serves both a plain `Read` and a `BufRead` source (stable Rust has no
/// specialisation). With them, chunks the source already holds whole are
/// decrypted from where they lie into the opener's buffer, so a payload in
/// memory crosses memory once, as in [`open_into`], and the copy out of a
/// reader, which only one thread can make, disappears. The end of the payload
/// is found by peeking instead of by reading a byte ahead.
struct SourceBuffer<R> {
    fill: for<'a> fn(&'a mut R) -> io::Result<&'a [u8]>,
    consume: fn(&mut R, usize),
}

impl<R> Clone for SourceBuffer<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for SourceBuffer<R> {}

impl<R: Read> Opener<R> {
    /// Opens the payload that follows the header in `inner`.
    pub fn new(header: &VerifiedHeader, inner: R, options: StreamOptions) -> Self {
        let cipher = header.payload_cipher(options.backend);
        let batch = options.batch_chunks(false);
        let declared_len = header.metadata().plaintext_len;
        Self {
            buf: WipedBuf(crate::buffers::take(buffer_len(
                &cipher,
                batch,
                declared_len,
                1,
            ))),
            inner,
            cipher,
            workers: Workers::stream(options.threads),
            declared_len,
            ready: Vec::with_capacity(batch),
            ready_pos: 0,
            ready_offset: 0,
            carry: None,
            ahead: None,
            spare: None,
            next_index: 0,
            consumed: 0,
            done: false,
            failed: false,
            source_buffer: None,
            plaintext_cap: MAX_PLAINTEXT_LEN,
        }
    }

    fn expected_payload_len(&self) -> Option<u64> {
        payload_len(self.declared_len?, self.cipher.chunk_len as u64)
    }

    /// Decrypts the whole chunks that the source's buffer holds, up to a
    /// batch, from there into `buf`, when at least one byte follows them (so
    /// none is the final chunk). Returns false, having consumed nothing, when
    /// there is no such chunk or one fails to verify: the copying path then
    /// takes the batch, and names a failure exactly as [`Opener::new`] does.
    fn open_from_source_buffer(&mut self, source: SourceBuffer<R>) -> io::Result<bool> {
        let stride = self.cipher.encrypted_chunk_len();
        let chunk_len = self.cipher.chunk_len;
        let (expected, consumed, cap) = (
            self.expected_payload_len(),
            self.consumed,
            self.plaintext_cap,
        );
        let (cipher, workers, first) = (&self.cipher, &self.workers, self.next_index);
        let available = (source.fill)(&mut self.inner)?;
        let count = (available.len().saturating_sub(1) / stride).min((self.buf.len() - 1) / stride);
        if count == 0 {
            return Ok(false);
        }
        // FORMAT.md §6.4: nothing is decrypted past the declared payload; the
        // copying path names the excess (trailing data) by its length. And
        // nothing past the cap (§6.2), which the copying path names too.
        if expected.is_some_and(|e| consumed + (count * stride) as u64 + 1 > e)
            || past_cap(first, count, chunk_len, chunk_len, cap)
        {
            return Ok(false);
        }
        let failed = workers.for_each_chunk(
            &mut self.buf[..count * stride],
            stride,
            first,
            &|i, slot| {
                let chunk = &available[i * stride..(i + 1) * stride];
                cipher.open_chunk_into(first + i as u64, false, chunk, &mut slot[..chunk_len])
            },
        );
        if failed.is_some() {
            return Ok(false);
        }
        (source.consume)(&mut self.inner, count * stride);
        self.ready.clear();
        self.ready
            .extend((0..count).map(|i| (i * stride, i * stride + chunk_len)));
        (self.ready_pos, self.ready_offset) = (0, 0);
        self.next_index += count as u64;
        self.consumed += (count * stride) as u64;
        Ok(true)
    }

    /// Names the failure of chunk `index` as precisely as the evidence allows
    /// (FORMAT.md §6.4). `chunk` holds its bytes as read, when they were kept;
    /// `seen_end` is how far into the payload bytes are known to exist;
    /// `at_eof` whether that is all there is.
    fn classify_failure(
        &self,
        index: u64,
        chunk: Option<&[u8]>,
        tried_last: bool,
        seen_end: u64,
        at_eof: bool,
    ) -> OpenError {
        let mut copy = Zeroizing::new(chunk.unwrap_or_default().to_vec());
        if chunk.is_some() && self.cipher.open_chunk(index, !tried_last, &mut copy) {
            // A valid final chunk followed by more data, or a valid middle
            // chunk where the file ends: the payload was extended or cut.
            return if tried_last {
                OpenError::Truncated
            } else {
                OpenError::TrailingData
            };
        }
        if let Some(expected) = self.expected_payload_len() {
            if seen_end > expected {
                return OpenError::TrailingData;
            }
            if at_eof && seen_end < expected {
                return OpenError::Truncated;
            }
        }
        OpenError::ChunkAuthenticationFailed { index }
    }

    fn fail(&mut self, err: OpenError) -> io::Error {
        self.failed = true;
        err.into()
    }

    /// Reads and verifies the next batch of chunks (streaming mode).
    fn fill_stream(&mut self) -> io::Result<()> {
        if let Some(source) = self.source_buffer {
            if self.open_from_source_buffer(source)? {
                return Ok(());
            }
        }
        let stride = self.cipher.encrypted_chunk_len();
        let want = self.buf.len();
        let n = match self.ahead.take() {
            Some(read) => {
                let n = read?;
                if let Some(spare) = self.spare.as_mut() {
                    std::mem::swap(&mut self.buf, spare);
                }
                n
            }
            None => match self.source_buffer {
                // Peek rather than read a byte ahead: it stays in the source,
                // where the next batch can be decrypted from.
                Some(source) => {
                    let got = read_full(&mut self.inner, &mut self.buf[..want - 1])?;
                    let more = got == want - 1 && !(source.fill)(&mut self.inner)?.is_empty();
                    got + usize::from(more)
                }
                None => {
                    let mut n = 0;
                    if let Some(byte) = self.carry.take() {
                        self.buf[0] = byte;
                        n = 1;
                    }
                    n + read_full(&mut self.inner, &mut self.buf[n..want])?
                }
            },
        };
        let batch_start = self.consumed;
        self.ready.clear();
        self.ready_pos = 0;
        self.ready_offset = 0;

        if let Some(expected) = self.expected_payload_len() {
            // FORMAT.md §6.4: with a declared length, a payload of another
            // length is named by its length, before any chunk of this read is
            // authenticated: more bytes than declared (seen here, or in the
            // byte read past the batch) are trailing data, an end of input
            // short of it a truncation.
            let seen_end = batch_start + n as u64;
            if seen_end > expected {
                return Err(self.fail(OpenError::TrailingData));
            }
            if n < want && seen_end < expected {
                return Err(self.fail(OpenError::Truncated));
            }
        }
        if n == want {
            // One byte beyond the batch exists, so none of its chunks is final.
            let count = (want - 1) / stride;
            let chunk_len = self.cipher.chunk_len;
            if past_cap(
                self.next_index,
                count,
                chunk_len,
                chunk_len,
                self.plaintext_cap,
            ) {
                let limit = self.plaintext_cap;
                return Err(self.fail(OpenError::LimitExceeded { limit }));
            }
            let carry = self.buf[want - 1];
            let result = if self.workers.threads() > 1 && self.source_buffer.is_none() {
                // Read the next batch while the other thread decrypts this
                // one; the read is a copy as long as the decryption, and
                // done alone it would leave the second core idle half the time.
                let spare = self
                    .spare
                    .get_or_insert_with(|| WipedBuf(crate::buffers::take(want)));
                let (inner, cipher, first) = (&mut self.inner, &self.cipher, self.next_index);
                let (ahead, failed) = self.workers.overlap(
                    &mut self.buf[..want - 1],
                    stride,
                    first,
                    &|i, chunk| cipher.open_chunk(first + i as u64, false, chunk),
                    || {
                        spare[0] = carry;
                        read_full(inner, &mut spare[1..want]).map(|got| got + 1)
                    },
                );
                self.ahead = Some(ahead);
                failed.map_or(Ok(()), Err)
            } else {
                if self.source_buffer.is_none() {
                    self.carry = Some(carry);
                }
                self.cipher.open_batch(
                    &mut self.buf[..want - 1],
                    self.next_index,
                    count,
                    None,
                    &self.workers,
                )
            };
            if let Err(i) = result {
                // The failed chunk was decrypted in place, so only the lengths
                // are evidence here (copying every batch first would cost speed).
                // FORMAT.md §6.4: with a declared length, a payload of another
                // length is reported as such, so read on to find where it ends
                // (at most up to one byte past the declared end).
                let index = self.next_index + i as u64;
                let read_ahead = match self.ahead.take() {
                    Some(Ok(got)) => got - 1,
                    _ => 0,
                };
                // A peeked byte is still in the source and is read again below.
                let taken = n - usize::from(self.source_buffer.is_some());
                let mut seen_end = batch_start + taken as u64 + read_ahead as u64;
                let mut at_eof = false;
                if let Some(expected) = self.expected_payload_len() {
                    while seen_end <= expected {
                        let want = usize::try_from(expected + 1 - seen_end)
                            .unwrap_or(usize::MAX)
                            .min(self.buf.len());
                        match read_retrying(&mut self.inner, &mut self.buf[..want]) {
                            Ok(0) => {
                                at_eof = true;
                                break;
                            }
                            Ok(got) => seen_end += got as u64,
                            Err(_) => break,
                        }
                    }
                }
                let err = self.classify_failure(index, None, false, seen_end, at_eof);
                return Err(self.fail(err));
            }
            for i in 0..count {
                self.ready
                    .push((i * stride, i * stride + self.cipher.chunk_len));
            }
            self.next_index += count as u64;
            self.consumed += (want - 1) as u64;
            return Ok(());
        }

        // End of input inside this batch: `full` complete chunks then the rest.
        let (full, rest) = (n / stride, n % stride);
        let seen_end = batch_start + n as u64;
        let (count, last_enc_len) = match (full, rest) {
            (0, 0) => return Err(self.fail(OpenError::Truncated)),
            (f, 0) => (f, stride),
            (f, r) if r < TAG_LEN => {
                // Too short to be a chunk: either a final full chunk followed
                // by stray bytes, or a final chunk cut short.
                let err = if f > 0 {
                    let start = (f - 1) * stride;
                    let mut chunk = self.buf[start..start + stride].to_vec();
                    let index = self.next_index + f as u64 - 1;
                    if self.cipher.open_chunk(index, true, &mut chunk) {
                        OpenError::TrailingData
                    } else {
                        OpenError::Truncated
                    }
                } else {
                    OpenError::Truncated
                };
                return Err(self.fail(err));
            }
            (f, r) => (f + 1, r),
        };
        let last_index = self.next_index + count as u64 - 1;
        let (chunk_len, last_len) = (self.cipher.chunk_len, last_enc_len - TAG_LEN);
        if past_cap(
            self.next_index,
            count,
            chunk_len,
            last_len,
            self.plaintext_cap,
        ) {
            let limit = self.plaintext_cap;
            return Err(self.fail(OpenError::LimitExceeded { limit }));
        }
        // FORMAT.md §6.4: an empty final chunk is allowed only as the only chunk.
        if last_enc_len == TAG_LEN && last_index != 0 {
            // Let the declared length name a cut or extended payload, as for
            // any other failing final chunk (tests/tamper.rs: a file cut 16
            // bytes into a chunk was reported as altered, not truncated).
            let err = self.classify_failure(last_index, None, true, seen_end, true);
            return Err(self.fail(err));
        }
        let used = (count - 1) * stride + last_enc_len;
        // Chunks are decrypted in place. Without a declared length, keep the
        // ciphertext of this final batch so that a failure can be named
        // (truncated or extended rather than just "altered"); with one, the
        // lengths alone say it and the copy is saved.
        let original = match self.declared_len {
            None => Some(Zeroizing::new(self.buf[..used].to_vec())),
            Some(_) => None,
        };
        let result = self.cipher.open_batch(
            &mut self.buf[..used],
            self.next_index,
            count,
            Some(last_enc_len),
            &self.workers,
        );
        if let Err(i) = result {
            let is_last = i + 1 == count;
            let start = i * stride;
            let end = if is_last { used } else { start + stride };
            let index = self.next_index + i as u64;
            let chunk = original.as_ref().map(|o| &o[start..end]);
            let err = self.classify_failure(index, chunk, is_last, seen_end, true);
            return Err(self.fail(err));
        }
        for i in 0..count {
            let len = if i + 1 == count {
                last_enc_len - TAG_LEN
            } else {
                self.cipher.chunk_len
            };
            self.ready.push((i * stride, i * stride + len));
        }
        self.next_index += count as u64;
        self.consumed += used as u64;
        self.done = true;
        if let Some(declared) = self.declared_len {
            let total: u64 = self.next_index.saturating_sub(1) * self.cipher.chunk_len as u64
                + (last_enc_len - TAG_LEN) as u64;
            if total != declared {
                // Authenticated chunks that disagree with the authenticated
                // metadata: the sealer itself was wrong.
                return Err(self.fail(OpenError::Truncated));
            }
        }
        Ok(())
    }
}

impl<R: BufRead> Opener<R> {
    /// Opens the payload that follows the header in `inner`, decrypting each
    /// chunk that `inner`'s buffer holds whole straight from there, with no
    /// copy in between. Over a payload in memory
    /// (`&[u8]`, a `Cursor`, a mapped file) this is what lets a second thread
    /// help: with [`Opener::new`], copying the ciphertext out of the reader,
    /// which one thread must do alone, costs more than decrypting it.
    /// Chunks that straddle the end of `inner`'s buffer are copied as
    /// [`Opener::new`] would. Results and errors are the same either way.
    pub fn from_buf_read(header: &VerifiedHeader, inner: R, options: StreamOptions) -> Self {
        let mut opener = Self::new(header, inner, options);
        opener.source_buffer = Some(SourceBuffer {
            fill: <R as BufRead>::fill_buf,
            consume: <R as BufRead>::consume,
        });
        opener
    }
}

impl<R: Read> BufRead for Opener<R> {
    /// Hands out verified plaintext straight from the decryption buffer, one
    /// chunk at a time, without copying it.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.failed {
            return Err(io::Error::other(
                "the sealed payload already failed to open",
            ));
        }
        while self.ready_pos >= self.ready.len() {
            if self.done {
                return Ok(&[]);
            }
            self.fill_stream()?;
        }
        let (start, end) = self.ready[self.ready_pos];
        Ok(&self.buf[start + self.ready_offset..end])
    }

    fn consume(&mut self, amount: usize) {
        let Some(&(start, end)) = self.ready.get(self.ready_pos) else {
            return;
        };
        self.ready_offset = (self.ready_offset + amount).min(end - start);
        if start + self.ready_offset == end {
            self.ready_pos += 1;
            self.ready_offset = 0;
        }
    }
}

impl<R: Read> Opener<R> {
    /// Writes the whole verified plaintext to `out`, each batch of chunks in
    /// one vectored write straight from the decryption buffer. Returns the
    /// bytes written; on an error, what was written so far is a verified
    /// prefix of the plaintext and nothing more.
    pub fn write_to<W: Write>(&mut self, out: &mut W) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            if self.failed {
                return Err(io::Error::other(
                    "the sealed payload already failed to open",
                ));
            }
            if self.ready_pos >= self.ready.len() {
                if self.done {
                    return Ok(total);
                }
                self.fill_stream()?;
                continue;
            }
            let (start, end) = self.ready[self.ready_pos];
            if start + self.ready_offset == end {
                // An empty final chunk (an empty file): nothing to write.
                (self.ready_pos, self.ready_offset) = (self.ready_pos + 1, 0);
                continue;
            }
            let slices: Vec<IoSlice<'_>> = self.ready[self.ready_pos..]
                .iter()
                .enumerate()
                .map(|(k, &(start, end))| {
                    let skip = if k == 0 { self.ready_offset } else { 0 };
                    IoSlice::new(&self.buf[start + skip..end])
                })
                .collect();
            let mut n = match out.write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n as u64;
            while n > 0 {
                let (start, end) = self.ready[self.ready_pos];
                let available = end - start - self.ready_offset;
                let take = n.min(available);
                self.consume(take);
                n -= take;
            }
        }
    }
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = out.len().min(available.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The plaintext length of a payload `payload_len` bytes long, checked
/// against the declared length when there is one, before anything is
/// decrypted (FORMAT.md §6.4).
fn checked_plaintext_len(
    cipher: &PayloadCipher,
    declared: Option<u64>,
    payload_len: usize,
) -> Result<usize, OpenError> {
    let stride = cipher.encrypted_chunk_len();
    if let Some(expected) = declared.and_then(|d| self::payload_len(d, cipher.chunk_len as u64)) {
        if (payload_len as u64) > expected {
            return Err(OpenError::TrailingData);
        }
        if (payload_len as u64) < expected {
            return Err(OpenError::Truncated);
        }
    }
    let count = payload_len.div_ceil(stride);
    let last_enc_len = payload_len.saturating_sub(count.saturating_sub(1) * stride);
    if count == 0 || last_enc_len < TAG_LEN {
        return Err(OpenError::Truncated);
    }
    // FORMAT.md §6.4: an empty final chunk is allowed only as the only chunk.
    if last_enc_len == TAG_LEN && count > 1 {
        return Err(OpenError::ChunkAuthenticationFailed {
            index: count as u64 - 1,
        });
    }
    let plaintext_len = payload_len - count * TAG_LEN;
    // FORMAT.md §6.2.
    if plaintext_len as u64 > MAX_PLAINTEXT_LEN {
        return Err(OpenError::LimitExceeded {
            limit: MAX_PLAINTEXT_LEN,
        });
    }
    Ok(plaintext_len)
}

/// The plaintext length of an in-memory payload (the bytes after the
/// header), for sizing the buffer [`open_into`] fills: checked against the
/// declared length, and against the payload's own shape.
pub fn opened_len(header: &VerifiedHeader, payload: &[u8]) -> Result<usize, OpenError> {
    let cipher = header.payload_cipher(PayloadBackend::Portable);
    checked_plaintext_len(&cipher, header.metadata().plaintext_len, payload.len())
}

/// Opens a whole in-memory payload (the bytes after the header) into `out`,
/// which must be [`opened_len`] bytes long, on `options.threads` threads:
/// each decrypts its chunks from `payload` straight into their place in
/// `out`, with no copy in between. On any failure `out` is wiped and nothing
/// in it may be used; the error names the first chunk that failed.
pub fn open_into(
    header: &VerifiedHeader,
    payload: &[u8],
    out: &mut [u8],
    options: StreamOptions,
) -> Result<(), OpenError> {
    let cipher = header.payload_cipher(options.backend);
    let plaintext_len =
        checked_plaintext_len(&cipher, header.metadata().plaintext_len, payload.len())?;
    if out.len() != plaintext_len {
        return Err(OpenError::OutputLength {
            needed: plaintext_len as u64,
            given: out.len() as u64,
        });
    }
    let (chunk_len, stride) = (cipher.chunk_len, cipher.encrypted_chunk_len());
    let count = payload.len().div_ceil(stride);
    let workers = Workers::one_shot(options.threads);
    // An empty plaintext still has its (empty) final chunk to verify.
    let failed = if out.is_empty() {
        (!cipher.open_chunk_into(0, true, payload, out)).then_some(0)
    } else {
        workers.for_each_chunk(out, chunk_len, 0, &|i, plain| {
            let start = i * stride;
            let chunk = &payload[start..start + plain.len() + TAG_LEN];
            cipher.open_chunk_into(i as u64, i + 1 == count, chunk, plain)
        })
    };
    if let Some(index) = failed {
        wipe(out);
        return Err(OpenError::ChunkAuthenticationFailed {
            index: index as u64,
        });
    }
    Ok(())
}

/// Opens a whole in-memory payload (the bytes after the header) into a new
/// buffer, on `options.threads` threads (see [`open_into`]). Nothing is
/// returned unless every chunk verified.
pub fn open_to_vec(
    header: &VerifiedHeader,
    payload: &[u8],
    options: StreamOptions,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let mut out = Zeroizing::new(vec![0u8; opened_len(header, payload)?]);
    open_into(header, payload, &mut out, options)?;
    Ok(out)
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
        let cipher = header.payload_cipher(backend);
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
    use crate::{
        ContentKey, EnvelopeBuilder, KasSecretKey, Metadata, Policy, PolicyGrant, Recipient,
        Rights, SealedHeader,
    };

    #[test]
    fn wipe_clears_exactly_its_bytes_at_any_alignment() {
        for start in 0..17 {
            for len in [0, 1, 15, 16, 17, 70] {
                let mut bytes = [0xAAu8; 128];
                wipe(&mut bytes[start..start + len]);
                for (i, b) in bytes.iter().enumerate() {
                    let inside = (start..start + len).contains(&i);
                    assert_eq!(
                        *b,
                        if inside { 0 } else { 0xAA },
                        "start {start} len {len} byte {i}"
                    );
                }
            }
        }
    }

    /// An envelope for `@support` to view, with `chunk_len`-byte chunks and
    /// `declared` as its plaintext length.
    fn builder(kas: &KasSecretKey, chunk_len: u32, declared: Option<u64>) -> EnvelopeBuilder {
        let policy = Policy::new(
            vec![PolicyGrant {
                recipients: [Recipient::parse("@support").unwrap()].into(),
                rights: Rights::VIEW,
            }],
            None,
            None,
            600,
            true,
            None,
        )
        .unwrap();
        EnvelopeBuilder::new(policy)
            .key_server("https://kas.test", kas.public_key())
            .chunk_len(chunk_len)
            .metadata(Metadata {
                plaintext_len: declared,
                ..Metadata::default()
            })
    }

    /// A `BufRead` over bytes in memory that counts how its bytes left it:
    /// copied out through `read`, or taken where they lie through `consume`.
    struct CountingSource<'a> {
        bytes: &'a [u8],
        copied: usize,
        taken_in_place: usize,
    }

    impl Read for CountingSource<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.bytes.read(out)?;
            self.copied += n;
            Ok(n)
        }
    }

    impl BufRead for CountingSource<'_> {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            Ok(self.bytes)
        }
        fn consume(&mut self, amount: usize) {
            self.bytes = &self.bytes[amount..];
            self.taken_in_place += amount;
        }
    }

    /// Over a `BufRead`, every chunk but the final one is decrypted from the
    /// source's buffer; only the final chunk, which cannot be told final
    /// without looking past it, goes through a copy.
    #[test]
    fn a_buffered_source_is_decrypted_where_it_lies() {
        let kas = KasSecretKey::generate().unwrap();
        let chunk_len = 1024;
        let plaintext: Vec<u8> = (0..40 * chunk_len as u32 + 300)
            .map(|i| (i % 251) as u8)
            .collect();
        let stride = chunk_len + TAG_LEN;
        for declared in [None, Some(plaintext.len() as u64)] {
            let header = builder(&kas, chunk_len as u32, declared).build().unwrap();
            let sealed = seal_to_vec(&header, &plaintext, StreamOptions::default()).unwrap();
            let (parsed, header_len) = SealedHeader::parse(&sealed).unwrap();
            let verified = parsed.clone().verify(kas.unwrap(&parsed).unwrap()).unwrap();
            let payload = &sealed[header_len..];
            for threads in [1, 2] {
                let options = StreamOptions {
                    threads,
                    ..StreamOptions::default()
                };
                let mut source = CountingSource {
                    bytes: payload,
                    copied: 0,
                    taken_in_place: 0,
                };
                let mut opened = Vec::new();
                Opener::from_buf_read(&verified, &mut source, options)
                    .read_to_end(&mut opened)
                    .unwrap();
                let case = format!("declared {declared:?}, {threads} thread(s)");
                assert!(opened == plaintext, "{case}");
                assert_eq!(source.taken_in_place, 40 * stride, "{case}");
                assert_eq!(source.copied, payload.len() - 40 * stride, "{case}");
            }
        }
    }

    /// FORMAT.md §6.2: a sealer refuses to take a file's plaintext past the
    /// cap, through `write` and through `seal_from` alike, and accepts it up
    /// to the cap exactly. (The cap is lowered here: 2^48 bytes cannot be
    /// written in a test.)
    #[test]
    fn a_sealer_refuses_plaintext_past_the_cap() {
        let kas = KasSecretKey::generate().unwrap();
        let header = builder(&kas, 1024, None).build().unwrap();
        let too_large = |err: io::Error| {
            matches!(
                err.get_ref()
                    .and_then(|e| e.downcast_ref::<crate::SealError>()),
                Some(crate::SealError::TooLarge { limit: 3000, .. })
            )
        };
        let mut sealer = Sealer::new(&header, Vec::new(), StreamOptions::default()).unwrap();
        sealer.plaintext_cap = 3000;
        sealer.write_all(&[7; 3000]).unwrap();
        assert!(too_large(sealer.write_all(&[7]).unwrap_err()));

        let mut sealer = Sealer::new(&header, Vec::new(), StreamOptions::default()).unwrap();
        sealer.plaintext_cap = 3000;
        assert!(too_large(
            sealer.seal_from(&mut &[7u8; 3001][..]).unwrap_err()
        ));

        let mut sealer = Sealer::new(&header, Vec::new(), StreamOptions::default()).unwrap();
        sealer.plaintext_cap = 3000;
        assert_eq!(sealer.seal_from(&mut &[7u8; 3000][..]).unwrap(), 3000);
        sealer.finish().unwrap();
    }

    /// FORMAT.md §6.2: a streaming reader refuses a payload whose plaintext
    /// goes past the cap before it decrypts the chunk that crosses it, from
    /// any source and on any number of threads, and opens one that reaches
    /// the cap exactly.
    #[test]
    fn an_opener_refuses_plaintext_past_the_cap() {
        let kas = KasSecretKey::generate().unwrap();
        let plaintext: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
        let header = builder(&kas, 1024, None).build().unwrap();
        let sealed = seal_to_vec(&header, &plaintext, StreamOptions::default()).unwrap();
        let (parsed, header_len) = SealedHeader::parse(&sealed).unwrap();
        let verified = parsed.clone().verify(kas.unwrap(&parsed).unwrap()).unwrap();
        let payload = &sealed[header_len..];
        for threads in [1, 2] {
            let options = StreamOptions {
                threads,
                ..StreamOptions::default()
            };
            for buffered in [false, true] {
                for (cap, refused) in [(3999, true), (4000, false), (2048, true)] {
                    let mut opener = if buffered {
                        Opener::from_buf_read(&verified, payload, options)
                    } else {
                        Opener::new(&verified, payload, options)
                    };
                    opener.plaintext_cap = cap;
                    let mut opened = Vec::new();
                    let result = opener.read_to_end(&mut opened);
                    let case = format!("cap {cap}, {threads} thread(s), buffered {buffered}");
                    if refused {
                        let err = result.unwrap_err();
                        assert!(
                            matches!(
                                OpenError::from_io(&err),
                                Some(OpenError::LimitExceeded { limit }) if *limit == cap
                            ),
                            "{case}: {err:?}"
                        );
                        assert!(opened.len() as u64 <= cap, "{case}: released past the cap");
                    } else {
                        result.unwrap();
                        assert!(opened == plaintext, "{case}");
                    }
                }
            }
        }
    }

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

    /// FORMAT.md §8.4: the payload key depends on the file id and header hash,
    /// not only the content key, so even two files sealed under the same
    /// content key cannot have their chunks swapped.
    #[test]
    fn chunk_spliced_from_a_file_with_the_same_content_key_fails() {
        let kas = KasSecretKey::generate().unwrap();
        let plaintext: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
        let seal = || {
            let header = builder(&kas, 1024, Some(plaintext.len() as u64))
                .content_key_for_test(ContentKey::from_bytes([9; 32]))
                .build()
                .unwrap();
            seal_to_vec(&header, &plaintext, StreamOptions::default()).unwrap()
        };
        let (a, b) = (seal(), seal());
        let (header, header_len) = SealedHeader::parse(&a).unwrap();
        assert_eq!(SealedHeader::parse(&b).unwrap().1, header_len);
        let key = kas.unwrap(&header).unwrap();
        assert_eq!(key.expose_secret(), &[9; 32]);
        let verified = header.verify(key).unwrap();

        let chunk0 = header_len..header_len + 1024 + TAG_LEN;
        assert_ne!(a[chunk0.clone()], b[chunk0.clone()]);
        let mut spliced = a.clone();
        spliced[chunk0.clone()].copy_from_slice(&b[chunk0]);

        let open = |file: &[u8]| {
            let mut plain = Vec::new();
            Opener::new(&verified, &file[header_len..], StreamOptions::default())
                .read_to_end(&mut plain)
                .map(|_| plain)
        };
        assert_eq!(open(&a).unwrap(), plaintext);
        let err = open(&spliced).unwrap_err();
        assert!(
            matches!(
                OpenError::from_io(&err),
                Some(OpenError::ChunkAuthenticationFailed { index: 0 })
            ),
            "{err:?}"
        );
    }
}
