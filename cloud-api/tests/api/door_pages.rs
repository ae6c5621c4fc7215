//! The organizer's door set-up page, over plain HTTP: entrances, areas,
//! check-in lists and gates set up from its forms are what the API then
//! shows; a wrong form is refused with its reason and stores nothing; only
//! the event's organizer reaches the page; names are shown escaped.

use cloud_api::accounts::auth::Role;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(the_organizer_sets_up_the_doors_from_the_page, the_organizer_assigns_and_revokes_gates_from_the_page);

struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Browser {
    fn new(api: &Api, token: &str) -> Self {
        let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        Self { http, base: api.base.clone(), cookie: format!("tixgate_session={token}") }
    }

    async fn post(&self, path: &str, form: &[(&str, String)]) -> (StatusCode, String, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("sec-fetch-site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, location, response.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response =
            self.http.get(format!("{}{path}", self.base)).header("cookie", &self.cookie).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

async fn the_organizer_sets_up_the_doors_from_the_page(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, event, standing) = api.on_sale(100, 1, None).await;
    let page = format!("/manage/events/{event}/doors");
    let browser = Browser::new(&api, &organizer);
    let (status, html) = browser.get(&format!("/manage/events/{event}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("href=\"{page}\"")), "the event page links to its doors");

    for (path, form) in [
        (format!("/manage/events/{event}/entrances"), vec![("name", "Main".to_owned())]),
        (format!("/manage/events/{event}/entrances"), vec![("name", "<b>VIP</b>".to_owned())]),
        (format!("/manage/events/{event}/areas"), vec![("name", "Floor".to_owned()), ("capacity", "80".to_owned())]),
    ] {
        let (status, location, body) = browser.post(&path, &form).await;
        assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, page.as_str()), "{body}");
    }
    let (_, doors) = api.get(&format!("/admin/venues/{venue}/entrances"), Some(&organizer)).await;
    let vip = doors.as_array().unwrap().iter().find(|d| d["name"] == "<b>VIP</b>").unwrap()["id"].as_i64().unwrap();
    let (_, areas) = api.get(&format!("/admin/venues/{venue}/areas"), Some(&organizer)).await;
    assert_eq!((&areas[0]["name"], &areas[0]["capacity"]), (&json!("Floor"), &json!(80)));
    let floor = areas[0]["id"].as_i64().unwrap();

    // A list whose hours run backwards is refused with its reason; nothing is stored.
    let list_form = |opens: &str, closes: &str| {
        vec![
            ("name", "VIP lane".to_owned()),
            ("ticket_type_id", standing.to_string()),
            ("entrance_id", vip.to_string()),
            ("area_id", floor.to_string()),
            ("opens_at", opens.to_owned()),
            ("closes_at", closes.to_owned()),
            ("scan_exits", "1".to_owned()),
            ("allow_reentry", "1".to_owned()),
        ]
    };
    let lists = format!("/manage/events/{event}/lists");
    let (status, _, body) = browser.post(&lists, &list_form("2030-01-02T18:00", "2030-01-01T18:00")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("closes_at: after opens_at"), "{body}");
    let (status, _, body) = browser.post(&lists, &list_form("tomorrow", "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("opens_at: a date and time"), "{body}");
    let api_lists = format!("/admin/events/{event}/checkin-lists");
    assert_eq!(api.get(&api_lists, Some(&organizer)).await.1, json!([]));

    let (status, location, _) = browser.post(&lists, &list_form("2030-01-01T18:00", "2030-01-02T02:00")).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, page.as_str()));
    let (_, stored) = api.get(&api_lists, Some(&organizer)).await;
    let list = &stored[0];
    let opens = time::macros::datetime!(2030-01-01 18:00 UTC).unix_timestamp();
    assert_eq!(
        (&list["ticket_type_ids"], &list["entrance_ids"], &list["area_id"], &list["opens_at"], &list["closes_at"]),
        (&json!([standing]), &json!([vip]), &json!(floor), &json!(opens), &json!(opens + 8 * 3600))
    );
    assert_eq!(
        (&list["scan_exits"], &list["allow_reentry"], &list["allow_multiple_entries"]),
        (&json!(true), &json!(true), &json!(false))
    );

    let (status, html) = browser.get(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("VIP lane") && html.contains("exits scanned, re-entry after exit"), "{html}");
    assert!(html.contains("&lt;b&gt;VIP&lt;/b&gt;") && !html.contains("<b>VIP</b>"), "names are escaped: {html}");

    // Only the event's organizer reaches the page or its forms.
    let (_, customer) = api.user("fan@example.com", Role::Customer).await;
    let (_, rival) = api.user("rival@example.com", Role::Organizer).await;
    for token in [&customer, &rival] {
        let stranger = Browser::new(&api, token);
        assert_eq!(stranger.get(&page).await.0, StatusCode::FORBIDDEN);
        let (status, _, _) = stranger.post(&format!("/manage/lists/{}/delete", list["id"]), &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let anonymous = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let response = anonymous.get(format!("{}{page}", api.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "sent to sign in");
    assert_eq!(api.get(&api_lists, Some(&organizer)).await.1.as_array().map(Vec::len), Some(1));

    let (status, location, _) = browser.post(&format!("/manage/lists/{}/delete", list["id"]), &[]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, page.as_str()));
    assert_eq!(api.get(&api_lists, Some(&organizer)).await.1, Value::Array(Vec::new()));
    assert!(browser.get(&page).await.1.contains("No lists yet"));
}

async fn the_organizer_assigns_and_revokes_gates_from_the_page(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, event, _) = api.on_sale(100, 1, None).await;
    let page = format!("/manage/events/{event}/doors");
    let browser = Browser::new(&api, &organizer);
    let (status, html) = browser.get(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No gates yet"), "{html}");

    let (_, main) =
        api.post(&format!("/admin/venues/{venue}/entrances"), Some(&organizer), json!({"name": "Main"})).await;
    let main = main["id"].as_i64().unwrap();
    let hub = api.hub_token(&organizer, venue).await;
    let gates = json!({"gates": [{"gate_id": "main-1"}, {"gate_id": "vip-1"}]});
    let (status, _) = api.call(reqwest::Method::PUT, &format!("/venues/{venue}/gates"), Some(&hub), Some(gates)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, html) = browser.get(&page).await;
    assert!(html.contains("data-gate=\"main-1\"") && html.contains("data-gate=\"vip-1\""), "{html}");
    assert!(html.contains("<td class=\"entrance\">Door staff choose</td>"), "{html}");
    assert!(html.contains("reported by the hub"), "{html}");

    let assign = format!("/manage/events/{event}/gates");
    let revoke = format!("/manage/events/{event}/gates/revoke");
    for (path, form) in [
        (&assign, vec![("gate_id", "main-1".to_owned()), ("entrance_id", main.to_string())]),
        (&assign, vec![("gate_id", "side-3".to_owned()), ("entrance_id", String::new())]),
        (&revoke, vec![("gate_id", "vip-1".to_owned())]),
    ] {
        let (status, location, body) = browser.post(path, &form).await;
        assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, page.as_str()), "{body}");
    }
    let (_, listed) = api.get(&format!("/admin/venues/{venue}/gates"), Some(&organizer)).await;
    let rows: Vec<(&str, Value, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["gate_id"].as_str().unwrap(), g["entrance_id"].clone(), g["revoked"] == true))
        .collect();
    assert_eq!(rows, [("main-1", json!(main), false), ("side-3", Value::Null, false), ("vip-1", Value::Null, true)]);
    let (_, html) = browser.get(&page).await;
    assert!(html.contains("<td class=\"entrance\">Main</td>"), "{html}");
    assert!(html.contains(&format!("<option value=\"{main}\" selected>Main</option>")), "{html}");
    assert!(html.contains("revoked: choose its entrance again") && html.contains("Assign again"), "{html}");

    // Wrong forms are refused with their reason; nobody else reaches them.
    for (form, status, reason) in [
        (vec![("gate_id", "bad/id".to_owned())], StatusCode::BAD_REQUEST, "gate_id:"),
        (
            vec![("gate_id", "main-1".to_owned()), ("entrance_id", "999999".to_owned())],
            StatusCode::UNPROCESSABLE_ENTITY,
            "entrance_id:",
        ),
        (
            vec![("gate_id", "main-1".to_owned()), ("entrance_id", "Main".to_owned())],
            StatusCode::BAD_REQUEST,
            "entrance_id:",
        ),
    ] {
        let (got, _, body) = browser.post(&assign, &form).await;
        assert_eq!(got, status, "{body}");
        assert!(body.contains(reason), "{body}");
    }
    let (status, _, _) = browser.post(&revoke, &[("gate_id", "nobody".to_owned())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, rival) = api.user("rival@example.com", Role::Organizer).await;
    let stranger = Browser::new(&api, &rival);
    let (status, _, _) = stranger.post(&revoke, &[("gate_id", "main-1".to_owned())]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, again) = api.get(&format!("/admin/venues/{venue}/gates"), Some(&organizer)).await;
    assert_eq!(again, listed, "nothing changed");
}
