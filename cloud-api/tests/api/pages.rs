//! The web pages' guards, over plain HTTP: a draft event and its pictures stay
//! hidden until published, form posts from other sites are refused, the
//! session cookie is Secure, and sign-in never redirects off the site.

use cloud_api::accounts::auth::Role;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(a_draft_and_its_pictures_are_hidden_until_published);
on_both_stores!(forms_are_taken_only_from_this_sites_pages);

async fn a_draft_and_its_pictures_are_hidden_until_published(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, _, _) = api.on_sale(5, 1, None).await;
    let (_, customer) = api.user("fan@example.com", Role::Customer).await;
    let (status, draft) = api
        .post(
            "/admin/events",
            Some(&organizer),
            json!({"venue_id": venue, "title": "Secret show", "description": "Not yet",
                   "starts_at": "2031-01-01T20:00:00Z", "ends_at": "2031-01-01T23:00:00Z",
                   "ticket_types": [{"name": "GA", "price_minor": 100, "currency": "EUR", "total": 5}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    let draft = draft["id"].as_i64().unwrap();
    let picture = {
        let img = image::RgbImage::from_pixel(40, 30, image::Rgb([10, 200, 30]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let upload = api
        .http
        .post(format!("{}/admin/events/{draft}/media", api.base))
        .bearer_auth(&organizer)
        .header("content-type", "image/png")
        .body(picture)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::CREATED);

    let media = format!("/events/{draft}/media");
    assert_eq!(api.get(&media, None).await.0, StatusCode::NOT_FOUND, "anyone");
    assert_eq!(api.get(&media, Some(&customer)).await.0, StatusCode::NOT_FOUND, "a customer");
    let (status, list) = api.get(&media, Some(&organizer)).await;
    assert_eq!((status, list.as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "its organizer");
    let page = api.http.get(format!("{}/e/{draft}", api.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(!page.text().await.unwrap().contains("Secret show"));

    let (status, _) = api.post(&format!("/admin/events/{draft}/publish"), Some(&organizer), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.get(&media, None).await.0, StatusCode::OK, "published");
    let page = api.http.get(format!("{}/e/{draft}", api.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Secret show"));
}

async fn forms_are_taken_only_from_this_sites_pages(store: Store) {
    let api = Api::start(store).await;
    api.user("fan@example.com", Role::Customer).await;
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let host = api.base.trim_start_matches("http://").to_owned();
    let login = |site: Option<&'static str>, origin: Option<String>, next: &'static str| {
        let mut request = http.post(format!("{}/login", api.base)).form(&[
            ("email", "fan@example.com"),
            ("password", "long enough password"),
            ("next", next),
        ]);
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };

    for (site, origin) in [
        (Some("cross-site"), None),
        (Some("same-site"), Some(format!("http://shop.{host}"))),
        (None, Some("https://evil.example".to_owned())),
    ] {
        let refused = login(site, origin, "/").await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(refused.headers().get("set-cookie").is_none(), "no session from a foreign page");
    }

    // Browsers drop a tab from a URL, so `/\t/evil.example` would lead away:
    // control characters in a form are refused before anyone reads them.
    let smuggled = login(Some("same-origin"), Some(api.base.clone()), "/\t/evil.example").await.unwrap();
    assert_eq!(smuggled.status(), StatusCode::BAD_REQUEST);
    assert!(smuggled.headers().get("set-cookie").is_none(), "no session from a refused form");
    let signed_in = login(Some("same-origin"), Some(api.base.clone()), "//evil.example").await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()["location"], "/", "never another host");
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("tixgate_session="), "{cookie}");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.split("; ").any(|part| part == flag), "{flag} in {cookie}");
    }
    let signed_in = login(None, Some(api.base.clone()), "/my/tickets").await.unwrap();
    assert_eq!(signed_in.headers()["location"], "/my/tickets", "an older browser: Origin matches Host");
}
