//! What the operator sees: the dashboard page, its live feed, the JSON status,
//! Prometheus metrics and the health check, with real gates connected.

use std::time::{Duration, Instant};

use tixgate_tests::venue_fixture::{BrokerChoice, VenueFixture, http_get};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn the_operator_sees_every_gate_inside_counts_and_rejections() {
    let venue = VenueFixture::new(5, &BrokerChoice::Embedded);
    venue.add_gate("north-1", "");
    venue.add_gate("south-2", "");
    venue.add_gate("spare-3", "");
    let hub = venue.start_hub();
    let http = hub.ready.as_ref().unwrap()["http"].as_str().unwrap().to_owned();
    let mut north = venue.start_gate("north-1");
    let mut south = venue.start_gate("south-2");
    for gate in [&mut north, &mut south] {
        gate.wait_for(WAIT, |l| l.contains("\"hub_link\"") && l.contains("\"online\":true"));
    }
    north.send_line(&venue.codes[0]);
    north.send_line("TX1:NOT-A-TICKET");
    south.send_line(&venue.codes[1]);
    assert_eq!(north.next_decision(WAIT)["decision"], "accept");
    assert_eq!(north.next_decision(WAIT)["reason"], "malformed");
    assert_eq!(south.next_decision(WAIT)["decision"], "accept");

    assert_eq!(http_get(&http, "/healthz", None), (200, "{\"status\":\"ok\"}".to_owned()));

    // Scans reach the hub through the outbox: wait for the metrics to show them.
    let started = Instant::now();
    let metrics = loop {
        let (code, body) = http_get(&http, "/metrics", None);
        assert_eq!(code, 200);
        if body.contains("tixgate_hub_rejections_total{reason=\"malformed\"} 1")
            && body.contains("tixgate_hub_scans_total{gate=\"north-1\"} 2")
        {
            break body;
        }
        assert!(started.elapsed() < WAIT, "metrics never showed the scans:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    for line in [
        "tixgate_hub_gates_online 2",
        "tixgate_hub_gate_up{gate=\"north-1\"} 1",
        "tixgate_hub_gate_up{gate=\"spare-3\"} 0",
        "tixgate_hub_inside{list=\"1\"} 2",
        "tixgate_hub_conflicts_total 0",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }

    let (code, body) = http_get(&http, "/api/status", None);
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let gates = status["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 3, "every enrolled gate is listed, connected or not");
    let north_view = gates.iter().find(|g| g["gate_id"] == "north-1").unwrap();
    assert_eq!((north_view["online"].as_bool(), north_view["transport"].as_str()), (Some(true), Some("mqtt")));
    assert_eq!(north_view["replica_version"], 1);
    assert_eq!(status["rejections"]["malformed"], 1);

    // The live feed pushes the same snapshot as server-sent events.
    let (code, feed) = http_get(&http, "/events", Some("south-2"));
    assert_eq!(code, 200);
    assert!(feed.contains("event: status") && feed.contains("\"gate_id\":\"north-1\""), "{feed}");

    let (code, page) = http_get(&http, "/", None);
    assert_eq!(code, 200);
    assert!(page.contains("tixgate venue hub") && page.contains("new EventSource(\"/events\")"));

    screenshot_shows_two_gates_online_and_one_offline(&http, venue.path());
}

/// Headless Chromium renders the page, runs its script and takes the live feed:
/// the screenshot must show two green "online" badges and one red "offline".
fn screenshot_shows_two_gates_online_and_one_offline(http: &str, dir: &std::path::Path) {
    let Some(chromium) = tixgate_tests::browser::chromium() else {
        eprintln!("SKIPPED the dashboard screenshot: no Chromium on this machine");
        return;
    };
    let _slot = tixgate_tests::browser::one_at_a_time();
    let shot = dir.join("dashboard.png");
    let profile = dir.join("chromium-profile");
    let out = std::process::Command::new(chromium)
        .args(tixgate_tests::browser::HEADLESS)
        .args([
            // The page keeps its event stream open, so it never finishes loading:
            // stop after 5 s (the feed pushes at once) and take the picture.
            "--timeout=5000",
            "--window-size=1200,700",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("http://{http}/"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run chromium");
    let mut chromium = out;
    let started = Instant::now();
    while chromium.try_wait().expect("chromium status").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = chromium.kill();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(shot.exists(), "chromium wrote no screenshot");
    if let Some(keep) = std::env::var_os("TIXGATE_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&shot, keep);
    }
    let image = image::open(&shot).expect("screenshot is an image").to_rgb8();
    let count = |rgb: [u8; 3]| image.pixels().filter(|p| p.0 == rgb).count();
    let (green, red) = (count([0x33, 0xcc, 0x33]), count([0xcc, 0x33, 0x33]));
    // One badge is a few hundred pixels; two green ones are about twice one red.
    assert!(red > 100, "no red offline badge rendered ({red} px)");
    assert!(green > red * 3 / 2, "expected two online badges to one offline: green {green} px, red {red} px");
}

/// The embedded broker admits enrolled gates with their own password and their
/// own client ids only: no anonymous clients, no borrowed sessions, no revoked gates.
#[test]
fn the_embedded_broker_refuses_strangers_borrowed_sessions_and_revoked_gates() {
    use rumqttc::{Client, ConnectionError, Event, MqttOptions, Packet};

    let venue = VenueFixture::new(1, &BrokerChoice::Embedded);
    venue.add_gate("north-1", "");
    venue.add_gate("south-2", "");
    let _hub = venue.start_hub();
    let venue_id = u32::try_from(venue.venue_id).unwrap();
    let (host, port) = schema::sync::parse_host_port(&venue.mqtt_address).unwrap();
    let password = |gate: &str| venue.mqtt_password(gate);
    let connects = |client_id: &str, login: Option<(&str, &str)>| -> bool {
        let mut options = MqttOptions::new(client_id, host.clone(), port);
        if let Some((user, pass)) = login {
            options.set_credentials(user, pass);
        }
        let (_client, mut connection) = Client::new(options, 10);
        for event in connection.iter().take(3) {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return ack.code == rumqttc::ConnectReturnCode::Success,
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(_)) | Err(_) => return false,
            }
        }
        false
    };
    let north = password("north-1");
    let north_id = schema::sync::mqtt_client_id(venue_id, "north-1", "in");
    let south_id = schema::sync::mqtt_client_id(venue_id, "south-2", "in");
    assert!(connects(&north_id, Some(("north-1", &north))), "the gate itself gets in");
    assert!(!connects(&north_id, None), "anonymous");
    assert!(!connects(&north_id, Some(("north-1", "guess"))), "wrong password");
    assert!(!connects(&south_id, Some(("north-1", &north))), "north's password with south's session");
    assert!(!connects("anything", Some(("ghost", "x"))), "never enrolled");
    let out =
        tixgate_tests::run("sync-hub", &["revoke-gate", "--config", "hub.toml", "--gate-id", "north-1"], venue.path());
    assert_eq!(out.code, 0, "{out:?}");
    std::thread::sleep(Duration::from_millis(1_500)); // the broker re-reads enrolments every second
    assert!(!connects(&north_id, Some(("north-1", &north))), "revoked");
}

/// A page elsewhere that points its own name at the hub (DNS rebinding) gets
/// nothing: the dashboard answers localhost, IP addresses and the names in
/// `[http] hosts` only.
#[test]
fn the_dashboard_answers_only_for_its_own_names() {
    use std::io::{Read, Write};
    let venue = VenueFixture::new(1, &BrokerChoice::Embedded);
    let mut hub_toml = std::fs::read_to_string(venue.path().join("hub.toml")).unwrap();
    hub_toml =
        hub_toml.replace("listen = \"127.0.0.1:0\"\n", "listen = \"127.0.0.1:0\"\nhosts = [\"hub.venue.lan\"]\n");
    std::fs::write(venue.path().join("hub.toml"), hub_toml).unwrap();
    let hub = venue.start_hub();
    let http = hub.ready.as_ref().unwrap()["http"].as_str().unwrap().to_owned();
    let port = http.rsplit_once(':').unwrap().1;
    let get = |path: &str, host: &str| -> String {
        let mut stream = std::net::TcpStream::connect(&http).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    for path in ["/", "/api/status", "/events", "/metrics"] {
        for host in ["attacker.example", &format!("attacker.example:{port}"), "127.0.0.1.attacker.example"] {
            let answer = get(path, host);
            assert!(answer.starts_with("HTTP/1.1 421 "), "{path} for {host}: {answer}");
            assert!(answer.contains("application/problem+json") && !answer.contains("gates"), "{answer}");
        }
    }
    for host in [http.clone(), format!("localhost:{port}"), format!("hub.venue.lan:{port}"), format!("[::1]:{port}")] {
        let answer = get("/api/status", &host);
        assert!(answer.starts_with("HTTP/1.1 200 "), "{host}: {answer}");
    }
}

/// The venue's set-up as the batch's manifest carries it: Standing tickets at
/// the main entrance onto the floor, VIP tickets at the VIP entrance into a
/// lounge for two; each gate assigned to its entrance.
const DOORS: &str = r#"{
  "ticket_types": [
    {"id": 1, "event_id": EVENT, "name": "Standing"},
    {"id": 2, "event_id": EVENT, "name": "VIP"}
  ],
  "lists": [
    {"id": 1, "name": "General", "event_id": EVENT, "ticket_types": [1], "allow_multiple_entries": false,
     "allow_entry_after_exit": true, "unknown_tickets": "reject",
     "doors": {"opens_at": null, "closes_at": null, "scan_exits": true, "area_id": 10, "entrance_ids": [1]}},
    {"id": 2, "name": "VIP", "event_id": EVENT, "ticket_types": [2], "allow_multiple_entries": false,
     "allow_entry_after_exit": true, "unknown_tickets": "reject",
     "doors": {"opens_at": null, "closes_at": null, "scan_exits": true, "area_id": 20, "entrance_ids": [2]}}
  ],
  "layout": {
    "entrances": [{"id": 1, "name": "Main"}, {"id": 2, "name": "VIP"}],
    "areas": [{"id": 10, "name": "Floor", "capacity": 100}, {"id": 20, "name": "Lounge", "capacity": 2}],
    "gates": [{"gate_id": "main-1", "entrance_id": 1, "revoked": false},
              {"gate_id": "vip-1", "entrance_id": 2, "revoked": false}]
  }
}"#;

/// Areas against their capacity and entries per minute per entrance, from
/// real gates through the hub, in the JSON status, the metrics and the page
/// as Chromium draws it.
#[test]
fn the_operator_sees_each_area_against_capacity_and_entries_per_entrance() {
    let doors = DOORS.replace("EVENT", &tixgate_tests::gate_fixture::EVENT.to_string());
    let venue = VenueFixture::with_doors(6, &BrokerChoice::Embedded, Some(&doors));
    venue.serve_manifests();
    venue.add_gate_with("main-1", "list_id = 1\n", "");
    venue.add_gate_with("vip-1", "list_id = 2\n", "");
    let hub = venue.start_hub();
    let http = hub.ready.as_ref().unwrap()["http"].as_str().unwrap().to_owned();
    let mut main = venue.start_gate("main-1");
    let mut vip = venue.start_gate("vip-1");
    for gate in [&mut main, &mut vip] {
        gate.wait_for(WAIT, |l| l.contains("\"hub_link\"") && l.contains("\"online\":true"));
    }
    // Tickets 1, 3, 5 are Standing; 2, 4, 6 VIP.
    main.send_line(&venue.codes[0]);
    assert_eq!(main.next_decision(WAIT)["decision"], "accept");
    main.send_line(&venue.codes[2]);
    assert_eq!(main.next_decision(WAIT)["decision"], "accept");
    main.send_line(&venue.codes[1]);
    let sent_on = main.next_decision(WAIT);
    assert_eq!((&sent_on["reason"], &sent_on["go_to"]), (&"other_entrance".into(), &serde_json::json!(["VIP"])));
    for code in [&venue.codes[1], &venue.codes[3]] {
        vip.send_line(code);
        assert_eq!(vip.next_decision(WAIT)["decision"], "accept");
    }
    // The VIP ticket let in at the VIP door is inside there: the main door says so.
    main.send_line(&venue.codes[1]);
    assert_eq!(main.next_decision(WAIT)["reason"], "other_entrance", "the list check comes before history");

    let started = Instant::now();
    let status = loop {
        let (code, body) = http_get(&http, "/api/status", None);
        assert_eq!(code, 200);
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        let entries: u64 = status["entrances"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["per_minute"].as_array().unwrap().iter().map(|p| p[1].as_u64().unwrap()))
            .sum();
        if entries == 4 && status["recent_refusals"].as_array().unwrap().len() == 2 {
            break status;
        }
        assert!(started.elapsed() < WAIT, "the entries never all arrived: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let areas: Vec<_> = status["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_owned(), a["inside"].as_u64().unwrap(), a["full"].as_bool().unwrap()))
        .collect();
    assert_eq!(areas, [("Floor".to_owned(), 2, false), ("Lounge".to_owned(), 2, true)]);
    let totals: Vec<_> = status["entrances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let total: u64 = e["per_minute"].as_array().unwrap().iter().map(|p| p[1].as_u64().unwrap()).sum();
            (e["entrance"].as_str().unwrap().to_owned(), total)
        })
        .collect();
    assert_eq!(totals, [("Main".to_owned(), 2), ("VIP".to_owned(), 2)]);
    let gate_entrance =
        |id: &str| status["gates"].as_array().unwrap().iter().find(|g| g["gate_id"] == id).unwrap()["entrance"].clone();
    assert_eq!((gate_entrance("main-1"), gate_entrance("vip-1")), ("Main".into(), "VIP".into()));
    // The refusals say where the person was sent, as the door display did.
    for refusal in status["recent_refusals"].as_array().unwrap() {
        let seen =
            (&refusal["gate"], &refusal["entrance"], &refusal["reason"], &refusal["ticket_type"], &refusal["go_to"]);
        assert_eq!(
            seen,
            (&"main-1".into(), &"Main".into(), &"other_entrance".into(), &"VIP".into(), &serde_json::json!(["VIP"]))
        );
    }
    assert_eq!(status["rejections"]["other_entrance"], 2);

    let (_, metrics) = http_get(&http, "/metrics", None);
    for line in [
        "tixgate_hub_area_inside{area=\"Floor\"} 2",
        "tixgate_hub_area_inside{area=\"Lounge\"} 2",
        "tixgate_hub_area_capacity{area=\"Lounge\"} 2",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    the_page_draws_the_areas_and_one_line_per_entrance(&http);
}

/// Chromium runs the page: the areas table and the plot come from the live feed.
fn the_page_draws_the_areas_and_one_line_per_entrance(http: &str) {
    let Some(chromium) = tixgate_tests::browser::chromium() else {
        eprintln!("SKIPPED the dashboard in Chromium: no Chromium on this machine");
        return;
    };
    let _slot = tixgate_tests::browser::one_at_a_time();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut browser = tixgate_tests::browser::Browser::open(chromium, &format!("http://{http}/")).await;
        browser
            .wait_for("document.querySelectorAll('#plot polyline').length === 2", Duration::from_secs(20))
            .await;
        let lines = browser
            .eval("JSON.stringify([...document.querySelectorAll('#plot polyline')].map(l => [l.dataset.entrance, l.dataset.total, l.getAttribute('points').split(' ').length]))")
            .await;
        let lines: serde_json::Value = serde_json::from_str(lines.as_str().unwrap()).unwrap();
        assert_eq!(lines, serde_json::json!([["Main", "2", 181], ["VIP", "2", 181]]), "one point per minute for 3 hours");
        let areas = browser
            .eval("JSON.stringify([...document.querySelectorAll('#areas tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent, r.cells[2].textContent, r.querySelector('.meter').className]))")
            .await;
        let areas: serde_json::Value = serde_json::from_str(areas.as_str().unwrap()).unwrap();
        assert_eq!(areas, serde_json::json!([["Floor", "2", "100", "meter"], ["Lounge", "2", "2", "meter full"]]));
        let gates = browser.eval("document.querySelector('#gates').textContent").await;
        assert!(gates.as_str().unwrap().contains("main-1Main"), "the gate's entrance is shown: {gates}");
        let refusal = browser
            .eval("JSON.stringify([...document.querySelector('#refusals tr').cells].slice(1).map(c => c.textContent))")
            .await;
        let refusal: serde_json::Value = serde_json::from_str(refusal.as_str().unwrap()).unwrap();
        assert_eq!(refusal, serde_json::json!(["main-1 (Main)", "Wrong entrance for this ticket · VIP", "VIP"]));
    });
}
