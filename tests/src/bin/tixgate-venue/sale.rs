//! The cloud's side of the night: `cloud-api serve` on SQLite, an organizer who
//! sets up the venue (a main and a VIP entrance, the floor and the lounge, the
//! gates at each entrance), tonight's and tomorrow's shows with their check-in
//! lists, customers who buy through the API with the test gateway, refunds,
//! and the hub's device token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use serde_json::{Value, json};
use tixgate_tests::venue_fixture::{Daemon, free_port};
use tixgate_tests::{binary, run};
use tokio::task::JoinSet;

/// Customers' password (the demo's accounts live in a temp dir).
const PASSWORD: &str = "correct horse battery";
/// Customers buying at once.
const BUYERS_AT_ONCE: usize = 8;
/// Tickets per order (the ticket types' per-order limit).
const PER_ORDER: i64 = 10;
/// The organizer's login.
const ORGANIZER: &str = "olga@venue.example";
/// The entrances' names.
pub const MAIN: &str = "Main";
pub const VIP: &str = "VIP";
/// People the lounge may hold.
pub const LOUNGE_CAPACITY: i64 = 60;
/// Customer accounts.
const CUSTOMERS: usize = 60;
const FIRST: [&str; 12] =
    ["Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Ken", "Frances", "Dennis", "Radia", "John", "Hedy"];
const LAST: [&str; 5] = ["Lovelace", "Hopper", "Turing", "Johnson", "Liskov"];

/// A ticket as the customer holds it.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// Ticket id.
    pub id: i64,
    /// The order it was bought in.
    pub order_id: i64,
    /// The show it is for.
    pub event_id: i64,
    /// Its type.
    pub type_id: i64,
    /// What its QR code holds.
    pub barcode: String,
    /// The customer's access token (to download the QR image).
    pub owner_token: String,
}

/// What the night needs from the cloud.
pub struct Sold {
    /// The venue (the hub's venue id).
    pub venue_id: i64,
    /// Tonight's show: the gates' check-in list.
    pub tonight: i64,
    /// Standing tickets for tonight, refunded ones included.
    pub tonight_tickets: Vec<Ticket>,
    /// VIP tickets for tonight: the VIP entrance, into the lounge.
    pub vip_tickets: Vec<Ticket>,
    /// Tickets for tomorrow's show.
    pub tomorrow_tickets: Vec<Ticket>,
    /// Orders refunded before the doors open.
    pub refunded_orders: Vec<i64>,
    /// The hub's device token.
    pub hub_token: String,
}

/// The running cloud API.
pub struct Cloud {
    /// Its process (the cloud's log goes to `cloud.log`).
    _daemon: Daemon,
    /// Its API.
    pub api: Api,
    /// Its SQLite store, read at the end to count what arrived.
    pub store: PathBuf,
}

/// Generates the issuer keys, writes `cloud.toml`, adds the organizer and
/// starts `cloud-api serve` in `dir`.
pub fn start(dir: &Path) -> anyhow::Result<Cloud> {
    let keys = run("cloud-api", &["keys", "generate", "--dir", "keys"], dir);
    if keys.code != 0 {
        bail!("cloud-api keys generate: {}", keys.stderr);
    }
    let port = free_port();
    std::fs::write(
        dir.join("cloud.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"cloud.db\"\nkeys = \"keys\"\ntoken_secret_file = \"token-secret\"\n\
             [payments]\ntest_gateway = true\n[rate_limit]\nper_minute = 0  # every customer is 127.0.0.1\n[fraud]\nenabled = false  # a few customers buy thousands of tickets in a minute\n"
        ),
    )?;
    let added = Command::new(binary("cloud-api"))
        .args(["add-user", "--config", "cloud.toml", "--email", ORGANIZER, "--name", "Olga"])
        .args(["--role", "organizer"])
        .env("TIXGATE_PASSWORD", PASSWORD)
        .current_dir(dir)
        .output()?;
    if !added.status.success() {
        bail!("cloud-api add-user: {}", String::from_utf8_lossy(&added.stderr));
    }
    let daemon = Daemon::spawn_logged("cloud-api", &["serve", "--config", "cloud.toml"], dir, &dir.join("cloud.log"));
    let end = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > end {
            bail!("cloud-api did not start; see {}", dir.join("cloud.log").display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let api = Api { base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
    Ok(Cloud { _daemon: daemon, api, store: dir.join("cloud.db") })
}

/// The cloud's HTTP API.
#[derive(Clone)]
pub struct Api {
    /// Base URL.
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = resp.status();
        let value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status} {value}");
        }
        Ok(value)
    }

    async fn login(&self, email: &str) -> anyhow::Result<String> {
        let login = self.post("/auth/login", None, json!({"email": email, "password": PASSWORD})).await?;
        Ok(login["access_token"].as_str().context("login without a token")?.to_owned())
    }

    /// The ticket's QR code as the customer downloads it (PNG).
    pub async fn qr_png(&self, ticket: &Ticket) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}/tickets/{}/qr.png", self.base, ticket.id);
        let resp = self.http.get(url).bearer_auth(&ticket.owner_token).send().await?.error_for_status()?;
        Ok(resp.bytes().await?.to_vec())
    }

    /// The venue's manifest version as the hub's device sees it.
    pub async fn manifest_version(&self, venue_id: i64, hub_token: &str) -> anyhow::Result<u64> {
        let url = format!("{}/venues/{venue_id}/manifest", self.base);
        let resp = self.http.get(url).bearer_auth(hub_token).send().await?.error_for_status()?;
        let version = resp.headers().get("x-manifest-version").context("manifest without a version")?;
        Ok(version.to_str()?.parse()?)
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self.http.put(format!("{}{path}", self.base)).bearer_auth(token).json(&body).send().await?;
        let status = resp.status();
        let value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("PUT {path}: {status} {value}");
        }
        Ok(value)
    }

    /// Sets up the venue and both shows, sells `tonight` Standing and `vip`
    /// VIP tickets for tonight and `tomorrow` for tomorrow, and refunds
    /// `refunds` of tonight's Standing orders.
    pub async fn sell(
        &self,
        tonight: usize,
        vip: usize,
        tomorrow: usize,
        refunds: usize,
        bar: &ProgressBar,
    ) -> anyhow::Result<Sold> {
        let organizer = self.login(ORGANIZER).await?;
        let venue = self
            .post(
                "/venues",
                Some(&organizer),
                json!({"name": "Riverside Hall", "address": "1 Quay St", "capacity": 6000}),
            )
            .await?;
        let venue_id = venue["id"].as_i64().context("venue id")?;
        let kind = |name: &str, price: i64, total: usize| json!({"name": name, "price_minor": price, "currency": "EUR", "total": total, "per_order_limit": PER_ORDER});
        let show = |title: &str, day: u32, types: Vec<Value>| {
            json!({"venue_id": venue_id, "title": title,
                   "starts_at": format!("2031-06-{day:02}T19:00:00Z"), "ends_at": format!("2031-06-{day:02}T23:00:00Z"),
                   "ticket_types": types})
        };
        // (event, its types' ids)
        let mut shows: Vec<(i64, Vec<i64>)> = Vec::new();
        for (title, day, types) in [
            ("The Quay Sessions", 12, vec![kind("Standing", 3500, tonight), kind("VIP", 9000, vip)]),
            ("The Quay Sessions: Encore", 13, vec![kind("Standing", 3500, tomorrow)]),
        ] {
            let event = self.post("/admin/events", Some(&organizer), show(title, day, types)).await?;
            let id = event["id"].as_i64().context("event id")?;
            let types = event["ticket_types"].as_array().context("ticket types")?;
            let type_ids =
                types.iter().map(|t| t["id"].as_i64().context("ticket type id")).collect::<Result<_, _>>()?;
            self.post(&format!("/admin/events/{id}/publish"), Some(&organizer), json!({})).await?;
            shows.push((id, type_ids));
        }
        self.set_up_doors(&organizer, venue_id, &shows).await?;
        let hub =
            self.post(&format!("/admin/venues/{venue_id}/devices"), Some(&organizer), json!({"name": "hub"})).await?;
        let hub_token = hub["token"].as_str().context("device token")?.to_owned();

        // Orders of up to ten, spread over the customers; several buy at once.
        let mut orders = Vec::new();
        let sales = [
            (shows[0].0, shows[0].1[0], tonight),
            (shows[0].0, shows[0].1[1], vip),
            (shows[1].0, shows[1].1[0], tomorrow),
        ];
        for (event_id, type_id, count) in sales {
            let count = count as i64;
            orders
                .extend((0..count).step_by(PER_ORDER as usize).map(|n| (event_id, type_id, PER_ORDER.min(count - n))));
        }
        let customers = CUSTOMERS.min(orders.len());
        let mut buyers = JoinSet::new();
        for lane in 0..BUYERS_AT_ONCE {
            let (api, bar) = (self.clone(), bar.clone());
            let mine: Vec<(usize, Vec<_>)> = (lane..customers)
                .step_by(BUYERS_AT_ONCE)
                .map(|c| (c, orders.iter().skip(c).step_by(customers).copied().collect()))
                .collect();
            buyers.spawn(async move {
                let mut tickets = Vec::new();
                for (customer, orders) in mine {
                    tickets.extend(api.buy(customer, orders, &bar).await?);
                }
                anyhow::Ok(tickets)
            });
        }
        let mut tickets = Vec::new();
        while let Some(bought) = buyers.join_next().await {
            tickets.extend(bought??);
        }
        tickets.sort_by_key(|t| t.id);
        let (tonight_tickets, tomorrow_tickets): (Vec<_>, Vec<_>) =
            tickets.into_iter().partition(|t| t.event_id == shows[0].0);
        let (vip_tickets, tonight_tickets): (Vec<_>, Vec<_>) =
            tonight_tickets.into_iter().partition(|t| t.type_id == shows[0].1[1]);

        let orders: std::collections::BTreeSet<i64> = tonight_tickets.iter().map(|t| t.order_id).collect();
        let refunded_orders: Vec<i64> = orders.into_iter().take(refunds).collect();
        for order in &refunded_orders {
            self.post(&format!("/orders/{order}/refund"), Some(&organizer), json!({})).await?;
        }
        Ok(Sold {
            venue_id,
            tonight: shows[0].0,
            tonight_tickets,
            vip_tickets,
            tomorrow_tickets,
            refunded_orders,
            hub_token,
        })
    }

    /// The venue's doors: Standing at the main entrance onto the floor, VIP at
    /// the VIP entrance into the lounge, both scanned out and allowed back in;
    /// tomorrow's list opens tomorrow. The gates are assigned to their
    /// entrances before the hub has reported them.
    async fn set_up_doors(&self, organizer: &str, venue_id: i64, shows: &[(i64, Vec<i64>)]) -> anyhow::Result<()> {
        let admin = |what: &str| format!("/admin/venues/{venue_id}/{what}");
        let id = |v: Value| v["id"].as_i64().context("an id");
        let main = id(self.post(&admin("entrances"), Some(organizer), json!({"name": MAIN})).await?)?;
        let vip = id(self.post(&admin("entrances"), Some(organizer), json!({"name": VIP})).await?)?;
        let floor =
            id(self.post(&admin("areas"), Some(organizer), json!({"name": "Floor", "capacity": 6000})).await?)?;
        let lounge = id(self
            .post(&admin("areas"), Some(organizer), json!({"name": "Lounge", "capacity": LOUNGE_CAPACITY}))
            .await?)?;
        let ((tonight, types), (tomorrow, tomorrow_types)) = (&shows[0], &shows[1]);
        let lists = [
            (
                tonight,
                json!({"name": "Floor", "ticket_type_ids": [types[0]], "entrance_ids": [main], "area_id": floor,
                             "scan_exits": true, "allow_reentry": true}),
            ),
            (
                tonight,
                json!({"name": "Lounge", "ticket_type_ids": [types[1]], "entrance_ids": [vip], "area_id": lounge,
                             "scan_exits": true, "allow_reentry": true}),
            ),
            (
                tomorrow,
                json!({"name": "Floor", "ticket_type_ids": [tomorrow_types[0]], "entrance_ids": [main],
                              "area_id": floor, "scan_exits": true, "allow_reentry": true,
                              "opens_at": "2031-06-13T17:00:00Z", "closes_at": "2031-06-13T23:30:00Z"}),
            ),
        ];
        for (event, list) in lists {
            self.post(&format!("/admin/events/{event}/checkin-lists"), Some(organizer), list).await?;
        }
        for (gate, entrance) in crate::ALL_GATES.iter().map(|g| (g.id, if g.entrance == VIP { vip } else { main })) {
            self.put(&admin(&format!("gates/{gate}")), organizer, json!({"entrance_id": entrance})).await?;
        }
        Ok(())
    }

    /// Customer number `n` signs up, buys `orders` (event, type, quantity) and
    /// returns the tickets from their account.
    async fn buy(&self, n: usize, orders: Vec<(i64, i64, i64)>, bar: &ProgressBar) -> anyhow::Result<Vec<Ticket>> {
        let name = format!("{} {}", FIRST[n % FIRST.len()], LAST[n / FIRST.len() % LAST.len()]);
        let email = format!("customer{n}@example.com");
        self.post("/auth/register", None, json!({"email": email, "password": PASSWORD, "name": name})).await?;
        let token = self.login(&email).await?;
        for (event_id, type_id, quantity) in orders {
            let hold = self
                .post(
                    &format!("/events/{event_id}/reserve-tickets"),
                    Some(&token),
                    json!({"ticket_type_id": type_id, "quantity": quantity}),
                )
                .await?;
            let order = self.post("/orders", Some(&token), json!({"hold_id": hold["id"], "gateway": "test"})).await?;
            if order["status"] != "paid" {
                bail!("an order through the test gateway was not paid: {order}");
            }
            bar.inc(quantity as u64);
        }
        let resp = self.http.get(format!("{}/users/me/tickets", self.base)).bearer_auth(&token).send().await?;
        let tickets: Vec<Value> = resp.error_for_status()?.json().await?;
        tickets
            .iter()
            .map(|t| {
                Ok(Ticket {
                    id: t["id"].as_i64().context("ticket id")?,
                    order_id: t["order_id"].as_i64().context("order id")?,
                    event_id: t["event_id"].as_i64().context("event id")?,
                    type_id: t["ticket_type_id"].as_i64().context("ticket type id")?,
                    barcode: t["barcode"].as_str().context("barcode")?.to_owned(),
                    owner_token: token.clone(),
                })
            })
            .collect()
    }
}
