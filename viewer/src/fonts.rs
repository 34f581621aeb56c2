//! The Japanese font the viewer ships with: IPAGothic (`viewer/fonts/ipag.ttf`,
//! IPA Font License v1.0, redistributed unmodified with its license as
//! that license asks), compiled into the binary. Names, kana and
//! addresses therefore render, on screen and on paper, on a computer with
//! no Japanese font installed, and every machine draws the same glyphs (so
//! the UI snapshots are the same everywhere).
//!
//! Installing it into egui is here; printing embeds the same bytes
//! (`print.rs`). Scripts other than Latin and Japanese are left to eframe's
//! system-font fallback.

use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};

/// IPAGothic 003.03 (`ipag.ttf`, 6.2 MB), byte for byte as released
/// (SHA-256 503af4a8…a55e; Debian fonts-ipafont-gothic 00303).
pub const IPA_GOTHIC: &[u8] = include_bytes!("../fonts/ipag.ttf");

/// The IPA Font License Agreement v1.0, which must travel with the font
/// (its Article 3.2); `irm-viewer --font-license` prints it.
pub const IPA_FONT_LICENSE: &str = include_str!("../fonts/IPA_Font_License_Agreement_v1.0.txt");

/// Adds IPAGothic as the fallback of both font families, after egui's own
/// Latin fonts: runs before the first frame (eframe's creation callback,
/// or a test harness's context setup).
pub fn install(ctx: &egui::Context) {
    let families = [egui::FontFamily::Proportional, egui::FontFamily::Monospace]
        .into_iter()
        .map(|family| InsertFontFamily {
            family,
            priority: FontPriority::Lowest,
        })
        .collect();
    ctx.add_font(FontInsert::new(
        "ipag",
        egui::FontData::from_static(IPA_GOTHIC),
        families,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_font_is_the_released_ipagothic_and_has_its_license() {
        // A TrueType font (version 1.0 tag) of the released size: a
        // truncated or replaced file would be a Derived Program, which the
        // license does not let us ship under this name.
        assert_eq!(&IPA_GOTHIC[..4], &[0, 1, 0, 0]);
        assert_eq!(IPA_GOTHIC.len(), 6_235_344);
        assert!(IPA_FONT_LICENSE.contains("IPA Font License Agreement v1.0"));
        assert!(IPA_FONT_LICENSE.contains("Article 3"));
    }
}
