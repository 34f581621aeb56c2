//! The watermark: who is looking ([`WatermarkIdentity`]: the grant's user,
//! device, the opening date-time and the file id), tiled in staggered rows over all content on egui's top layer. It is
//! painted every frame by `ViewerApp::show` after everything else, so no
//! window, popup or tooltip covers it; it can be hidden only when the grant
//! waives it.

use std::time::{SystemTime, UNIX_EPOCH};

use egui::epaint::TextShape;
use egui::{Color32, Context, FontId, Id, LayerId, Order, Pos2, vec2};

/// Who is looking: drawn as the watermark over everything, and printed
/// on every page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkIdentity {
    /// The user the grant is for.
    pub user: String,
    /// The device the grant is bound to (hex).
    pub device: String,
    /// When the file was opened ("2026-11-23 06:40 UTC").
    pub opened_at: String,
    /// The file's id.
    pub file_id: String,
}

/// The layer the watermark is painted on (the topmost one).
pub fn layer() -> LayerId {
    LayerId::new(Order::TOP, Id::unique("irm-watermark"))
}

/// The two lines of one tile.
pub fn text(id: &WatermarkIdentity) -> String {
    format!(
        "{}  ·  {}\n{}  ·  {}",
        id.user, id.device, id.opened_at, id.file_id
    )
}

/// Paints the tiles over the whole window.
pub fn paint(ctx: &Context, id: &WatermarkIdentity) {
    let painter = ctx.layer_painter(layer());
    let rect = ctx.content_rect();
    let color = Color32::from_rgba_unmultiplied(128, 128, 128, 72);
    let galley = painter.layout_no_wrap(text(id), FontId::proportional(13.0), color);
    let step = vec2(galley.size().x * 0.95 + 40.0, galley.size().y * 2.0 + 60.0);
    let mut y = rect.top() - step.y;
    let mut row = 0;
    while y < rect.bottom() + step.y {
        // Alternate rows are offset by half a tile so no column is free of text.
        let mut x = rect.left() - step.x + if row % 2 == 1 { step.x / 2.0 } else { 0.0 };
        while x < rect.right() + step.x {
            painter.add(TextShape::new(Pos2::new(x, y), galley.clone(), color));
            x += step.x;
        }
        y += step.y * 0.6;
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
        let id = WatermarkIdentity {
            user: "yamada".into(),
            device: "00ff".into(),
            opened_at: "2026-11-23 06:40 UTC".into(),
            file_id: "abcd".into(),
        };
        let t = text(&id);
        for part in ["yamada", "00ff", "2026-11-23 06:40 UTC", "abcd"] {
            assert!(t.contains(part));
        }
    }
}
