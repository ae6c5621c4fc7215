//! Event media: an organizer uploads a picture (stored in the object store
//! with a thumbnail) and a video; anyone lists and fetches them; bad files
//! are refused without leaving anything behind; the organizer deletes them.
//! Once with the local folder, once with an S3 bucket on a real S3 server
//! (moto's, started by the test).

use std::io::Cursor;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;

use cloud_api::accounts::auth::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(pictures_and_videos_are_stored_with_thumbnails);
on_both_stores!(pictures_and_videos_are_kept_in_an_s3_bucket);

/// moto's S3 server on a port of its own, with one empty bucket.
struct S3Server {
    port: u16,
    secret_dir: tempfile::TempDir,
    _process: tokio::process::Child,
}

impl S3Server {
    const BUCKET: &str = "tixgate-media";

    async fn start() -> Self {
        // The API installs the TLS provider its HTTP clients use; this client starts first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = tokio::process::Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs moto's S3 server (pip install 'moto[server]')");
        let http = reqwest::Client::new();
        let bucket = format!("http://127.0.0.1:{port}/{}", Self::BUCKET);
        let mut made = false;
        for _ in 0..150 {
            if http.put(&bucket).send().await.is_ok_and(|r| r.status().is_success()) {
                made = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(made, "moto's S3 server at port {port} is required by this test and did not start");
        let secret_dir = tempfile::tempdir().unwrap();
        std::fs::write(secret_dir.path().join("s3-secret"), "moto-secret\n").unwrap();
        Self { port, secret_dir, _process: process }
    }

    fn config(&self) -> String {
        format!(
            "[media]\ns3_bucket = \"{}\"\ns3_endpoint = \"http://127.0.0.1:{}\"\ns3_region = \"us-east-1\"\n\
             s3_access_key_id = \"moto-key\"\ns3_secret_access_key_file = \"{}\"\n",
            Self::BUCKET,
            self.port,
            self.secret_dir.path().join("s3-secret").display()
        )
    }

    /// The bucket's keys, asked of the server directly.
    async fn keys(&self) -> usize {
        let url = format!("http://127.0.0.1:{}/{}?list-type=2", self.port, Self::BUCKET);
        let listing = reqwest::get(url).await.unwrap().text().await.unwrap();
        listing.matches("<Key>").count()
    }
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x / 5) as u8, (y / 4) as u8, 180]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

async fn upload(api: &Api, token: &str, event: i64, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let resp = api
        .http
        .post(format!("{}/admin/events/{event}/media", api.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn fetch(api: &Api, path: &str) -> (StatusCode, String, Vec<u8>) {
    let resp = api.http.get(format!("{}{path}", api.base)).send().await.unwrap();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    // A browser must take the declared type at its word, never sniff another.
    assert_eq!(
        resp.headers().get("x-content-type-options").map(|v| v.as_bytes()),
        Some(b"nosniff".as_slice()),
        "{path}"
    );
    (resp.status(), content_type, resp.bytes().await.unwrap().to_vec())
}

/// Objects in the media store, whichever it is.
async fn stored_files(api: &Api) -> usize {
    api.state.media.list(None).filter(|o| std::future::ready(o.is_ok())).count().await
}

async fn pictures_and_videos_are_stored_with_thumbnails(store: Store) {
    let api = Api::start(store).await;
    round_trip(&api).await;
    assert!(api.state_dir().join("media").is_dir(), "the folder is the store");
}

async fn pictures_and_videos_are_kept_in_an_s3_bucket(store: Store) {
    let s3 = S3Server::start().await;
    let api = Api::start_with(store, &s3.config()).await;
    round_trip(&api).await;
    assert_eq!(s3.keys().await, 1, "the video is left in the bucket");
    assert!(!api.state_dir().join("media").exists(), "nothing is written to a local folder");
}

/// Refused uploads, a picture and a video stored and fetched back, a deletion.
async fn round_trip(api: &Api) {
    let (organizer, _, event, _) = api.on_sale(5, 1, None).await;
    let (_, customer) = api.user("fan@example.com", Role::Customer).await;
    let photo = jpeg(1600, 900);

    let (status, _) = upload(api, &customer, event, "image/jpeg", photo.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "customers do not upload");
    let (status, problem) = upload(api, &organizer, event, "image/png", photo.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("not a image/png file"), "{problem}");
    let (status, _) = upload(api, &organizer, event, "image/jpeg", photo[..200].to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a cut-off picture");
    let (status, _) = upload(api, &organizer, event, "text/html", b"<script>".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) =
        upload(api, &organizer, event, "video/mp4", vec![0; cloud_api::catalog::media::MAX_UPLOAD + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(stored_files(api).await, 0, "refused uploads leave nothing in the store");

    let (status, picture) = upload(api, &organizer, event, "image/jpeg", photo.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{picture}");
    assert_eq!((picture["width"].as_i64(), picture["height"].as_i64()), (Some(1600), Some(900)));
    // A whole (tiny) MP4: `ftyp`, an empty `moov`, and `mdat` with the frames.
    let mut video_bytes = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom\0\0\0\x08moov\0\0\0\x17mdat".to_vec();
    video_bytes.extend_from_slice(b"and some frames");
    // HTML behind a real `ftyp` box is no video.
    let html = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom<html><script>alert(1)</script></html>".to_vec();
    let (status, problem) = upload(api, &organizer, event, "video/mp4", html).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, video) = upload(api, &organizer, event, "video/mp4", video_bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{video}");
    assert_eq!((video["kind"].as_str(), video["thumbnail_url"].clone()), (Some("video"), Value::Null));
    assert_eq!(stored_files(api).await, 3, "picture, its thumbnail, video");

    let (status, list) = api.get(&format!("/events/{event}/media"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (status, content_type, original) = fetch(api, picture["url"].as_str().unwrap()).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "image/jpeg"));
    assert_eq!(original, photo, "the original comes back byte for byte");
    let (status, content_type, thumb) = fetch(api, picture["thumbnail_url"].as_str().unwrap()).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "image/jpeg"));
    let thumb = image::load_from_memory(&thumb).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 180));
    let (_, content_type, clip) = fetch(api, video["url"].as_str().unwrap()).await;
    assert_eq!((content_type.as_str(), clip), ("video/mp4", video_bytes));

    let path = |m: &Value| format!("/admin/media/{}", m["id"].as_str().unwrap());
    let (status, _) = api.call(reqwest::Method::DELETE, &path(&picture), Some(&customer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.call(reqwest::Method::DELETE, &path(&picture), Some(&organizer), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = fetch(api, picture["url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(stored_files(api).await, 1, "the picture and its thumbnail are gone from the store");
}
