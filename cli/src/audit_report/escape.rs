//! The one way a string from people (names, reasons, file names, details,
//! anything a record carries) reaches the report: [`html`] for every HTML
//! context the report writes (element text, a quoted attribute value, SVG
//! `<text>` and `<title>`), [`visible`] for the terminal.
//!
//! [`html`] escapes `& < > " '`, so the same output is safe in text and in
//! a quoted attribute, and inline SVG in an HTML page is parsed by the
//! same HTML rules. The report writes no unquoted attribute, no `<script>`,
//! no `style` or URL built from such a string.
//!
//! Control characters (CR, LF, ESC, ...) are shown as escapes (`\r`),
//! as `irm admin audit tail` shows them, so a record cannot fake a line or
//! a row of its own.
//!
//! Bidirectional controls (U+202A..U+202E, U+2066..U+2069, U+200E,
//! U+200F, U+061C) are **replaced** by a visible `[U+202E]`, not passed
//! through. An entity would not help (`&#x202E;` is the same character
//! once parsed), and `<bdi>` alone isolates a string from its neighbours
//! but still lets an override reorder the string itself: `alice[U+202E]fdp.exe`
//! would read as `aliceexe.pdf`, which in an audit report is exactly the
//! kind of disguise a reader must see. Removing them silently would hide
//! that someone tried. So they are shown for what they are, and the HTML
//! renderer also wraps each person's string in `<bdi>` ([`bdi`]), so that a
//! legitimate right-to-left name (Arabic, Hebrew) stays in its own cell of
//! the reading order and does not pull the numbers beside it along.

use std::borrow::Cow;
use std::fmt::Write as _;

// Which characters are bidirectional controls is irm-core's to say: the
// key server refuses the same ones in a data owner's contact.
use irm_core::protocol::is_bidi_control;

/// `s` with control characters escaped (`\n`, `\u{1b}`) and bidirectional
/// controls shown as `[U+202E]`: safe to print on a terminal and to put
/// in a page, where it cannot reorder or break the lines around it.
pub(crate) fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_bidi_control(c) {
            let _ = write!(out, "[U+{:04X}]", u32::from(c));
        } else if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` escaped for HTML text, a quoted attribute value and SVG text alike
/// (after [`visible`]).
pub(crate) fn html(s: &str) -> String {
    let shown = visible(s);
    let mut out = String::with_capacity(shown.len() + 16);
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A person's string as HTML element text, isolated in `<bdi>`.
pub(crate) fn bdi(s: &str) -> String {
    format!("<bdi>{}</bdi>", html(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_quotes_and_ampersands_are_inert_in_text_and_attributes() {
        assert_eq!(
            html(r#"<script>alert("x")</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        );
        assert_eq!(
            html("O'Brien & \"Sons\""),
            "O&#39;Brien &amp; &quot;Sons&quot;"
        );
        assert_eq!(
            html("&amp;"),
            "&amp;amp;",
            "escaped once more, never decoded"
        );
        assert_eq!(
            html("\" onmouseover=\"x"),
            "&quot; onmouseover=&quot;x",
            "cannot leave a quoted attribute"
        );
        assert_eq!(
            html("</text><script>"),
            "&lt;/text&gt;&lt;script&gt;",
            "nor an SVG <text>"
        );
        assert_eq!(html("plain name_1.csv"), "plain name_1.csv");
    }

    #[test]
    fn line_breaks_and_controls_are_shown_not_obeyed() {
        assert_eq!(html("a\r\nb"), "a\\r\\nb");
        assert_eq!(visible("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(html("tab\there"), "tab\\there");
    }

    #[test]
    fn bidi_overrides_are_named_and_cannot_reorder_the_page() {
        assert_eq!(html("alice\u{202E}fdp.exe"), "alice[U+202E]fdp.exe");
        assert_eq!(visible("\u{2066}x\u{2069}"), "[U+2066]x[U+2069]");
        assert_eq!(visible("\u{200F}"), "[U+200F]");
        assert!(
            !html("a\u{202D}b\u{202A}c\u{061C}")
                .chars()
                .any(is_bidi_control)
        );
        // Right-to-left letters themselves are kept, isolated by <bdi>.
        assert_eq!(bdi("שלום <b>"), "<bdi>שלום &lt;b&gt;</bdi>");
        assert_eq!(visible("山田 太郎"), "山田 太郎");
    }
}
