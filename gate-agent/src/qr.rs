//! Finds and decodes a QR code in a greyscale frame or an image file.
//!
//! The decoder is rxing (pure Rust ZXing, with its port of zxing-cpp's QR reader):
//! on the 179 real photos of `tests/data/qr-photos` it reads 92% where rqrr
//! reads 56% and can panic (see ARCHITECTURE.md). A frame is tried three ways,
//! first hit wins: the hybrid (local) binariser; a global histogram binariser;
//! then a sharpened copy (upscaled 2x first when small), which rescues most
//! defocused codes: on the synthetic set it lifts the read rate from 72% to 96%.
//!
//! Free of the crate's other modules: the fuzz targets compile this file by path.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use image::{ImageReader, Limits};
use rxing::common::{GlobalHistogramBinarizer, HybridBinarizer};
use rxing::{BarcodeFormat, Binarizer, BinaryBitmap, DecodeHints, Luma8Source, MultiFormatReader, Reader};

/// Largest image accepted from a file, per side.
pub const MAX_IMAGE_SIDE: u32 = 8_192;
/// Largest image file read.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Memory the image decoder may allocate for one file.
const MAX_IMAGE_ALLOC: u64 = 256 << 20;

/// Why no text came out of an image.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not a PNG/JPEG the decoder can read, or is too large.
    #[error("cannot decode image {path}: {source}")]
    Image {
        /// The file.
        path: String,
        /// What went wrong.
        source: image::ImageError,
    },
    /// The frame's buffer does not match its stated size.
    #[error("frame of {len} bytes does not match {width}x{height}")]
    BadFrame {
        /// Buffer length.
        len: usize,
        /// Stated width.
        width: u32,
        /// Stated height.
        height: u32,
    },
    /// No QR code found, or none could be read.
    #[error("no QR code found")]
    NotFound,
    /// The decoder failed internally (a bug in it); the frame is skipped.
    #[error("QR decoder fault: {0}")]
    DecoderFault(String),
}

/// A greyscale image: one byte per pixel, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LumaFrame {
    /// Pixels, `width * height` of them.
    pub pixels: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl LumaFrame {
    /// A frame, checking the buffer matches the size.
    pub fn new(pixels: Vec<u8>, width: u32, height: u32) -> Result<Self, QrError> {
        let expected = u64::from(width) * u64::from(height);
        if width == 0 || height == 0 || pixels.len() as u64 != expected {
            return Err(QrError::BadFrame { len: pixels.len(), width, height });
        }
        Ok(Self { pixels, width, height })
    }

    /// Loads a PNG or JPEG file as greyscale, with size and memory limits.
    pub fn load(path: &Path) -> Result<Self, QrError> {
        let shown = path.display().to_string();
        let size = std::fs::metadata(path).map_err(|source| QrError::Read { path: shown.clone(), source })?.len();
        if size > MAX_FILE_BYTES {
            let source = std::io::Error::other(format!("{size} bytes is more than the {MAX_FILE_BYTES} allowed"));
            return Err(QrError::Read { path: shown, source });
        }
        let bytes = std::fs::read(path).map_err(|source| QrError::Read { path: shown.clone(), source })?;
        Self::from_encoded(&bytes).map_err(|source| QrError::Image { path: shown, source })
    }

    /// Decodes PNG or JPEG bytes as greyscale, with size and memory limits.
    pub fn from_encoded(bytes: &[u8]) -> Result<Self, image::ImageError> {
        let mut reader = ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_IMAGE_SIDE);
        limits.max_image_height = Some(MAX_IMAGE_SIDE);
        limits.max_alloc = Some(MAX_IMAGE_ALLOC);
        reader.limits(limits);
        let luma = reader.decode()?.into_luma8();
        let (width, height) = luma.dimensions();
        Ok(Self { pixels: luma.into_raw(), width, height })
    }
}

/// Reads QR codes out of frames. Keeps its hints between frames.
pub struct QrReader {
    hints: DecodeHints,
}

impl Default for QrReader {
    fn default() -> Self {
        let hints = DecodeHints {
            PossibleFormats: Some(HashSet::from([BarcodeFormat::QR_CODE])),
            TryHarder: Some(true),
            ..DecodeHints::default()
        };
        Self { hints }
    }
}

impl QrReader {
    /// The text of the first QR code found in the frame.
    pub fn decode(&self, frame: &LumaFrame) -> Result<String, QrError> {
        // rxing is a large port; a panic inside it must cost one frame, never the
        // scanner loop, so it is contained here and reported as a fault.
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            self.try_with(frame, HybridBinarizer::new)
                .or_else(|| self.try_with(frame, GlobalHistogramBinarizer::new))
                .or_else(|| self.try_with(&sharpened(frame), HybridBinarizer::new))
        }));
        match attempt {
            Ok(Some(text)) => Ok(text),
            Ok(None) => Err(QrError::NotFound),
            Err(panic) => Err(QrError::DecoderFault(panic_message(&panic))),
        }
    }

    fn try_with<'a, B, F>(&self, frame: &'a LumaFrame, binarizer: F) -> Option<String>
    where
        B: Binarizer<Source = Luma8Source<'a>>,
        F: FnOnce(Luma8Source<'a>) -> B,
    {
        let source = Luma8Source::new_with_slice(&frame.pixels, frame.width, frame.height).ok()?;
        let mut bitmap = BinaryBitmap::new(binarizer(source));
        let mut reader = MultiFormatReader::default();
        reader.decode_with_hints(&mut bitmap, &self.hints).ok().map(|result| result.getText().to_owned())
    }
}

/// Frames up to this many pixels are upscaled 2x before sharpening.
const UPSCALE_MAX_PIXELS: u64 = 640 * 480;

/// An unsharp-masked copy (p + 1.5·(p − blur(p))), upscaled 2x first if small:
/// the sampler then has more pixels per module to work with.
fn sharpened(frame: &LumaFrame) -> LumaFrame {
    let Some(image) = image::GrayImage::from_raw(frame.width, frame.height, frame.pixels.clone()) else {
        return frame.clone();
    };
    let small = u64::from(frame.width) * u64::from(frame.height) <= UPSCALE_MAX_PIXELS;
    let (image, sigma) = if small {
        let (w, h) = (frame.width * 2, frame.height * 2);
        (image::imageops::resize(&image, w, h, image::imageops::FilterType::Triangle), 4.0)
    } else {
        (image, 2.0)
    };
    let blurred = image::imageops::blur(&image, sigma);
    let (width, height) = image.dimensions();
    let pixels = image
        .as_raw()
        .iter()
        .zip(blurred.as_raw())
        .map(|(&p, &b)| {
            let (p, b) = (f32::from(p), f32::from(b));
            (p + 1.5 * (p - b)).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    LumaFrame { pixels, width, height }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Loads an image file and decodes the first QR code in it.
pub fn decode_file(path: &Path) -> Result<String, QrError> {
    QrReader::default().decode(&LumaFrame::load(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_with_wrong_sizes_are_refused() {
        assert!(matches!(LumaFrame::new(vec![0; 10], 3, 3), Err(QrError::BadFrame { .. })));
        assert!(matches!(LumaFrame::new(vec![], 0, 0), Err(QrError::BadFrame { .. })));
    }

    #[test]
    fn blank_and_noise_frames_have_no_code() {
        let reader = QrReader::default();
        let blank = LumaFrame::new(vec![255; 64 * 48], 64, 48).expect("frame");
        assert!(matches!(reader.decode(&blank), Err(QrError::NotFound)));
        let noise: Vec<u8> = (0..640u32 * 480).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let noise = LumaFrame::new(noise, 640, 480).expect("frame");
        assert!(reader.decode(&noise).is_err());
    }
}
