//! The canonical field encoding of FORMAT.md §3: big-endian integers and
//! `tag | length | value` records, read through a bounded cursor.
//!
//! This module knows nothing of what the tags mean; `header`, `policy` and
//! `metadata` give them meaning. Parsing never indexes out of bounds: every
//! read asks the cursor for a sub-slice that it hands out only when enough bytes
//! remain.

use crate::error::FormatError;

/// A field tag. FORMAT.md §3.2: an odd tag is critical, an even tag ignorable.
pub(crate) type Tag = u16;

/// Whether a reader that does not know `tag` must reject the record.
pub(crate) fn is_critical(tag: Tag) -> bool {
    tag & 1 == 1
}

/// A bounded cursor over a byte slice.
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
    /// What is being parsed, for error messages.
    context: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8], context: &'static str) -> Self {
        Self {
            rest: bytes,
            context,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], FormatError> {
        let (head, tail) = self
            .rest
            .split_at_checked(len)
            .ok_or(FormatError::CorruptHeader {
                context: self.context,
                problem: "a length runs past the end of its record",
            })?;
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn take_array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, FormatError> {
        self.take_array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, FormatError> {
        self.take_array().map(u32::from_be_bytes)
    }

    /// Rejects trailing bytes: a record must be consumed exactly.
    pub(crate) fn finish(self) -> Result<(), FormatError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(FormatError::CorruptHeader {
                context: self.context,
                problem: "unexpected bytes after the last field",
            })
        }
    }
}

/// One `tag | length | value` field, borrowed from its record.
pub(crate) struct Field<'a> {
    pub(crate) tag: Tag,
    pub(crate) value: &'a [u8],
}

/// Reads the fields of a record, enforcing FORMAT.md §3.2: tags strictly
/// ascending (so no duplicates and one canonical order).
pub(crate) struct RecordReader<'a> {
    cursor: Cursor<'a>,
    last_tag: Option<Tag>,
    context: &'static str,
}

impl<'a> RecordReader<'a> {
    pub(crate) fn new(bytes: &'a [u8], context: &'static str) -> Self {
        Self {
            cursor: Cursor::new(bytes, context),
            last_tag: None,
            context,
        }
    }

    pub(crate) fn next_field(&mut self) -> Result<Option<Field<'a>>, FormatError> {
        if self.cursor.is_empty() {
            return Ok(None);
        }
        let tag = self.cursor.u16()?;
        if self.last_tag.is_some_and(|last| tag <= last) {
            return Err(FormatError::CorruptHeader {
                context: self.context,
                problem: "fields are not in strictly ascending tag order",
            });
        }
        self.last_tag = Some(tag);
        let len = self.cursor.u32()? as usize;
        let value = self.cursor.take(len)?;
        Ok(Some(Field { tag, value }))
    }

    /// Called with a field the caller does not know: skip it if it is
    /// ignorable, reject the record if it is critical.
    pub(crate) fn unknown(&self, field: &Field<'_>) -> Result<(), FormatError> {
        if is_critical(field.tag) {
            Err(FormatError::UnknownCriticalField {
                context: self.context,
                tag: field.tag,
            })
        } else {
            Ok(())
        }
    }
}

/// Typed readers for field values. Each checks the exact length.
pub(crate) mod value {
    use super::Cursor;
    use crate::error::FormatError;

    fn wrong_len(context: &'static str) -> FormatError {
        FormatError::CorruptHeader {
            context,
            problem: "a field has the wrong length for its type",
        }
    }

    pub(crate) fn array<const N: usize>(
        bytes: &[u8],
        context: &'static str,
    ) -> Result<[u8; N], FormatError> {
        bytes.try_into().map_err(|_| wrong_len(context))
    }

    pub(crate) fn u8(bytes: &[u8], context: &'static str) -> Result<u8, FormatError> {
        array::<1>(bytes, context).map(|b| b[0])
    }

    pub(crate) fn u32(bytes: &[u8], context: &'static str) -> Result<u32, FormatError> {
        array(bytes, context).map(u32::from_be_bytes)
    }

    pub(crate) fn u64(bytes: &[u8], context: &'static str) -> Result<u64, FormatError> {
        array(bytes, context).map(u64::from_be_bytes)
    }

    /// FORMAT.md §3.1: booleans are one byte, 0 or 1; anything else is rejected
    /// so that each value has one encoding.
    pub(crate) fn bool(bytes: &[u8], context: &'static str) -> Result<bool, FormatError> {
        match u8(bytes, context)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(FormatError::CorruptHeader {
                context,
                problem: "a boolean is neither 0 nor 1",
            }),
        }
    }

    pub(crate) fn string(
        bytes: &[u8],
        max_len: usize,
        context: &'static str,
    ) -> Result<String, FormatError> {
        if bytes.len() > max_len {
            return Err(FormatError::LimitExceeded {
                context,
                limit: max_len,
            });
        }
        let s = std::str::from_utf8(bytes).map_err(|_| FormatError::CorruptHeader {
            context,
            problem: "a string is not valid UTF-8",
        })?;
        if s.chars().any(char::is_control) {
            return Err(FormatError::CorruptHeader {
                context,
                problem: "a string contains a control character",
            });
        }
        Ok(s.to_owned())
    }

    /// A list: `count (u16) | (length (u32) | item)*`.
    pub(crate) fn list<'a>(
        bytes: &'a [u8],
        max_items: usize,
        context: &'static str,
    ) -> Result<Vec<&'a [u8]>, FormatError> {
        let mut cursor = Cursor::new(bytes, context);
        let count = usize::from(cursor.u16()?);
        if count > max_items {
            return Err(FormatError::LimitExceeded {
                context,
                limit: max_items,
            });
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            let len = cursor.u32()? as usize;
            items.push(cursor.take(len)?);
        }
        cursor.finish()?;
        Ok(items)
    }
}

/// Writes a record. Callers add fields in ascending tag order; a debug
/// assertion catches a mistake in our own encoders.
#[derive(Default)]
pub(crate) struct RecordWriter {
    out: Vec<u8>,
    last_tag: Option<Tag>,
}

impl RecordWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn field(&mut self, tag: Tag, value: &[u8]) -> &mut Self {
        debug_assert!(
            self.last_tag.is_none_or(|last| tag > last),
            "encoder wrote tag {tag} out of order"
        );
        self.last_tag = Some(tag);
        let len = u32::try_from(value.len()).expect("field values are bounded far below 4 GiB");
        self.out.extend_from_slice(&tag.to_be_bytes());
        self.out.extend_from_slice(&len.to_be_bytes());
        self.out.extend_from_slice(value);
        self
    }

    pub(crate) fn u8(&mut self, tag: Tag, v: u8) -> &mut Self {
        self.field(tag, &[v])
    }

    pub(crate) fn u32(&mut self, tag: Tag, v: u32) -> &mut Self {
        self.field(tag, &v.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, tag: Tag, v: u64) -> &mut Self {
        self.field(tag, &v.to_be_bytes())
    }

    pub(crate) fn list<I, T>(&mut self, tag: Tag, items: I) -> &mut Self
    where
        I: ExactSizeIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let count = u16::try_from(items.len()).expect("list lengths are validated below 65536");
        let mut value = count.to_be_bytes().to_vec();
        for item in items {
            let item = item.as_ref();
            let len = u32::try_from(item.len()).expect("list items are bounded far below 4 GiB");
            value.extend_from_slice(&len.to_be_bytes());
            value.extend_from_slice(item);
        }
        self.field(tag, &value)
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}
