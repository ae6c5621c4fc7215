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
        // The whole container is walked, not just its magic: HTML behind an
        // `ftyp` box would otherwise pass for a video.
        let ok = match content_type {
            "video/mp4" => is_mp4(bytes),
            _ => is_webm(bytes),
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

/// An ISO base media file (MP4): boxes end to end over the whole file, with
/// printable four-character types, `ftyp` first, and a `moov` (the movie's
/// description) and media (`mdat`) among them.
fn is_mp4(bytes: &[u8]) -> bool {
    let (mut rest, mut first, mut movie, mut media) = (bytes, true, false, false);
    while !rest.is_empty() {
        let Some((kind, size)) = mp4_box(rest) else { return false };
        if first && kind != b"ftyp" {
            return false;
        }
        first = false;
        movie |= kind == b"moov";
        media |= kind == b"mdat";
        rest = &rest[size..];
    }
    movie && media
}

/// The type and whole size of the box at the start of `bytes`, if it fits.
fn mp4_box(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let size = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?);
    let kind = bytes.get(4..8)?;
    if !kind.iter().all(|b| (0x20..0x7f).contains(b)) {
        return None;
    }
    let (header, size) = match size {
        // The box runs to the end of the file.
        0 => (8, bytes.len() as u64),
        // A 64-bit size follows the type.
        1 => (16, u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?)),
        n => (8, u64::from(n)),
    };
    let size = usize::try_from(size).ok()?;
    (header <= size && size <= bytes.len()).then_some((kind, size))
}

/// EBML ids of the WebM elements looked at.
const EBML: u32 = 0x1A45_DFA3;
const DOC_TYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const TRACKS: u32 = 0x1654_AE6B;

/// A WebM file: an EBML header whose DocType is `webm`, then a Segment whose
/// elements lie within it, among them the Tracks.
fn is_webm(bytes: &[u8]) -> bool {
    let Some((EBML, header, rest)) = ebml_element(bytes) else { return false };
    let mut doc_type = None;
    let mut fields = header;
    while !fields.is_empty() {
        let Some((id, body, after)) = ebml_element(fields) else { return false };
        if id == DOC_TYPE {
            doc_type = Some(body);
        }
        fields = after;
    }
    if doc_type != Some(b"webm".as_slice()) {
        return false;
    }
    let Some((SEGMENT, mut segment, _)) = ebml_element(rest) else { return false };
    let mut tracks = false;
    while !segment.is_empty() {
        let Some((id, _, after)) = ebml_element(segment) else { return false };
        tracks |= id == TRACKS;
        segment = after;
    }
    tracks
}

/// The element at the start of `bytes`: its id, its body and what follows it.
/// An element of unknown size (a live stream's) runs to the end.
fn ebml_element(bytes: &[u8]) -> Option<(u32, &[u8], &[u8])> {
    let (id_len, _) = ebml_vint(bytes, 4)?;
    let id = bytes[..id_len].iter().fold(0u32, |id, &b| (id << 8) | u32::from(b));
    let (size_len, size) = ebml_vint(&bytes[id_len..], 8)?;
    let start = id_len + size_len;
    let end = match size {
        Some(size) => start.checked_add(usize::try_from(size).ok()?)?,
        None => bytes.len(),
    };
    Some((id, bytes.get(start..end)?, &bytes[end..]))
}

/// A variable-length EBML integer of at most `max` bytes: its length, and its
/// value without the length marker (`None` for the reserved "unknown" value).
fn ebml_vint(bytes: &[u8], max: usize) -> Option<(usize, Option<u64>)> {
    let first = *bytes.first()?;
    let len = usize::try_from(first.leading_zeros()).ok()? + 1;
    if len > max {
        return None;
    }
    let raw = bytes.get(..len)?;
    let value = raw.iter().skip(1).fold(u64::from(first) & (0xFF >> len), |v, &b| (v << 8) | u64::from(b));
    let unknown = value == (1u64 << (7 * len)) - 1;
    Some((len, (!unknown).then_some(value)))
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
        let mp4 = tiny_mp4();
        assert_eq!(inspect("video/mp4", &mp4).map(|i| (i.kind, i.thumbnail)), Ok((Kind::Video, None)));
        assert_eq!(inspect("video/webm", &mp4), Err(MediaError::Mismatch("video/webm")));
        let webm = tiny_webm();
        assert_eq!(inspect("video/webm", &webm).map(|i| i.content_type), Ok("video/webm"));
        assert_eq!(inspect("video/mp4", &webm), Err(MediaError::Mismatch("video/mp4")));
    }

    /// `ftyp`, an empty `moov` and two bytes of `mdat`.
    fn tiny_mp4() -> Vec<u8> {
        let mut mp4 = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom\0\0\0\x08moov".to_vec();
        mp4.extend_from_slice(b"\0\0\0\x0amdat\x01\x02");
        mp4
    }

    /// An EBML header naming `webm`, and a Segment holding empty Info and Tracks.
    fn tiny_webm() -> Vec<u8> {
        let mut webm = vec![0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84];
        webm.extend_from_slice(b"webm");
        webm.extend_from_slice(&[
            0x18, 0x53, 0x80, 0x67, 0x8A, 0x15, 0x49, 0xA9, 0x66, 0x80, 0x16, 0x54, 0xAE, 0x6B, 0x80,
        ]);
        webm
    }

    #[test]
    fn a_video_is_walked_to_its_end_not_judged_by_its_first_bytes() {
        // A web page behind a real `ftyp` box, or behind the EBML magic.
        let mut html_mp4 = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
        html_mp4.extend_from_slice(b"<html><script>alert(1)</script></html>");
        assert_eq!(inspect("video/mp4", &html_mp4), Err(MediaError::Mismatch("video/mp4")));
        let mut html_webm = vec![0x1A, 0x45, 0xDF, 0xA3];
        html_webm.extend_from_slice(b"<html><script>alert(1)</script></html>");
        assert_eq!(inspect("video/webm", &html_webm), Err(MediaError::Mismatch("video/webm")));
        // Cut short, a box longer than the file, no movie, no media, a Matroska
        // (not WebM) header, a Segment without Tracks.
        let mp4 = tiny_mp4();
        assert!(inspect("video/mp4", &mp4[..mp4.len() - 1]).is_err());
        let mut long = mp4.clone();
        long[3] = 0xff;
        assert!(inspect("video/mp4", &long).is_err());
        assert!(inspect("video/mp4", &mp4[..24]).is_err(), "ftyp alone");
        let mut matroska = tiny_webm();
        matroska[8..12].copy_from_slice(b"mkv ");
        assert!(inspect("video/webm", &matroska).is_err());
        let webm = tiny_webm();
        assert!(inspect("video/webm", &webm[..webm.len() - 4]).is_err());
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
