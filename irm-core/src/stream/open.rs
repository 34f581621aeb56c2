//! [`Opener`]: the payload opened as it is read (FORMAT.md §6.4), a batch of
//! chunks at a time, from a plain `Read` or from a `BufRead`'s own buffer
//! ([`Opener::from_buf_read`]). No plaintext of a chunk is released before its
//! tag verifies, and a failure is named as precisely as the evidence allows.
//! Random access is `seekable`'s, whole payloads in memory `in_memory`'s.

use std::io::{self, BufRead, IoSlice, Read, Write};

use zeroize::Zeroizing;

use super::cipher::{PayloadCipher, buffer_len};
use super::options::{StreamOptions, TAG_LEN};
use super::read::{read_full, read_retrying};
use crate::buffers::wipe;
use crate::error::OpenError;
use crate::header::{MAX_PLAINTEXT_LEN, VerifiedHeader, payload_len};
use crate::parallel::Workers;

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

/// FORMAT.md §6.2: whether `chunks` chunks from chunk `first` on, the last
/// of them holding `last_len` plaintext bytes, take a file's plaintext past
/// `cap` bytes. Readers check it before they decrypt the chunks.
fn past_cap(first: u64, chunks: usize, chunk_len: usize, last_len: usize, cap: u64) -> bool {
    (first + chunks as u64 - 1)
        .checked_mul(chunk_len as u64)
        .and_then(|full| full.checked_add(last_len as u64))
        .is_none_or(|total| total > cap)
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
        let cipher = PayloadCipher::for_header(header, options.backend);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::seal_to_vec;
    use crate::stream::tests::builder;
    use crate::{ContentKey, KasSecretKey, SealedHeader};

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
