//! Whole payloads in memory, in one call: [`seal_to_vec`], [`seal_in_place`]
//! and [`seal_payload_in_place`] seal; [`opened_len`], [`open_into`] and
//! [`open_to_vec`] open. Each chunk is encrypted or decrypted where it lies,
//! on `options.threads` threads, and nothing is released unless every chunk
//! verified.

use zeroize::Zeroizing;

use super::cipher::PayloadCipher;
use super::options::{PayloadBackend, StreamOptions, TAG_LEN};
use crate::buffers::wipe;
use crate::error::{OpenError, SealError};
use crate::header::{MAX_PLAINTEXT_LEN, VerifiedHeader, max_plaintext_len_usize, payload_len};
use crate::parallel::Workers;

/// Seals a whole in-memory plaintext, returning the envelope. Chunks are
/// encrypted in place in the output buffer, on `options.threads` threads.
pub fn seal_to_vec(
    header: &VerifiedHeader,
    plaintext: &[u8],
    options: StreamOptions,
) -> Result<Vec<u8>, SealError> {
    let chunk_len = header.header().chunk_len() as usize;
    let declared = header.metadata().plaintext_len;
    if declared.is_some_and(|d| d != plaintext.len() as u64) {
        return Err(SealError::LengthMismatch {
            declared: declared.unwrap_or(0),
            written: plaintext.len() as u64,
        });
    }
    if plaintext.len() as u64 > MAX_PLAINTEXT_LEN {
        return Err(SealError::TooLarge {
            what: "the plaintext",
            limit: max_plaintext_len_usize(),
        });
    }
    let header_bytes = header.header().to_bytes();
    let payload = payload_len(plaintext.len() as u64, chunk_len as u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(SealError::TooLarge {
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
) -> Result<(), SealError> {
    let chunk_len = header.header().chunk_len() as usize;
    let plaintext_len = buf.len();
    let declared = header.metadata().plaintext_len;
    if let Some(declared) = declared.filter(|d| *d != plaintext_len as u64) {
        return Err(SealError::LengthMismatch {
            declared,
            written: plaintext_len as u64,
        });
    }
    if plaintext_len as u64 > MAX_PLAINTEXT_LEN {
        return Err(SealError::TooLarge {
            what: "the plaintext",
            limit: max_plaintext_len_usize(),
        });
    }
    let header_bytes = header.header().to_bytes();
    let payload = payload_len(plaintext_len as u64, chunk_len as u64)
        .and_then(|p| usize::try_from(p).ok())
        .and_then(|p| p.checked_add(header_bytes.len()))
        .ok_or(SealError::TooLarge {
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
    let cipher = PayloadCipher::for_header(header, options.backend);
    let stride = cipher.encrypted_chunk_len();
    let count = payload.len().div_ceil(stride).max(1);
    let last_len = payload.len() - (count - 1) * stride - TAG_LEN;
    let workers = Workers::one_shot(options.threads);
    cipher.seal_batch(payload, 0, count, Some(last_len), &workers);
}

/// The plaintext length of a payload `payload_len` bytes long, checked
/// against the declared length when there is one, before anything is
/// decrypted (FORMAT.md §6.4).
fn checked_plaintext_len(
    cipher: &PayloadCipher,
    declared: Option<u64>,
    payload: &[u8],
) -> Result<usize, OpenError> {
    let payload_len = payload.len();
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
        return Err(short_last_piece(cipher, payload, count));
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

/// FORMAT.md §6.5: what an empty payload, or one whose last piece is too
/// short to be a chunk (1 to 15 bytes), is: trailing data when the chunk
/// before that piece verifies as the final chunk, a truncation otherwise.
/// Only this error path decrypts, into a scratch buffer that is wiped.
fn short_last_piece(cipher: &PayloadCipher, payload: &[u8], count: usize) -> OpenError {
    let stride = cipher.encrypted_chunk_len();
    let Some(before) = count.checked_sub(2) else {
        return OpenError::Truncated;
    };
    let chunk = &payload[before * stride..(before + 1) * stride];
    let mut scratch = Zeroizing::new(vec![0u8; cipher.chunk_len]);
    if cipher.open_chunk_into(before as u64, true, chunk, &mut scratch) {
        OpenError::TrailingData
    } else {
        OpenError::Truncated
    }
}

/// The plaintext length of an in-memory payload (the bytes after the
/// header), for sizing the buffer [`open_into`] fills: checked against the
/// declared length, and against the payload's own shape.
pub fn opened_len(header: &VerifiedHeader, payload: &[u8]) -> Result<usize, OpenError> {
    let cipher = PayloadCipher::for_header(header, PayloadBackend::Portable);
    checked_plaintext_len(&cipher, header.metadata().plaintext_len, payload)
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
    let cipher = PayloadCipher::for_header(header, options.backend);
    let plaintext_len = checked_plaintext_len(&cipher, header.metadata().plaintext_len, payload)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::tests::builder;
    use crate::{KasSecretKey, SealedHeader, SeekableOpener};

    /// FORMAT.md §6.5 without a declared length: a last piece of 1 to 15
    /// bytes after a valid final chunk is trailing data, after a non-final
    /// chunk (a final chunk cut short) a truncation; in memory as with random
    /// access.
    #[test]
    fn a_short_last_piece_is_named_as_a_reader_with_random_access_names_it() {
        let kas = KasSecretKey::generate().unwrap();
        let header = builder(&kas, 1024, None).build().unwrap();
        let stride = 1024 + TAG_LEN;
        for plain_len in [1024usize, 2048, 2500] {
            let plaintext = vec![0x5A; plain_len];
            let sealed = seal_to_vec(&header, &plaintext, StreamOptions::default()).unwrap();
            let (parsed, header_len) = SealedHeader::parse(&sealed).unwrap();
            let verified = parsed.clone().verify(kas.unwrap(&parsed).unwrap()).unwrap();
            let payload = &sealed[header_len..];
            let full_chunks = plain_len / 1024;
            let mut extended = payload.to_vec();
            extended.extend_from_slice(&[7; 5]);
            let cut = &payload[..(plain_len.div_ceil(1024) - 1) * stride + 10];
            type Case<'a> = (&'static str, &'a [u8], fn(&OpenError) -> bool);
            let cases: [Case<'_>; 2] = [
                ("5 bytes appended", &extended, |e| {
                    matches!(e, OpenError::TrailingData)
                }),
                ("the final chunk cut to 10 bytes", cut, |e| {
                    matches!(e, OpenError::Truncated)
                }),
            ];
            for (case, bytes, want) in cases {
                // Appending after a final chunk that is not full makes a
                // payload whose last stride holds it: no short piece then.
                if case.starts_with('5') && plain_len % 1024 != 0 {
                    continue;
                }
                let in_memory = opened_len(&verified, bytes).unwrap_err();
                let mut file = sealed[..header_len].to_vec();
                file.extend_from_slice(bytes);
                let mut input = std::io::Cursor::new(&file[..]);
                input.set_position(header_len as u64);
                let Err(seekable) = SeekableOpener::new(&verified, input, PayloadBackend::Portable)
                else {
                    panic!("{plain_len} bytes, {case}: SeekableOpener accepted it");
                };
                let what = format!("{plain_len} bytes ({full_chunks} full chunks), {case}");
                assert!(want(&in_memory), "{what}: open_to_vec said {in_memory:?}");
                assert!(
                    OpenError::from_io(&seekable).is_some_and(want),
                    "{what}: SeekableOpener said {seekable:?}"
                );
            }
        }
    }
}
