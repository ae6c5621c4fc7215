//! The venue around the door, as an organizer sets it up: entrances, areas and
//! each event's check-in lists round-trip through the API, are refused with a
//! reason when they name what is not there, and reach the hubs in the signed
//! manifest with a new version.

use cloud_api::accounts::auth::Role;
use cloud_api::venue::lists::MANIFEST_ID_BASE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Api, Store, rfc3339};
use crate::on_both_stores;

on_both_stores!(entrances_areas_and_lists_round_trip_and_reach_the_manifest, set_up_is_checked_and_owned,);

async fn created(api: &Api, token: &str, path: &str, body: Value) -> Value {
    let (status, value) = api.post(path, Some(token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {value}");
    value
}

async fn entrances_areas_and_lists_round_trip_and_reach_the_manifest(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, event, standing) = api.on_sale(100, 1, None).await;
    let vip = created(
        &api,
        &organizer,
        &format!("/admin/events/{event}/ticket-types"),
        json!({"name": "VIP", "price_minor": 9000, "currency": "EUR", "total": 10}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let hub = api.hub_token(&organizer, venue).await;
    let (_, before) = api.manifest(&hub, venue, None).await;
    assert_eq!(before.lists.len(), 1, "an event without lists has its default list");
    assert_eq!((before.lists[0].id, before.lists[0].ticket_types.as_ref()), (event as u32, None));

    let main = created(&api, &organizer, &format!("/admin/venues/{venue}/entrances"), json!({"name": " Main "})).await;
    assert_eq!(main["name"], "Main", "names are stored trimmed");
    let vip_door = created(&api, &organizer, &format!("/admin/venues/{venue}/entrances"), json!({"name": "VIP"})).await;
    let floor =
        created(&api, &organizer, &format!("/admin/venues/{venue}/areas"), json!({"name": "Floor", "capacity": 80}))
            .await;
    let lounge = created(&api, &organizer, &format!("/admin/venues/{venue}/areas"), json!({"name": "Lounge"})).await;
    assert_eq!(lounge["capacity"], Value::Null);
    let (status, doors) = api.get(&format!("/admin/venues/{venue}/entrances"), Some(&organizer)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doors, json!([main, vip_door]), "by name");
    let (_, areas) = api.get(&format!("/admin/venues/{venue}/areas"), Some(&organizer)).await;
    assert_eq!(areas, json!([floor, lounge]));

    let opens = cloud_api::common::clock::now() + 3600;
    let general = created(
        &api,
        &organizer,
        &format!("/admin/events/{event}/checkin-lists"),
        json!({"name": "General", "ticket_type_ids": [standing], "entrance_ids": [main["id"]],
               "area_id": floor["id"], "scan_exits": true, "allow_reentry": true,
               "opens_at": rfc3339(opens), "closes_at": rfc3339(opens + 6 * 3600)}),
    )
    .await;
    assert_eq!(general["manifest_id"].as_u64(), Some(u64::from(MANIFEST_ID_BASE) + general["id"].as_u64().unwrap()));
    assert_eq!(
        (&general["ticket_type_ids"], &general["entrance_ids"], &general["area_id"], &general["opens_at"]),
        (&json!([standing]), &json!([main["id"]]), &floor["id"], &json!(opens))
    );
    assert_eq!(
        (&general["scan_exits"], &general["allow_reentry"], &general["unknown_tickets"]),
        (&json!(true), &json!(true), &json!("reject"))
    );
    let vip_list = created(
        &api,
        &organizer,
        &format!("/admin/events/{event}/checkin-lists"),
        json!({"name": "VIP", "ticket_type_ids": [vip, vip], "entrance_ids": [vip_door["id"]], "area_id": lounge["id"],
               "allow_multiple_entries": true, "unknown_tickets": "accept"}),
    )
    .await;
    assert_eq!(vip_list["ticket_type_ids"], json!([vip]), "each type once");
    let (status, lists) = api.get(&format!("/admin/events/{event}/checkin-lists"), Some(&organizer)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lists, json!([general, vip_list]));

    // The hub's next manifest is newer and carries the organizer's lists
    // instead of the default one, with their rules.
    let (_, after) = api.manifest(&hub, venue, None).await;
    assert!(after.version > before.version, "{} after {}", after.version, before.version);
    let by_name = |name: &str| after.lists.iter().find(|l| l.name == name).expect(name).clone();
    assert_eq!(after.lists.len(), 2, "{:?}", after.lists);
    let (g, v) = (by_name("General"), by_name("VIP"));
    assert_eq!(
        (u64::from(g.id), g.event_id, g.ticket_types.clone()),
        (general["manifest_id"].as_u64().unwrap(), event as u64, Some(vec![standing as u32]))
    );
    assert!(g.allow_entry_after_exit && !g.allow_multiple_entries);
    let id = |v: &Value| v["id"].as_u64().unwrap() as u32;
    assert_eq!(
        (g.doors.entrance_ids.clone(), g.doors.area_id, g.doors.opens_at, g.doors.closes_at, g.doors.scan_exits),
        (vec![id(&main)], Some(id(&floor)), Some(opens as u64), Some(opens as u64 + 6 * 3600), true)
    );
    assert_eq!(
        (v.doors.entrance_ids.clone(), v.doors.area_id, v.doors.scan_exits),
        (vec![id(&vip_door)], Some(id(&lounge)), false)
    );
    let doors: Vec<(u32, &str)> = after.layout.entrances.iter().map(|e| (e.id, e.name.as_str())).collect();
    assert_eq!(doors, [(id(&main), "Main"), (id(&vip_door), "VIP")]);
    let areas: Vec<(&str, Option<u32>)> = after.layout.areas.iter().map(|a| (a.name.as_str(), a.capacity)).collect();
    assert_eq!(areas, [("Floor", Some(80)), ("Lounge", None)]);
    assert!(v.allow_multiple_entries && v.unknown_tickets == schema::entry::UnknownTicketPolicy::Accept);
    let (status, delta) = api.manifest(&hub, venue, Some(before.version)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(delta.lists, after.lists, "lists are complete in deltas too");

    // A change: the list admits both types now and opens at every entrance.
    let path = format!("/admin/checkin-lists/{}", general["id"]);
    let (status, changed) = api
        .call(
            Method::PUT,
            &path,
            Some(&organizer),
            Some(json!({"name": "General", "ticket_type_ids": [standing, vip]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (&changed["ticket_type_ids"], &changed["entrance_ids"], &changed["area_id"]),
        (&json!([standing, vip]), &json!([]), &Value::Null)
    );
    let (_, fetched) = api.get(&path, Some(&organizer)).await;
    assert_eq!(fetched, changed);
    let (_, newer) = api.manifest(&hub, venue, Some(after.version)).await;
    assert!(newer.version > after.version);
    assert_eq!(
        newer.lists.iter().find(|l| l.name == "General").and_then(|l| l.ticket_types.clone()),
        Some(vec![standing as u32, vip as u32])
    );

    // Deleting both brings the default list back.
    for list in [&general, &vip_list] {
        let (status, _) =
            api.call(Method::DELETE, &format!("/admin/checkin-lists/{}", list["id"]), Some(&organizer), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, _) = api.get(&path, Some(&organizer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, last) = api.manifest(&hub, venue, None).await;
    assert_eq!(last.lists.iter().map(|l| l.id).collect::<Vec<_>>(), [event as u32]);
}

async fn set_up_is_checked_and_owned(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, event, standing) = api.on_sale(100, 1, None).await;
    let (_, rival) = api.user("rival@example.com", Role::Organizer).await;
    let (_, customer) = api.user("ann@example.com", Role::Customer).await;
    let entrances = format!("/admin/venues/{venue}/entrances");
    let lists = format!("/admin/events/{event}/checkin-lists");
    let door = created(&api, &organizer, &entrances, json!({"name": "Main"})).await;

    // Nobody else sets up this venue or event, or reads its set-up.
    for token in [&rival, &customer] {
        let (status, _) = api.post(&entrances, Some(token), json!({"name": "Side"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api.get(&entrances, Some(token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api.post(&lists, Some(token), json!({"name": "Mine"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = api.post(&entrances, None, json!({"name": "Side"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Each wrong value is refused with the field it is about; nothing is stored.
    let (status, problem) = api.post(&entrances, Some(&organizer), json!({"name": "Main"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    for (path, body, field) in [
        (entrances.clone(), json!({"name": "  "}), "name"),
        (entrances.clone(), json!({"name": "x".repeat(101)}), "name"),
        (format!("/admin/venues/{venue}/areas"), json!({"name": "Pit", "capacity": 0}), "capacity"),
        (lists.clone(), json!({"name": "A", "ticket_type_ids": [999_999]}), "ticket_type_ids"),
        (lists.clone(), json!({"name": "A", "sections": ["Balcony"]}), "sections"),
        (lists.clone(), json!({"name": "A", "opens_at": "1900-01-01T00:00:00Z"}), "opens_at"),
        (lists.clone(), json!({"name": "A", "entrance_ids": [999_999]}), "entrance_ids"),
        (lists.clone(), json!({"name": "A", "area_id": 999_999}), "area_id"),
        (
            lists.clone(),
            json!({"name": "A", "opens_at": rfc3339(2_000_000_000), "closes_at": rfc3339(1_900_000_000)}),
            "closes_at",
        ),
    ] {
        let (status, problem) = api.post(&path, Some(&organizer), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert!(problem["detail"].as_str().unwrap().starts_with(field), "{problem}");
    }
    let (status, problem) = api.post(&lists, Some(&organizer), json!({"name": "A", "rules": "none"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown fields are refused: {problem}");
    let (_, stored) = api.get(&lists, Some(&organizer)).await;
    assert_eq!(stored, json!([]));

    // Another organizer's entrance cannot be borrowed either.
    let (status, other_venue) =
        api.post("/venues", Some(&rival), json!({"name": "Club", "address": "2 Side St", "capacity": 100})).await;
    assert_eq!(status, StatusCode::CREATED);
    let theirs =
        created(&api, &rival, &format!("/admin/venues/{}/entrances", other_venue["id"]), json!({"name": "Door"})).await;
    let (status, _) =
        api.post(&lists, Some(&organizer), json!({"name": "A", "entrance_ids": [door["id"], theirs["id"]]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let list = created(&api, &organizer, &lists, json!({"name": "A", "ticket_type_ids": [standing]})).await;
    let (status, _) = api.post(&lists, Some(&organizer), json!({"name": "A"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "one name per event");
    let path = format!("/admin/checkin-lists/{}", list["id"]);
    for token in [&rival, &customer] {
        let (status, _) = api.get(&path, Some(token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api.call(Method::DELETE, &path, Some(token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = api.get("/admin/checkin-lists/999999", Some(&organizer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, still) = api.get(&path, Some(&organizer)).await;
    assert_eq!(still, list);
}
