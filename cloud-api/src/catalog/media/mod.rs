//! Event media: images and videos an organizer uploads for an event's page.
//! The bytes live in an object store (`object_store`: a local folder by
//! default, an S3-compatible bucket in production); the `media` table says
//! which event each belongs to. Images are decoded (with size limits) and get
//! a JPEG thumbnail at most [`THUMBNAIL_EDGE`] pixels on its longer side;
//! videos are checked by their container's signature and stored as sent.
//!
//! [`inspect`] is pure: it judges uploaded bytes and makes the thumbnail.
//! Media ids are random, so a link to a draft's picture cannot be guessed.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

pub use self::inspect::{Inspected, Kind, MAX_IMAGE_EDGE, MediaError, THUMBNAIL_EDGE, inspect};

use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::db::{Db, Row};
use crate::params;

mod inspect;

/// Largest upload, bytes.
pub const MAX_UPLOAD: usize = 50 * 1024 * 1024;
/// Media items per event.
pub const MAX_PER_EVENT: i64 = 50;

/// The object store media go to.
pub type MediaStore = Arc<dyn ObjectStore>;

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
    let id = crate::common::ids::random_id("m")?;
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

/// An event's media, oldest first; a draft's only to its organizer.
pub async fn list(db: &Db, viewer: &Caller, event_id: i64) -> Result<Vec<Media>, ApiError> {
    // A draft's or a cancelled event's media are its organizer's until it is published.
    let event = db.query_opt("SELECT status, organizer_id FROM events WHERE id = ?1", params![event_id]).await?;
    let Some(event) = event else { return Err(ApiError::NotFound("event")) };
    if event.text(0)? != "published" && !viewer.manages(event.int(1)?) {
        return Err(ApiError::NotFound("event"));
    }
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
