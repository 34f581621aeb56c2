//! The watermark: who is looking ([`WatermarkIdentity`]: the person, the
//! grant's device, the opening date-time and the file id), tiled in
//! staggered rows over the document's content on egui's top layer. It is
//! painted every frame by `ViewerApp::show` after everything else, so no
//! window, popup or tooltip covers it; it can be hidden only when the grant
//! waives it.
//!
//! It covers the content (a table's cells, the text, the picture), which is
//! what a photo of the screen would carry off, and not the controls around
//! it (toolbar, filter box, row numbers, status bar), which stay readable.
//! Where the content is on screen is the caller's to say.

use std::time::{SystemTime, UNIX_EPOCH};

use egui::epaint::TextShape;
use egui::{Color32, Context, FontId, Id, LayerId, Order, Pos2, Rect, vec2};

/// Who is looking: drawn as the watermark over everything, and printed
/// on every page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkIdentity {
    /// The user the grant is for (the login name).
    pub user: String,
    /// The person's full name, when the client knows it. The key server's
    /// grant names only the login (`GrantResponse::user`), so today the
    /// viewer has none and the watermark shows the login alone.
    pub display_name: Option<String>,
    /// The device the grant is bound to (hex).
    pub device: String,
    /// When the file was opened ("2026-11-23 06:40 UTC").
    pub opened_at: String,
    /// The file's id.
    pub file_id: String,
    /// The grant's watermark id (`W7K2-9QXM-4HTD`, PROTOCOL.md §7.8), when
    /// the server issued one: `irm trace --watermark` names the grant from
    /// it, so a photo of the screen or the paper names the person, device
    /// and time even where the rest is cut off or blurred.
    pub watermark_id: Option<String>,
}

/// The layer the watermark is painted on (the topmost one).
pub fn layer() -> LayerId {
    LayerId::new(Order::TOP, Id::unique("irm-watermark"))
}

/// Who the watermark names: "山田 太郎 (yamada)", or the login alone when
/// the full name is not known (or is only the login again).
pub fn person(id: &WatermarkIdentity) -> String {
    match id.display_name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() && name != id.user => format!("{name} ({})", id.user),
        _ => id.user.clone(),
    }
}

/// The two lines of one tile; the watermark id, when there is one, ends
/// the second.
pub fn text(id: &WatermarkIdentity) -> String {
    let watermark_id = id
        .watermark_id
        .as_deref()
        .map(|w| format!("  ·  ID {w}"))
        .unwrap_or_default();
    format!(
        "{}  ·  {}\n{}  ·  {}{watermark_id}",
        person(id),
        id.device,
        id.opened_at,
        id.file_id
    )
}

/// Paints the tiles over `area` (the document's content) and nowhere else.
pub fn paint(ctx: &Context, id: &WatermarkIdentity, area: Rect) {
    let painter = ctx.layer_painter(layer()).with_clip_rect(area);
    let rect = area;
    let color = Color32::from_rgba_unmultiplied(128, 128, 128, 72);
    let galley = painter.layout_no_wrap(text(id), FontId::proportional(13.0), color);
    let step = vec2(galley.size().x * 0.95 + 40.0, galley.size().y + 28.0);
    // The first row just inside the top: a short list, or a few rows
    // scrolled into a small window, is still marked.
    let mut y = rect.top() + 6.0;
    let mut row = 0;
    while y < rect.bottom() {
        // Alternate rows are offset by half a tile so no column is free of text.
        let mut x = rect.left() - step.x + if row % 2 == 1 { step.x / 2.0 } else { 0.0 };
        while x < rect.right() + step.x {
            painter.add(TextShape::new(Pos2::new(x, y), galley.clone(), color));
            x += step.x;
        }
        y += step.y;
        row += 1;
    }
}

/// "2026-11-23 06:40 UTC" for `time`.
pub fn format_utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01 00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_415_100);
        assert_eq!(format_utc(t), "2026-11-23 06:25 UTC");
        let leap = UNIX_EPOCH + Duration::from_secs(951_825_600); // 2000-02-29 12:00
        assert_eq!(format_utc(leap), "2000-02-29 12:00 UTC");
    }

    #[test]
    fn the_text_names_everything() {
        let mut id = WatermarkIdentity {
            user: "yamada".into(),
            display_name: None,
            device: "00ff".into(),
            opened_at: "2026-11-23 06:40 UTC".into(),
            file_id: "abcd".into(),
            watermark_id: None,
        };
        let t = text(&id);
        for part in ["yamada", "00ff", "2026-11-23 06:40 UTC", "abcd"] {
            assert!(t.contains(part));
        }
        assert!(t.starts_with("yamada  ·  00ff"), "{t}");
        id.display_name = Some("山田 太郎".into());
        assert!(text(&id).starts_with("山田 太郎 (yamada)  ·  00ff"));
        id.watermark_id = Some("W7K2-9QXM-4HTD".into());
        assert!(
            text(&id).ends_with("abcd  ·  ID W7K2-9QXM-4HTD"),
            "{}",
            text(&id)
        );
    }

    #[test]
    fn the_person_is_the_full_name_and_login_or_the_login_alone() {
        let named = |display_name: Option<&str>| {
            person(&WatermarkIdentity {
                user: "yamada".into(),
                display_name: display_name.map(Into::into),
                device: String::new(),
                opened_at: String::new(),
                file_id: String::new(),
                watermark_id: None,
            })
        };
        assert_eq!(named(Some("山田 太郎")), "山田 太郎 (yamada)");
        assert_eq!(named(None), "yamada");
        assert_eq!(named(Some("  ")), "yamada", "a blank name says nothing");
        assert_eq!(named(Some("yamada")), "yamada", "not twice");
    }
}
