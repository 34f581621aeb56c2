//! Plain-text and JSON documents: the decoded text in one zeroizing buffer,
//! an index of line starts, and a virtualised line-by-line view.
//!
//! JSON is checked with serde_json (`IgnoredAny`, which skips strings
//! without copying them) and then re-indented here, byte by byte, into a
//! buffer sized exactly by a first counting pass. Parsing into a
//! `serde_json::Value` would scatter the plaintext over many small heap
//! strings that are freed without being wiped.

use egui::{Label, RichText, ScrollArea, Ui};
use zeroize::Zeroizing;

use crate::text::{self, TextEncoding};

/// A text document.
pub struct TextDoc {
    text: Zeroizing<String>,
    /// Byte offset of each line's start in `text`.
    line_starts: Vec<usize>,
    /// The encoding it was decoded from.
    pub encoding: TextEncoding,
    /// Whether some bytes were invalid in that encoding.
    pub had_errors: bool,
    /// Whether the text is JSON that was pretty-printed.
    pub pretty_json: bool,
}

impl std::fmt::Debug for TextDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextDoc")
            .field("lines", &self.line_count())
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

impl TextDoc {
    /// Decodes plain text (UTF-8, UTF-16 with a BOM or CP932).
    pub fn plain(bytes: &[u8]) -> Self {
        let decoded = text::decode(bytes);
        Self::new(decoded.text, decoded.encoding, decoded.had_errors, false)
    }

    /// Decodes JSON and pretty-prints it; text that is not valid JSON is
    /// shown as it is.
    pub fn json(bytes: &[u8]) -> Self {
        let decoded = text::decode(bytes);
        let valid = serde_json::from_str::<serde::de::IgnoredAny>(&decoded.text).is_ok();
        let text = if valid {
            pretty_json(&decoded.text)
        } else {
            decoded.text
        };
        Self::new(text, decoded.encoding, decoded.had_errors, valid)
    }

    fn new(
        text: Zeroizing<String>,
        encoding: TextEncoding,
        had_errors: bool,
        pretty_json: bool,
    ) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        if text.ends_with('\n') {
            line_starts.pop(); // a final line break does not start a line
        }
        Self {
            text,
            line_starts,
            encoding,
            had_errors,
            pretty_json,
        }
    }

    /// Number of lines.
    pub fn line_count(&self) -> usize {
        if self.text.is_empty() {
            0
        } else {
            self.line_starts.len()
        }
    }

    /// Line `i` without its line break.
    pub fn line(&self, i: usize) -> &str {
        let start = self.line_starts[i];
        let end = self.line_starts.get(i + 1).map_or(self.text.len(), |&e| e);
        let line = &self.text[start..end];
        let line = line.strip_suffix('\n').unwrap_or(line);
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// Draws the lines on screen; they are selectable only with the copy
    /// right (the app gates what reaches the clipboard).
    pub fn show(&self, ui: &mut Ui, selectable: bool) {
        let row_height = ui.text_style_height(&egui::TextStyle::Monospace);
        ScrollArea::both()
            .id_salt("text-lines")
            .auto_shrink(false)
            .show_rows(ui, row_height, self.line_count(), |ui, range| {
                for i in range {
                    ui.add(
                        Label::new(RichText::new(self.line(i)).monospace())
                            .selectable(selectable)
                            .extend(),
                    );
                }
            });
    }
}

/// Re-indents valid JSON in `serde_json::to_string_pretty`'s layout (two
/// spaces, `": "`, empty containers as `{}` and `[]`) but keeping the keys'
/// order and the numbers' spelling, into a zeroizing buffer that never
/// reallocates.
fn pretty_json(json: &str) -> Zeroizing<String> {
    let mut len = 0;
    reindent(json, |s| len += s.len());
    let mut out = Zeroizing::new(String::with_capacity(len));
    reindent(json, |s| out.push_str(s));
    debug_assert_eq!(out.len(), len);
    out
}

/// Walks valid JSON and emits it pretty-printed, piece by piece.
fn reindent(json: &str, mut emit: impl FnMut(&str)) {
    let bytes = json.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    let newline = |emit: &mut dyn FnMut(&str), depth: usize| {
        emit("\n");
        for _ in 0..depth {
            emit("  ");
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Copy the whole string literal, escapes included.
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                emit(&json[start..i.min(bytes.len())]);
                continue;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                let next = bytes[i + 1..]
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .map(|p| i + 1 + p);
                if let Some(n) = next.filter(|&n| bytes[n] == close) {
                    emit(if open == b'{' { "{}" } else { "[]" });
                    i = n + 1;
                    continue;
                }
                emit(if open == b'{' { "{" } else { "[" });
                depth += 1;
                newline(&mut emit, depth);
            }
            close @ (b'}' | b']') => {
                depth = depth.saturating_sub(1);
                newline(&mut emit, depth);
                emit(if close == b'}' { "}" } else { "]" });
            }
            b',' => {
                emit(",");
                newline(&mut emit, depth);
            }
            b':' => emit(": "),
            b if b.is_ascii_whitespace() => {}
            _ => {
                // A number, true, false or null: up to the next delimiter.
                let start = i;
                while i < bytes.len()
                    && !matches!(bytes[i], b',' | b'}' | b']' | b':')
                    && !bytes[i].is_ascii_whitespace()
                {
                    i += 1;
                }
                emit(&json[start..i]);
                continue;
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{"顧客":{"氏名":"山田 \"太郎\"","電話":"03-1234-5678"},"items":[1,2.5,-3e2,true,null,[],{}],"memo":"a,b:{c}[d]"}"#;

    #[test]
    fn json_is_pretty_printed_in_its_own_order() {
        let doc = TextDoc::json(ORDER.as_bytes());
        assert!(doc.pretty_json);
        // Keys keep the sealed order and numbers their spelling, unlike a
        // round trip through serde_json::Value; the value is the same.
        let want = "{\n  \"顧客\": {\n    \"氏名\": \"山田 \\\"太郎\\\"\",\n    \"電話\": \"03-1234-5678\"\n  },\n  \"items\": [\n    1,\n    2.5,\n    -3e2,\n    true,\n    null,\n    [],\n    {}\n  ],\n  \"memo\": \"a,b:{c}[d]\"\n}";
        assert_eq!(*doc.text, want);
        let value = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(value(&doc.text), value(ORDER));
        assert_eq!(doc.line(1), "  \"顧客\": {");
    }

    #[test]
    fn invalid_json_is_shown_raw() {
        let raw = "{\"a\": 1,\n oops";
        let doc = TextDoc::json(raw.as_bytes());
        assert!(!doc.pretty_json);
        assert_eq!(*doc.text, raw);
        assert_eq!(doc.line_count(), 2);
        assert_eq!(doc.line(1), " oops");
    }

    #[test]
    fn plain_text_lines() {
        let (cp932, _, _) = encoding_rs::SHIFT_JIS.encode("お問い合わせ\r\n折り返し電話\r\n");
        let doc = TextDoc::plain(&cp932);
        assert_eq!(doc.encoding, TextEncoding::ShiftJis);
        assert_eq!(doc.line_count(), 2);
        assert_eq!(doc.line(0), "お問い合わせ");
        assert_eq!(doc.line(1), "折り返し電話");
        assert_eq!(TextDoc::plain(b"").line_count(), 0);
        assert_eq!(TextDoc::plain(b"no newline").line(0), "no newline");
    }

    #[test]
    fn the_pretty_buffer_is_sized_exactly() {
        let pretty = pretty_json(ORDER);
        assert_eq!(pretty.capacity(), pretty.len());
    }
}
