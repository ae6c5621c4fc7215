//! Event media: images and videos an organizer uploads for an event's page.
//! The bytes live in an object store (`object_store`: a local folder by
//! default, an S3-compatible bucket in production); the `media` table says
//! which event each belongs to. Images are decoded (with size limits) and get
//! a JPEG thumbnail at most [`THUMBNAIL_EDGE`] pixels on its longer side;
//! videos are checked by their container's signature and stored as sent.
//!
//! [`inspect`] is pure: it judges uploaded bytes and makes the thumbnail.
//! Media ids are random, so a link to a draft's picture cannot be guessed.

use std::io::Cursor;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::db::{Db, Row};
use crate::error::ApiError;
use crate::params;

/// Longer side of a thumbnail, pixels.
pub const THUMBNAIL_EDGE: u32 = 320;
/// Largest upload, bytes.
pub const MAX_UPLOAD: usize = 50 * 1024 * 1024;
/// Largest image side accepted, pixels.
pub const MAX_IMAGE_EDGE: u32 = 12_000;
/// Media items per event.
pub const MAX_PER_EVENT: i64 = 50;

/// The object store media go to.
pub type MediaStore = Arc<dyn ObjectStore>;

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
    fn as_str(self) -> &'static str {
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

/// One media item of an event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Media {
    /// Id (random).
    pub id: String,
    /// Event.
    pub event_id: i64,
    /// Image or video.
    pub kind: Kind,
    /// Media type.
    pub content_type: String,
    /// Size of the original, bytes.
    pub bytes: i64,
    /// Pixels across, for images.
    pub width: Option<i64>,
    /// Pixels down, for images.
    pub height: Option<i64>,
    /// Where the original is served.
    pub url: String,
    /// Where the thumbnail is served (images).
    pub thumbnail_url: Option<String>,
}

fn original_key(event_id: i64, id: &str) -> ObjectPath {
    ObjectPath::from(format!("events/{event_id}/{id}"))
}

fn thumbnail_key(event_id: i64, id: &str) -> ObjectPath {
    ObjectPath::from(format!("events/{event_id}/{id}.thumb.jpg"))
}

fn store_error(e: object_store::Error) -> ApiError {
    ApiError::Internal(format!("media store: {e}"))
}

/// Stores an upload for an event the caller organises.
pub async fn upload(
    db: &Db,
    store: &MediaStore,
    caller: &Caller,
    event_id: i64,
    content_type: &str,
    bytes: axum::body::Bytes,
    now: i64,
) -> Result<Media, ApiError> {
    crate::catalog::require_event_organizer(db, caller, event_id).await?;
    let count = db.query_one("SELECT COUNT(*) FROM media WHERE event_id = ?1", params![event_id]).await?.int(0)?;
    if count >= MAX_PER_EVENT {
        return Err(ApiError::Conflict(format!("an event has at most {MAX_PER_EVENT} media items")));
    }
    let declared = content_type.to_owned();
    let judged = bytes.clone();
    // Decoding a large picture takes a while: off the async workers.
    let inspected = tokio::task::spawn_blocking(move || inspect(&declared, &judged))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let id = crate::inventory::new_hold_id()?.replacen("h_", "m_", 1);
    // The objects first: a row never points at nothing. A crash in between
    // leaves an object no row names, which costs space, not correctness.
    store.put(&original_key(event_id, &id), PutPayload::from(bytes.clone())).await.map_err(store_error)?;
    if let Some(thumbnail) = inspected.thumbnail {
        store.put(&thumbnail_key(event_id, &id), PutPayload::from(thumbnail)).await.map_err(store_error)?;
    }
    let (width, height) = inspected.size.map_or((None, None), |(w, h)| (Some(i64::from(w)), Some(i64::from(h))));
    db.execute(
        "INSERT INTO media (id, event_id, kind, content_type, bytes, width, height, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id.clone(),
            event_id,
            inspected.kind.as_str(),
            inspected.content_type,
            bytes.len() as i64,
            width,
            height,
            caller.id,
            now
        ],
    )
    .await?;
    get(db, &id).await
}

const COLUMNS: &str = "id, event_id, kind, content_type, bytes, width, height";

fn from_row(r: &Row) -> Result<Media, ApiError> {
    let id = r.text(0)?;
    let kind = if r.text(2)? == "video" { Kind::Video } else { Kind::Image };
    Ok(Media {
        url: format!("/media/{id}"),
        thumbnail_url: (kind == Kind::Image).then(|| format!("/media/{id}/thumbnail.jpg")),
        event_id: r.int(1)?,
        kind,
        content_type: r.text(3)?,
        bytes: r.int(4)?,
        width: r.opt_int(5)?,
        height: r.opt_int(6)?,
        id,
    })
}

/// One item.
pub async fn get(db: &Db, id: &str) -> Result<Media, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM media WHERE id = ?1");
    from_row(&db.query_opt(&sql, params![id]).await?.ok_or(ApiError::NotFound("media"))?)
}

/// An event's media, oldest first.
pub async fn list(db: &Db, event_id: i64) -> Result<Vec<Media>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM media WHERE event_id = ?1 ORDER BY created_at, id");
    db.query(&sql, params![event_id]).await?.iter().map(from_row).collect()
}

/// The original's or the thumbnail's bytes and media type.
pub async fn content(
    db: &Db,
    store: &MediaStore,
    id: &str,
    thumbnail: bool,
) -> Result<(String, axum::body::Bytes), ApiError> {
    let media = get(db, id).await?;
    let (key, content_type) = match (thumbnail, media.kind) {
        (false, _) => (original_key(media.event_id, id), media.content_type),
        (true, Kind::Image) => (thumbnail_key(media.event_id, id), "image/jpeg".to_owned()),
        (true, Kind::Video) => return Err(ApiError::NotFound("thumbnail")),
    };
    let object = store.get(&key).await.map_err(store_error)?;
    Ok((content_type, object.bytes().await.map_err(store_error)?))
}

/// Deletes an item of an event the caller organises: the row, then the objects.
pub async fn delete(db: &Db, store: &MediaStore, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let media = get(db, id).await?;
    crate::catalog::require_event_organizer(db, caller, media.event_id).await?;
    db.execute("DELETE FROM media WHERE id = ?1", params![id]).await?;
    for key in [original_key(media.event_id, id), thumbnail_key(media.event_id, id)] {
        match store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(media = id, error = %e, "media object not deleted; it is orphaned"),
        }
    }
    Ok(())
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
