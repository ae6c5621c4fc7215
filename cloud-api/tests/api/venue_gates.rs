//! The venue's gates in the cloud: the hub reports its gates, the organizer
//! assigns them to entrances or revokes them, and the signed manifest carries
//! each set-up gate to the hub with a new version. A revocation is the
//! organizer's: a report never lifts it, only a new assignment does. Wrong
//! input is refused with a problem document and changes nothing; only the
//! venue's organizer sets gates up, only its hub reports them.

use cloud_api::accounts::auth::Role;
use reqwest::{Method, StatusCode};
use schema::manifest::GateRecord;
use serde_json::{Value, json};

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(
    reported_gates_are_assigned_and_revoked_and_reach_the_manifest,
    a_revocation_stands_until_the_organizer_assigns_the_gate_again,
    wrong_gate_input_is_refused_and_changes_nothing,
    only_the_venues_organizer_and_hub_reach_its_gates,
    migration_15_gives_every_venue_a_new_manifest,
);

async fn entrance(api: &Api, organizer: &str, venue: i64, name: &str) -> i64 {
    let (status, e) =
        api.post(&format!("/admin/venues/{venue}/entrances"), Some(organizer), json!({"name": name})).await;
    assert_eq!(status, StatusCode::CREATED, "{e}");
    e["id"].as_i64().unwrap()
}

async fn report(api: &Api, hub: &str, venue: i64, gates: Value) -> (StatusCode, Value) {
    api.call(Method::PUT, &format!("/venues/{venue}/gates"), Some(hub), Some(json!({ "gates": gates }))).await
}

async fn assign(api: &Api, token: &str, venue: i64, gate: &str, entrance: Option<i64>) -> (StatusCode, Value) {
    let path = format!("/admin/venues/{venue}/gates/{gate}");
    api.call(Method::PUT, &path, Some(token), Some(json!({ "entrance_id": entrance }))).await
}

async fn revoke(api: &Api, token: &str, venue: i64, gate: &str) -> StatusCode {
    api.call(Method::DELETE, &format!("/admin/venues/{venue}/gates/{gate}"), Some(token), None).await.0
}

async fn listed(api: &Api, organizer: &str, venue: i64) -> Value {
    let (status, gates) = api.get(&format!("/admin/venues/{venue}/gates"), Some(organizer)).await;
    assert_eq!(status, StatusCode::OK, "{gates}");
    gates
}

fn gate(id: &str, entrance_id: Option<i64>, revoked: bool) -> GateRecord {
    GateRecord { gate_id: id.into(), entrance_id: entrance_id.map(|e| e as u32), revoked }
}

async fn reported_gates_are_assigned_and_revoked_and_reach_the_manifest(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, _, _) = api.on_sale(10, 1, None).await;
    let main = entrance(&api, &organizer, venue, "Main").await;
    let vip = entrance(&api, &organizer, venue, "VIP").await;
    let hub = api.hub_token(&organizer, venue).await;
    let (_, before) = api.manifest(&hub, venue, None).await;
    assert!(before.layout.gates.is_empty());

    let (status, reported) =
        report(&api, &hub, venue, json!([{"gate_id": "vip-1", "revoked": false}, {"gate_id": "main-1"}])).await;
    assert_eq!(status, StatusCode::OK, "{reported}");
    let ids: Vec<&str> = reported.as_array().unwrap().iter().map(|g| g["gate_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["main-1", "vip-1"], "by gate id");
    for g in reported.as_array().unwrap() {
        assert_eq!((&g["entrance_id"], &g["revoked"]), (&Value::Null, &json!(false)));
        assert!(g["reported_at"].as_i64().is_some(), "{g}");
    }
    assert_eq!(listed(&api, &organizer, venue).await, reported);
    let (_, unchanged) = api.manifest(&hub, venue, None).await;
    assert_eq!(unchanged.version, before.version, "a report that revokes nothing leaves the manifest");

    let (status, set) = assign(&api, &organizer, venue, "main-1", Some(main)).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!((&set["entrance_id"], &set["entrance_name"]), (&json!(main), &json!("Main")));
    // A gate the hub has not reported yet can be set up ahead of it.
    let (status, ahead) = assign(&api, &organizer, venue, "side_2", Some(vip)).await;
    assert_eq!(status, StatusCode::OK, "{ahead}");
    assert_eq!(ahead["reported_at"], Value::Null);

    let (_, assigned) = api.manifest(&hub, venue, None).await;
    assert!(assigned.version > before.version, "{} after {}", assigned.version, before.version);
    let (status, same) = assign(&api, &organizer, venue, "main-1", Some(main)).await;
    assert_eq!((status, &same["entrance_id"]), (StatusCode::OK, &json!(main)));
    assert_eq!(api.manifest(&hub, venue, None).await.1.version, assigned.version, "the same assignment is no change");
    assert_eq!(assigned.layout.gates, [gate("main-1", Some(main), false), gate("side_2", Some(vip), false)]);
    let door = assigned.layout.gate("main-1").and_then(|g| assigned.layout.entrance(g.entrance_id?));
    assert_eq!(door.map(|e| e.name.as_str()), Some("Main"), "the gate resolves its entrance");
    let (_, delta) = api.manifest(&hub, venue, Some(before.version)).await;
    assert_eq!(delta.layout.gates, assigned.layout.gates, "deltas carry the whole layout");

    // Back to door staff's choice: out of the manifest, still listed.
    let (status, cleared) = assign(&api, &organizer, venue, "side_2", None).await;
    assert_eq!((status, &cleared["entrance_id"]), (StatusCode::OK, &Value::Null));
    assert_eq!(revoke(&api, &organizer, venue, "vip-1").await, StatusCode::NO_CONTENT);
    let (_, revoked) = api.manifest(&hub, venue, None).await;
    assert!(revoked.version > assigned.version);
    assert_eq!(revoked.layout.gates, [gate("main-1", Some(main), false), gate("vip-1", None, true)]);
    let gates = listed(&api, &organizer, venue).await;
    let states: Vec<(&str, bool)> =
        gates.as_array().unwrap().iter().map(|g| (g["gate_id"].as_str().unwrap(), g["revoked"] == true)).collect();
    assert_eq!(states, [("main-1", false), ("side_2", false), ("vip-1", true)]);

    // Revoking again changes nothing; an unknown gate is not there to revoke.
    assert_eq!(revoke(&api, &organizer, venue, "vip-1").await, StatusCode::NO_CONTENT);
    assert_eq!(api.manifest(&hub, venue, None).await.1.version, revoked.version);
    assert_eq!(revoke(&api, &organizer, venue, "nobody").await, StatusCode::NOT_FOUND);
}

async fn a_revocation_stands_until_the_organizer_assigns_the_gate_again(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, _, _) = api.on_sale(10, 1, None).await;
    let main = entrance(&api, &organizer, venue, "Main").await;
    let hub = api.hub_token(&organizer, venue).await;
    report(&api, &hub, venue, json!([{"gate_id": "north-1"}, {"gate_id": "north-2"}])).await;
    assign(&api, &organizer, venue, "north-1", Some(main)).await;
    assert_eq!(revoke(&api, &organizer, venue, "north-1").await, StatusCode::NO_CONTENT);
    let (_, revoked) = api.manifest(&hub, venue, None).await;

    // The hub, which has not applied the revocation yet, reports the gate live.
    let (status, gates) = report(&api, &hub, venue, json!([{"gate_id": "north-1", "revoked": false}])).await;
    assert_eq!((status, &gates[0]["revoked"]), (StatusCode::OK, &json!(true)), "{gates}");
    let (_, still) = api.manifest(&hub, venue, None).await;
    assert_eq!(still.version, revoked.version, "nothing changed");
    assert_eq!(still.layout.gate("north-1"), Some(&gate("north-1", Some(main), true)));

    // A gate the hub revoked itself is shown so, but the manifest does not
    // revoke it: the operator may enrol it again at the hub.
    let (_, gates) = report(&api, &hub, venue, json!([{"gate_id": "north-2", "revoked": true}])).await;
    assert_eq!((&gates[1]["revoked"], &gates[1]["revoked_at_hub"]), (&json!(false), &json!(true)), "{gates}");
    let (_, spare) = api.manifest(&hub, venue, None).await;
    assert_eq!(spare.version, still.version, "a report changes no manifest");
    assert_eq!(spare.layout.gate("north-2"), None);
    // Enrolled again there: the next report says so.
    let (_, gates) = report(&api, &hub, venue, json!([{"gate_id": "north-2", "revoked": false}])).await;
    assert_eq!(gates[1]["revoked_at_hub"], json!(false), "{gates}");

    // Assigning it again lets it back in.
    let (status, back) = assign(&api, &organizer, venue, "north-1", Some(main)).await;
    assert_eq!((status, &back["revoked"]), (StatusCode::OK, &json!(false)));
    let (_, again) = api.manifest(&hub, venue, None).await;
    assert!(again.version > spare.version);
    assert_eq!(again.layout.gate("north-1"), Some(&gate("north-1", Some(main), false)));
}

async fn wrong_gate_input_is_refused_and_changes_nothing(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, _, _) = api.on_sale(10, 1, None).await;
    let main = entrance(&api, &organizer, venue, "Main").await;
    let hub = api.hub_token(&organizer, venue).await;
    report(&api, &hub, venue, json!([{"gate_id": "main-1"}])).await;
    let (_, rival) = api.user("rival@example.com", Role::Organizer).await;
    let (_, club) =
        api.post("/venues", Some(&rival), json!({"name": "Club", "address": "2 Side St", "capacity": 9})).await;
    let theirs = entrance(&api, &rival, club["id"].as_i64().unwrap(), "Door").await;
    let gates_before = listed(&api, &organizer, venue).await;
    let (_, before) = api.manifest(&hub, venue, None).await;

    let too_many: Vec<Value> = (0..1001).map(|i| json!({"gate_id": format!("g{i}")})).collect();
    let path = format!("/venues/{venue}/gates");
    for (body, field) in [
        (json!({"gates": [{"gate_id": "a/b"}]}), "gates.gate_id"),
        (json!({"gates": [{"gate_id": ""}]}), "gates.gate_id"),
        (json!({"gates": [{"gate_id": "x".repeat(33)}]}), "gates.gate_id"),
        (json!({"gates": [{"gate_id": "café"}]}), "gates.gate_id"),
        (json!({"gates": [{"gate_id": "a"}, {"gate_id": "a", "revoked": true}]}), "gates"),
        (json!({"gates": too_many}), "gates"),
        (json!({"gates": [{"gate_id": "a", "entrance_id": 1}]}), "body"),
        (json!({"gates": [], "hub": "x"}), "body"),
        (json!({"gates": [{"gate_id": 7}]}), "body"),
        (json!({}), "body"),
    ] {
        let (status, problem) = api.call(Method::PUT, &path, Some(&hub), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert!(problem["detail"].as_str().unwrap().starts_with(field), "{field}: {problem}");
    }

    for (gate, body, status, field) in [
        ("main-1", json!({"entrance_id": 999_999}), StatusCode::UNPROCESSABLE_ENTITY, "entrance_id"),
        ("main-1", json!({"entrance_id": theirs}), StatusCode::UNPROCESSABLE_ENTITY, "entrance_id"),
        ("bad.id", json!({"entrance_id": main}), StatusCode::BAD_REQUEST, "gate_id"),
        (&"x".repeat(33), json!({"entrance_id": main}), StatusCode::BAD_REQUEST, "gate_id"),
        ("caf%C3%A9", json!({"entrance_id": main}), StatusCode::BAD_REQUEST, "gate_id"),
        ("main-1", json!({"entrance_id": main, "revoked": false}), StatusCode::BAD_REQUEST, "body"),
        ("main-1", json!({}), StatusCode::BAD_REQUEST, "body"),
        ("main-1", json!({"entrance_id": "Main"}), StatusCode::BAD_REQUEST, "body"),
        ("main-1", json!({"entrance_id": -1}), StatusCode::UNPROCESSABLE_ENTITY, "entrance_id"),
    ] {
        let path = format!("/admin/venues/{venue}/gates/{gate}");
        let (got, problem) = api.call(Method::PUT, &path, Some(&organizer), Some(body)).await;
        assert_eq!(got, status, "{gate}: {problem}");
        assert!(problem["detail"].as_str().unwrap().starts_with(field), "{field}: {problem}");
    }
    let (status, problem) =
        api.call(Method::DELETE, &format!("/admin/venues/{venue}/gates/a.b"), Some(&organizer), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, _) = api.get(&format!("/admin/venues/{venue}/gates/main-1"), Some(&organizer)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(listed(&api, &organizer, venue).await, gates_before, "nothing was stored");
    assert_eq!(api.manifest(&hub, venue, None).await.1.version, before.version, "nor bumped");
}

async fn only_the_venues_organizer_and_hub_reach_its_gates(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, _, _) = api.on_sale(10, 1, None).await;
    let main = entrance(&api, &organizer, venue, "Main").await;
    let hub = api.hub_token(&organizer, venue).await;
    report(&api, &hub, venue, json!([{"gate_id": "main-1"}])).await;
    let (_, rival) = api.user("rival@example.com", Role::Organizer).await;
    let (_, customer) = api.user("fan@example.com", Role::Customer).await;
    let (_, club) =
        api.post("/venues", Some(&rival), json!({"name": "Club", "address": "2 Side St", "capacity": 9})).await;
    let rival_hub = api.hub_token(&rival, club["id"].as_i64().unwrap()).await;
    let (_, before) = api.manifest(&hub, venue, None).await;

    // The hub reports, but does not set up; nor does anyone but the organizer.
    for token in [&hub, &rival, &customer, &rival_hub] {
        let (status, problem) = assign(&api, token, venue, "main-1", Some(main)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        assert_eq!(revoke(&api, token, venue, "main-1").await, StatusCode::FORBIDDEN);
        let (status, _) = api.get(&format!("/admin/venues/{venue}/gates"), Some(token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // Only this venue's hub (or its organizer) reports its gates.
    for token in [&rival, &customer, &rival_hub] {
        let (status, problem) = report(&api, token, venue, json!([{"gate_id": "intruder", "revoked": true}])).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    }
    let (status, _) = report(&api, &organizer, venue, json!([])).await;
    assert_eq!(status, StatusCode::OK);
    let path = format!("/admin/venues/{venue}/gates/main-1");
    for token in [None, Some("not-a-jwt")] {
        let (status, _) = api.call(Method::PUT, &path, token, Some(json!({"entrance_id": main}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = assign(&api, &organizer, 999_999, "main-1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let gates = listed(&api, &organizer, venue).await;
    assert_eq!(gates.as_array().map(Vec::len), Some(1), "{gates}");
    assert_eq!((&gates[0]["entrance_id"], &gates[0]["revoked"]), (&Value::Null, &json!(false)));
    assert_eq!(api.manifest(&hub, venue, None).await.1.version, before.version);
}

async fn migration_15_gives_every_venue_a_new_manifest(store: Store) {
    let api = Api::start(store).await;
    let (organizer, venue, _, _) = api.on_sale(10, 1, None).await;
    let hub = api.hub_token(&organizer, venue).await;
    let (_, before) = api.manifest(&hub, venue, None).await;
    // Back to the schema before migration 15, then a server starts on it.
    let db = &api.state.db;
    db.execute("DROP TABLE venue_gates", &[]).await.unwrap();
    db.execute("DELETE FROM schema_migrations WHERE version = 15", &[]).await.unwrap();
    let _twin = api.twin().await;
    let (_, after) = api.manifest(&hub, venue, None).await;
    assert_eq!(after.version, before.version + 1, "hubs fetch a snapshot in the new format");
    let (status, _) = report(&api, &hub, venue, json!([{"gate_id": "main-1"}])).await;
    assert_eq!(status, StatusCode::OK, "the table is back");
}
