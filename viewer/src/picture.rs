//! PNG and JPEG documents: decoded in memory with the `image` crate into
//! RGBA pixels held in a zeroizing buffer until they are uploaded as an
//! egui texture, then shown scaled to fit (the watermark is painted over
//! it like over any document).
//!
//! What egui keeps: `Context::load_texture` copies the pixels into an
//! `epaint::ColorImage`, which lives only until the renderer has uploaded
//! it (the next frame) and is freed without wiping; the renderer keeps the
//! texture in GPU memory until the `TextureHandle` drops. The app drops the
//! handle when the document closes, which frees the texture.

use std::io::Cursor;
use std::sync::Mutex;

use egui::{ColorImage, TextureHandle, TextureOptions, Ui};
use image::{DynamicImage, ImageFormat, ImageReader};
use zeroize::{Zeroize, Zeroizing};

/// Pictures larger than this on either side are scaled down when decoded:
/// every GPU egui runs on takes textures this large.
pub const MAX_SIDE: u32 = 4096;

/// A decoded picture.
pub struct Picture {
    /// Width in pixels (after any scaling down).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGBA pixels, until [`Picture::texture`] uploads them.
    pixels: Mutex<Option<Zeroizing<Vec<u8>>>>,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picture")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

/// Why a picture cannot be shown.
#[derive(Debug)]
pub struct PictureError(image::ImageError);

impl std::fmt::Display for PictureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a readable PNG or JPEG picture: {}", self.0)
    }
}

impl std::error::Error for PictureError {}

impl Picture {
    /// Decodes PNG or JPEG bytes held in memory.
    pub fn decode(bytes: &[u8], format: ImageFormat) -> Result<Self, PictureError> {
        // The reader's default limits refuse images that would need more
        // than 512 MiB, so a hostile header cannot exhaust memory.
        let mut reader = ImageReader::new(Cursor::new(bytes));
        reader.set_format(format);
        let mut decoded = reader.decode().map_err(PictureError)?;
        if decoded.width() == 0 || decoded.height() == 0 {
            // Neither format allows it, and a GPU cannot hold such a texture.
            let kind = image::error::LimitErrorKind::DimensionError;
            return Err(PictureError(image::ImageError::Limits(
                image::error::LimitError::from_kind(kind),
            )));
        }
        if decoded.width() > MAX_SIDE || decoded.height() > MAX_SIDE {
            let smaller = decoded.resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Triangle);
            wipe(decoded);
            decoded = smaller;
        }
        let (width, height) = (decoded.width(), decoded.height());
        let rgba = match decoded {
            DynamicImage::ImageRgba8(buffer) => buffer.into_raw(),
            other => {
                let converted = other.to_rgba8().into_raw();
                wipe(other);
                converted
            }
        };
        Ok(Self {
            width,
            height,
            pixels: Mutex::new(Some(Zeroizing::new(rgba))),
        })
    }

    /// The texture, uploaded from the pixels on first use (the pixels are
    /// wiped then); `slot` is where the UI keeps the handle.
    pub fn texture<'a>(
        &self,
        ctx: &egui::Context,
        slot: &'a mut Option<TextureHandle>,
    ) -> Option<&'a TextureHandle> {
        if slot.is_none() {
            let pixels = self.pixels.lock().ok()?.take()?;
            let size = [self.width as usize, self.height as usize];
            let image = ColorImage::from_rgba_unmultiplied(size, &pixels);
            *slot = Some(ctx.load_texture("irm-document-picture", image, TextureOptions::LINEAR));
            // `pixels` is wiped here as it drops.
        }
        slot.as_ref()
    }

    /// Draws the picture scaled to fit the space left, centred.
    pub fn show(&self, ui: &mut Ui, slot: &mut Option<TextureHandle>) {
        let Some(texture) = self.texture(ui.ctx(), slot) else {
            return;
        };
        let available = ui.available_size();
        let size = egui::vec2(self.width as f32, self.height as f32);
        let scale = (available.x / size.x).min(available.y / size.y);
        let shown = size
            * if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                1.0
            };
        ui.centered_and_justified(|ui| {
            ui.add(egui::Image::new((texture.id(), shown)).fit_to_exact_size(shown));
        });
    }
}

/// Wipes the pixels of a decoded image we no longer need.
fn wipe(image: DynamicImage) {
    match image {
        DynamicImage::ImageLuma8(b) => b.into_raw().zeroize(),
        DynamicImage::ImageLumaA8(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgb8(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgba8(b) => b.into_raw().zeroize(),
        DynamicImage::ImageLuma16(b) => b.into_raw().zeroize(),
        DynamicImage::ImageLumaA16(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgb16(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgba16(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgb32F(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgba32F(b) => b.into_raw().zeroize(),
        // A layout added by a later `image` release: freed unwiped.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(format: ImageFormat) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(6, 4, |x, y| image::Rgb([x as u8 * 40, y as u8 * 60, 200]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn png_decodes_to_rgba() {
        let p = Picture::decode(&encoded(ImageFormat::Png), ImageFormat::Png).unwrap();
        assert_eq!((p.width, p.height), (6, 4));
        let pixels = p.pixels.lock().unwrap().take().unwrap();
        assert_eq!(pixels.len(), 6 * 4 * 4);
        // Pixel (5, 3), exactly as encoded (PNG is lossless), opaque.
        assert_eq!(&pixels[(3 * 6 + 5) * 4..][..4], &[200, 180, 200, 255]);
    }

    #[test]
    fn jpeg_decodes() {
        let p = Picture::decode(&encoded(ImageFormat::Jpeg), ImageFormat::Jpeg).unwrap();
        assert_eq!((p.width, p.height), (6, 4));
    }

    #[test]
    fn damaged_pictures_are_errors_not_panics() {
        let png = encoded(ImageFormat::Png);
        let jpeg = encoded(ImageFormat::Jpeg);
        for (bytes, format) in [
            (&png[..png.len() / 2], ImageFormat::Png),
            (&png[..8], ImageFormat::Png),
            (&b""[..], ImageFormat::Png),
            (&jpeg[..jpeg.len() / 3], ImageFormat::Jpeg),
            (&b"\xFF\xD8\xFF"[..], ImageFormat::Jpeg),
        ] {
            assert!(
                Picture::decode(bytes, format).is_err(),
                "{} bytes",
                bytes.len()
            );
        }
    }

    #[test]
    fn the_texture_takes_the_pixels_once() {
        let p = Picture::decode(&encoded(ImageFormat::Png), ImageFormat::Png).unwrap();
        let ctx = egui::Context::default();
        let mut slot = None;
        assert!(p.texture(&ctx, &mut slot).is_some());
        assert!(
            p.pixels.lock().unwrap().is_none(),
            "the pixels were wiped on upload"
        );
        assert!(p.texture(&ctx, &mut slot).is_some(), "the handle is reused");
    }
}
