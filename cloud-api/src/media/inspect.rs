//! Judging an upload: are the bytes what their Content-Type says, and how big
//! is the picture; a JPEG thumbnail of it. Pure, and dependent on `image` and
//! serde alone, so the fuzz target compiles this file by itself.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// Longer side of a thumbnail, pixels.
pub const THUMBNAIL_EDGE: u32 = 320;
/// Largest image side accepted, pixels.
pub const MAX_IMAGE_EDGE: u32 = 12_000;
/// What an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A JPEG or PNG picture.
    Image,
    /// An MP4 or WebM video.
    Video,
}

impl Kind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
        }
    }
}

/// Why an upload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// Not a type we take.
    #[error("Content-Type {0:?}: send image/jpeg, image/png, video/mp4 or video/webm")]
    UnsupportedType(String),
    /// The bytes are not what the Content-Type says.
    #[error("the body is not a {0} file")]
    Mismatch(&'static str),
    /// The picture cannot be decoded.
    #[error("the picture cannot be read: {0}")]
    Undecodable(String),
    /// The picture is larger than allowed.
    #[error("the picture is {0}×{1} pixels; at most {MAX_IMAGE_EDGE} on a side")]
    TooLarge(u32, u32),
    /// Nothing was sent.
    #[error("the body is empty")]
    Empty,
}

/// An upload judged good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// Image or video.
    pub kind: Kind,
    /// Its media type.
    pub content_type: &'static str,
    /// Pixels, for images.
    pub size: Option<(u32, u32)>,
    /// JPEG thumbnail, for images.
    pub thumbnail: Option<Vec<u8>>,
}

/// Judges uploaded bytes against their declared type; makes an image's thumbnail.
pub fn inspect(declared: &str, bytes: &[u8]) -> Result<Inspected, MediaError> {
    if bytes.is_empty() {
        return Err(MediaError::Empty);
    }
    let declared = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let (kind, content_type, format) = match declared.as_str() {
        "image/jpeg" => (Kind::Image, "image/jpeg", Some(image::ImageFormat::Jpeg)),
        "image/png" => (Kind::Image, "image/png", Some(image::ImageFormat::Png)),
        "video/mp4" => (Kind::Video, "video/mp4", None),
        "video/webm" => (Kind::Video, "video/webm", None),
        _ => return Err(MediaError::UnsupportedType(declared)),
    };
    let Some(format) = format else {
        // ISO base media files open with a box whose type is `ftyp`; WebM with the EBML magic.
        let ok = match content_type {
            "video/mp4" => bytes.get(4..8) == Some(b"ftyp"),
            _ => bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]),
        };
        return if ok {
            Ok(Inspected { kind, content_type, size: None, thumbnail: None })
        } else {
            Err(MediaError::Mismatch(content_type))
        };
    };
    if image::guess_format(bytes).ok() != Some(format) {
        return Err(MediaError::Mismatch(content_type));
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader.into_dimensions().map_err(|e| MediaError::Undecodable(e.to_string()))?;
    if width > MAX_IMAGE_EDGE || height > MAX_IMAGE_EDGE {
        return Err(MediaError::TooLarge(width, height));
    }
    reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_EDGE);
    limits.max_image_height = Some(MAX_IMAGE_EDGE);
    reader.limits(limits);
    let picture = reader.decode().map_err(|e| MediaError::Undecodable(e.to_string()))?;
    // `thumbnail` also enlarges: a small picture stays as it is.
    let small = if width > THUMBNAIL_EDGE || height > THUMBNAIL_EDGE {
        picture.thumbnail(THUMBNAIL_EDGE, THUMBNAIL_EDGE).to_rgb8()
    } else {
        picture.to_rgb8()
    };
    let mut thumbnail = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumbnail, 80)
        .encode_image(&small)
        .map_err(|e| MediaError::Undecodable(e.to_string()))?;
    Ok(Inspected { kind, content_type, size: Some((width, height)), thumbnail: Some(thumbnail) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn picture(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 99]));
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img).write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_picture_gets_a_thumbnail_that_keeps_its_shape() {
        let jpeg = picture(1200, 800, image::ImageFormat::Jpeg);
        let got = inspect("image/jpeg", &jpeg).unwrap();
        assert_eq!((got.kind, got.size), (Kind::Image, Some((1200, 800))));
        let thumb = image::load_from_memory(&got.thumbnail.unwrap()).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (320, 213));
        let png = picture(100, 300, image::ImageFormat::Png);
        let got = inspect("image/png; charset=binary", &png).unwrap();
        let thumb = image::load_from_memory(&got.thumbnail.unwrap()).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (100, 300), "never enlarged");
    }

    #[test]
    fn bytes_must_be_what_their_type_says() {
        let png = picture(10, 10, image::ImageFormat::Png);
        assert_eq!(inspect("image/jpeg", &png), Err(MediaError::Mismatch("image/jpeg")));
        assert_eq!(inspect("image/gif", &png), Err(MediaError::UnsupportedType("image/gif".into())));
        assert_eq!(inspect("image/png", &[]), Err(MediaError::Empty));
        assert!(matches!(inspect("image/png", &png[..40]), Err(MediaError::Undecodable(_))));
        let mp4 = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
        assert_eq!(inspect("video/mp4", mp4).map(|i| (i.kind, i.thumbnail)), Ok((Kind::Video, None)));
        assert_eq!(inspect("video/webm", mp4), Err(MediaError::Mismatch("video/webm")));
    }

    proptest! {
        #[test]
        fn any_bytes_are_judged_without_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                                 kind in 0usize..4) {
            let declared = ["image/jpeg", "image/png", "video/mp4", "video/webm"][kind];
            let _ = inspect(declared, &bytes);
        }

        #[test]
        fn png_headers_of_any_size_are_judged_without_a_panic(width in 2u32..100_000, height in 2u32..100_000) {
            // A real signature and header with a claimed size and no pixels.
            let mut png = picture(1, 1, image::ImageFormat::Png);
            png[16..20].copy_from_slice(&width.to_be_bytes());
            png[20..24].copy_from_slice(&height.to_be_bytes());
            prop_assert!(inspect("image/png", &png).is_err());
        }
    }
}
