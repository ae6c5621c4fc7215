//! `tixgate-bench sale`: a flash sale against the real cloud API over HTTP.
//!
//! One ticket type of 1,000 tickets, 200 concurrent clients, 50,000 reserve
//! attempts, on SQLite and on PostgreSQL (127.0.0.1:5432). Reported: oversold
//! count (asserted 0), holds/s while stock lasted, latency of every attempt,
//! and, in the same run on the same store, the bare hot-row rate: one
//! conditional `UPDATE … WHERE available >= 1` per durable transaction (one
//! plain connection on SQLite, as many as the API pools on PostgreSQL). Run
//! with 1 stock row and with 8. Also what the per-request session check costs:
//! the query alone against an authenticated request that makes it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use cloud_api::accounts::auth::Role;
use cloud_api::db::{Db, StoreLocation};
use cloud_api::params;
use cloud_api::web::AppState;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TICKETS: i64 = 1_000;
const CLIENTS: usize = 200;
const ATTEMPTS: usize = 50_000;
const BARE_UPDATES: usize = 3_000;
const BARE_WORKERS: usize = 32;
const SHARDED: i64 = 8;
const SESSION_ROUNDS: usize = 1_000;
const SESSION_BLOCKS: usize = 4;

/// Runs the sale benchmark and prints its figures and JSON line.
pub fn run(only: &[String]) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut results = serde_json::Map::new();
    for store in ["sqlite", "postgres"] {
        if !only.is_empty() && !only.iter().any(|o| o == store) {
            continue;
        }
        println!("\n== {store} ==");
        let figures = runtime.block_on(measure(store))?;
        results.insert(store.into(), figures);
    }
    runtime.shutdown_background();
    println!(
        "{}",
        json!({ "bench": "sale", "tickets": TICKETS, "clients": CLIENTS, "attempts": ATTEMPTS, "stores": results })
    );
    Ok(())
}

async fn measure(store: &str) -> anyhow::Result<Value> {
    let bare = bare_hot_row(store).await?;
    println!("bare hot-row UPDATE, one durable transaction each: {bare:.0}/s");
    let session = session_check(store).await?;
    println!(
        "session check: {:.1} µs of the {:.1} µs an authenticated GET /users/me takes ({:.1}%)",
        session.check_us,
        session.request_us,
        100.0 * session.check_us / session.request_us
    );
    let one = sale(store, 1).await?;
    let sharded = sale(store, SHARDED).await?;
    let mut out = serde_json::Map::new();
    for (shards, s) in [(1, &one), (SHARDED, &sharded)] {
        println!(
            "{shards} stock row(s): {} held, oversold {}, {:.0} holds/s ({:.2}x bare), attempts p50 {:.2} ms p99 {:.2} ms, {:.0} attempts/s",
            s.held,
            s.oversold,
            s.holds_per_s,
            s.holds_per_s / bare,
            s.p50_ms,
            s.p99_ms,
            s.attempts_per_s
        );
        ensure!(s.oversold == 0, "{store}: oversold {} with {shards} stock rows", s.oversold);
    }
    for (key, value) in [
        ("oversold", json!(sharded.oversold.max(one.oversold))),
        ("holds_per_s", json!(round(sharded.holds_per_s))),
        ("p50_ms", json!(round(sharded.p50_ms))),
        ("p99_ms", json!(round(sharded.p99_ms))),
        ("bare_hot_row_per_s", json!(round(bare))),
        ("ratio", json!(round(sharded.holds_per_s / bare))),
        ("one_row_holds_per_s", json!(round(one.holds_per_s))),
        ("one_row_ratio", json!(round(one.holds_per_s / bare))),
        ("shards", json!(SHARDED)),
        ("session_check_us", json!(round(session.check_us))),
        ("authed_request_us", json!(round(session.request_us))),
        ("session_share", json!(round(session.check_us / session.request_us))),
    ] {
        out.insert(key.into(), value);
    }
    Ok(Value::Object(out))
}

fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Drops a benchmark's PostgreSQL schema (its tables go with it).
async fn drop_schema(location: &StoreLocation) -> anyhow::Result<()> {
    if let StoreLocation::Postgres(url) = location
        && let Some(schema) = url.split("search_path%3D").nth(1)
    {
        let (client, conn) = tokio_postgres::connect(POSTGRES, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await?;
    }
    Ok(())
}

/// A store location: a file in `dir`, or a fresh schema in the PostgreSQL at 127.0.0.1:5432.
async fn location(store: &str, dir: &std::path::Path) -> anyhow::Result<StoreLocation> {
    Ok(match store {
        "sqlite" => StoreLocation::Sqlite(dir.join("cloud.db")),
        _ => {
            let url = POSTGRES;
            let (client, conn) =
                tokio_postgres::connect(url, tokio_postgres::NoTls).await.context("PostgreSQL at 127.0.0.1:5432")?;
            tokio::spawn(conn);
            let mut bytes = [0u8; 6];
            getrandom::fill(&mut bytes)?;
            let schema = format!("bench_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
            client.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
            StoreLocation::Postgres(format!("{url}?options=-csearch_path%3D{schema}"))
        }
    })
}

/// One conditional decrement of one row per durable transaction: on SQLite
/// from one plain connection (SQLite has one writer; `synchronous = FULL`, no
/// grouping), on PostgreSQL from as many pooled connections as the API uses.
async fn bare_hot_row(store: &str) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let location = location(store, dir.path()).await?;
    if let StoreLocation::Sqlite(path) = &location {
        let path = path.clone();
        return tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
            let conn = rusqlite::Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.execute_batch("CREATE TABLE hot_row (id INTEGER PRIMARY KEY, available INTEGER NOT NULL)")?;
            conn.execute("INSERT INTO hot_row (id, available) VALUES (1, ?1)", [BARE_UPDATES as i64])?;
            let mut stmt =
                conn.prepare("UPDATE hot_row SET available = available - 1 WHERE id = 1 AND available >= 1")?;
            let started = Instant::now();
            let mut done = 0;
            while stmt.execute([])? == 1 {
                done += 1;
            }
            ensure!(done == BARE_UPDATES, "bare updates: {done} of {BARE_UPDATES}");
            Ok(done as f64 / started.elapsed().as_secs_f64())
        })
        .await?;
    }
    let db = Db::open(&location).await?;
    db.execute("CREATE TABLE hot_row (id BIGINT PRIMARY KEY, available BIGINT NOT NULL)", &[]).await?;
    db.execute("INSERT INTO hot_row (id, available) VALUES (1, ?1)", params![BARE_UPDATES as i64]).await?;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..BARE_WORKERS {
        let db = db.clone();
        workers.push(tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let n = db
                    .execute("UPDATE hot_row SET available = available - 1 WHERE id = 1 AND available >= 1", &[])
                    .await?;
                if n == 0 {
                    return Ok::<_, anyhow::Error>(done);
                }
                done += 1;
            }
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await??;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    drop(db);
    drop_schema(&location).await?;
    ensure!(total == BARE_UPDATES, "bare updates: {total} of {BARE_UPDATES}");
    Ok(rate)
}

struct Sale {
    held: i64,
    oversold: i64,
    holds_per_s: f64,
    attempts_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

struct SessionCost {
    /// One `sessions::is_open` on the store, alone.
    check_us: f64,
    /// One authenticated `GET /users/me` over HTTP, which includes that check.
    request_us: f64,
}

/// What checking the session costs each request: one signed-in customer asks
/// `GET /users/me` over one connection, and the same store answers the session
/// query alone, in alternating blocks so drift falls on both alike.
async fn session_check(store: &str) -> anyhow::Result<SessionCost> {
    let mut api = Api::start(store, 1).await?;
    let token = api.tokens[0].clone();
    // The user and session the server reads from the token, read the same way.
    let claims = api.state.tokens.check(&token)?;
    let (user, session) = (claims.sub.parse::<i64>()?, claims.sid.context("a customer's token names its session")?);
    let url = format!("http://{}/users/me", api.addr);
    let http = reqwest::Client::new();
    let (mut requests, mut checks) = (Duration::ZERO, Duration::ZERO);
    // The first block of each warms connections and statement caches and is not counted.
    for block in 0..=SESSION_BLOCKS {
        let started = Instant::now();
        for _ in 0..SESSION_ROUNDS {
            let resp = http.get(&url).bearer_auth(&token).send().await?;
            ensure!(resp.status() == 200, "GET /users/me answered {}", resp.status());
            resp.bytes().await?;
        }
        let request_time = started.elapsed();
        let started = Instant::now();
        for _ in 0..SESSION_ROUNDS {
            let now = cloud_api::common::clock::now();
            ensure!(
                cloud_api::accounts::sessions::is_open(&api.state.db, user, session, now).await?,
                "the session closed"
            );
        }
        if block > 0 {
            (requests, checks) = (requests + request_time, checks + started.elapsed());
        }
    }
    api.stop().await;
    api.drop_store().await?;
    let per = |total: Duration| total.as_secs_f64() * 1e6 / (SESSION_ROUNDS * SESSION_BLOCKS) as f64;
    Ok(SessionCost { check_us: per(checks), request_us: per(requests) })
}

/// The cloud API serving on a store of its own, with a published event of
/// 1,000 tickets in `shards` rows and 200 customers signed in.
struct Api {
    state: AppState,
    addr: std::net::SocketAddr,
    event: i64,
    type_id: i64,
    tokens: Vec<String>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), cloud_api::server::StartError>>,
    place: StoreLocation,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start(store: &str, shards: i64) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        cloud_api::common::keystore::generate(&dir.path().join("keys"), 0)?;
        let place = location(store, dir.path()).await?;
        let location = match &place {
            StoreLocation::Sqlite(p) => p.display().to_string(),
            StoreLocation::Postgres(url) => url.clone(),
        };
        let config_path = dir.path().join("cloud.toml");
        std::fs::write(
            &config_path,
            format!(
                "listen = \"127.0.0.1:0\"\nstore = \"{location}\"\nkeys = \"keys\"\ntoken_secret_file = \"token-secret\"\n\
                 [payments]\ntest_gateway = true\n[rate_limit]\nper_minute = 0  # every buyer is 127.0.0.1\n[fraud]\nenabled = false  # 200 buyers try 250 times each\n"
            ),
        )?;
        let config = cloud_api::config::Config::load(&config_path)?;
        let state = cloud_api::server::state(&config).await?;
        let (event, type_id, tokens) = set_up(&state, shards).await?;
        let shutdown = CancellationToken::new();
        let (ready, addr) = tokio::sync::oneshot::channel();
        let stop = shutdown.clone();
        let server = tokio::spawn(async move { cloud_api::server::run(&config, stop, Some(ready)).await });
        let addr = addr.await?;
        Ok(Self { state, addr, event, type_id, tokens, shutdown, server, place, _dir: dir })
    }

    /// Stops the server; the store stays readable through `state` until `drop_store`.
    async fn stop(&mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.server).await;
    }

    async fn drop_store(self) -> anyhow::Result<()> {
        drop(self.state);
        drop_schema(&self.place).await
    }
}

/// Starts the API on `store`, puts 1,000 tickets in `shards` rows on sale and lets 200 clients at them.
async fn sale(store: &str, shards: i64) -> anyhow::Result<Sale> {
    let mut api = Api::start(store, shards).await?;
    let (addr, event, type_id) = (api.addr, api.event, api.type_id);
    let tokens = api.tokens.clone();
    let url = Arc::new(format!("http://{addr}/events/{event}/reserve-tickets"));
    let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).timeout(Duration::from_secs(60)).build()?;
    let body = Arc::new(json!({"ticket_type_id": type_id, "quantity": 1}).to_string());
    let started = Instant::now();
    let mut clients = Vec::new();
    for token in tokens {
        let (http, url, body) = (http.clone(), Arc::clone(&url), Arc::clone(&body));
        // 50,000 split evenly over 200 clients.
        let attempts = ATTEMPTS / CLIENTS;
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(attempts);
            let mut holds = Vec::new();
            for _ in 0..attempts {
                let sent = Instant::now();
                let resp = http
                    .post(url.as_str())
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.as_str().to_owned())
                    .send()
                    .await?;
                let status = resp.status();
                resp.bytes().await?;
                latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                match status.as_u16() {
                    201 => holds.push(started.elapsed()),
                    409 => {}
                    other => anyhow::bail!("reserve answered {other}"),
                }
            }
            Ok((latencies, holds))
        }));
    }
    let (mut latencies, mut holds) = (Vec::with_capacity(ATTEMPTS), Vec::new());
    for client in clients {
        let (l, h) = client.await??;
        latencies.extend(l);
        holds.extend(h);
    }
    holds.sort();
    let held = holds.len() as i64;
    let at = |q: f64| holds.get(((holds.len().saturating_sub(1)) as f64 * q) as usize).copied().unwrap_or_default();
    println!(
        "  holds granted by {:.0} ms (half), {:.0} ms (99%), {:.0} ms (all)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    );
    let sold_out_after = at(1.0);
    let elapsed = started.elapsed();
    api.stop().await;
    // The store's own count, not just the clients'.
    let stored =
        api.state.db.query_one("SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM holds", &[]).await?.int(0)?;
    let left = api
        .state
        .db
        .query_one(
            "SELECT CAST(COALESCE(SUM(available), 0) AS BIGINT) FROM stock WHERE ticket_type_id = ?1",
            params![type_id],
        )
        .await?
        .int(0)?;
    api.drop_store().await?;
    ensure!(stored == held, "clients saw {held} holds, the store has {stored}");
    latencies.sort_by(f64::total_cmp);
    Ok(Sale {
        held,
        oversold: (stored - TICKETS).max(0) + (-left).max(0) + (stored + left - TICKETS).abs(),
        holds_per_s: held as f64 / sold_out_after.as_secs_f64().max(1e-9),
        attempts_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: crate::percentile(&latencies, 0.50),
        p99_ms: crate::percentile(&latencies, 0.99),
    })
}

/// An organizer's published event with one ticket type, and 200 customers' tokens.
async fn set_up(state: &AppState, shards: i64) -> anyhow::Result<(i64, i64, Vec<String>)> {
    let now = cloud_api::common::clock::now();
    let mut tx = state.db.begin().await?;
    let mut ids = Vec::new();
    for i in 0..=CLIENTS {
        let row = tx
            .query_one(
                "INSERT INTO users (email, password_hash, name, role, created_at) VALUES (?1, 'x', ?2, ?3, ?4) RETURNING id",
                params![format!("u{i}@bench.example"), format!("User {i}"), if i == 0 { "organizer" } else { "customer" }, now],
            )
            .await?;
        ids.push(row.int(0)?);
    }
    tx.commit().await?;
    let organizer = cloud_api::accounts::auth::Caller { id: ids[0], role: Role::Organizer, venue: None };
    let venue = cloud_api::catalog::NewVenue {
        name: "Arena".into(),
        address: "1 Bench Way".into(),
        capacity: 20_000,
        latitude: None,
        longitude: None,
        seating_map: None,
    };
    let venue = cloud_api::catalog::create_venue(&state.db, &organizer, &venue, now).await?;
    let starts = time::OffsetDateTime::from_unix_timestamp(now + 86_400)?;
    let event: cloud_api::catalog::NewEvent = serde_json::from_value(json!({
        "venue_id": venue.id, "title": "Flash sale", "starts_at": starts.format(&time::format_description::well_known::Rfc3339)?,
        "ends_at": (starts + time::Duration::hours(3)).format(&time::format_description::well_known::Rfc3339)?,
        "ticket_types": [{"name": "Standing", "price_minor": 5000, "currency": "EUR", "total": TICKETS, "shards": shards}]
    }))?;
    let event = cloud_api::catalog::create_event(&state.db, &organizer, &event, now).await?;
    cloud_api::catalog::publish_event(&state.db, &organizer, event.id).await?;
    let type_id = event.ticket_types.and_then(|t| t.first().map(|t| t.id)).context("ticket type")?;
    let mut tokens = Vec::new();
    for id in &ids[1..] {
        tokens.push(cloud_api::accounts::sessions::open(&state.db, &state.tokens, *id, Role::Customer, now).await?);
    }
    Ok((event.id, type_id, tokens))
}
