//! The hub's web side for the operator: the dashboard page (`/`), its live feed
//! (`/events`, server-sent events), the same data as JSON (`/api/status`),
//! Prometheus metrics (`/metrics`) and a liveness check (`/healthz`).
//!
//! Read-only: it reads [`Status`] and never touches the store.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use tokio_util::sync::CancellationToken;

use crate::status::{Snapshot, Status};

/// How often the live feed pushes a fresh snapshot.
const FEED_EVERY: Duration = Duration::from_secs(1);

/// Binds `listen` and serves until `shutdown`, answering requests for these
/// host names (and `localhost` and IP addresses); returns the bound address.
pub async fn serve(
    listen: SocketAddr,
    hosts: Vec<String>,
    status: Status,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let hosts: Arc<[String]> = hosts.into();
    let app = router(status).layer(axum::middleware::from_fn(move |req: Request, next: Next| {
        let hosts = Arc::clone(&hosts);
        async move { only_for_hosts(&hosts, req, next).await }
    }));
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "dashboard server stopped");
        }
    });
    Ok((bound, task))
}

/// The routes, over a shared status.
pub fn router(status: Status) -> Router {
    Router::new()
        .route("/", get(|| async { Html(DASHBOARD) }))
        .route("/healthz", get(|| async { Json(serde_json::json!({ "status": "ok" })) }))
        .route("/api/status", get(|status: axum::extract::State<Status>| async move { Json(status.snapshot()) }))
        .route(
            "/metrics",
            get(|status: axum::extract::State<Status>| async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics(&status.snapshot()))
            }),
        )
        .route("/events", get(|status: axum::extract::State<Status>| async move { feed(status.0) }))
        .with_state(status)
}

/// Refuses a request whose `Host` is not this hub: a web page the operator
/// opens elsewhere could otherwise point its own name at the hub's address
/// (DNS rebinding) and read the dashboard as the same origin.
async fn only_for_hosts(hosts: &[String], req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    if host_allowed(host, hosts) {
        return next.run(req).await;
    }
    let problem = serde_json::json!({
        "type": "https://tixgate.dev/problems/unknown-host",
        "title": "Misdirected Request",
        "status": 421,
        "detail": "this hub answers to localhost, its IP addresses and the names in [http] hosts",
    });
    (StatusCode::MISDIRECTED_REQUEST, [(header::CONTENT_TYPE, "application/problem+json")], problem.to_string())
        .into_response()
}

/// Whether a `Host` header names this hub: `localhost`, an IP address (a
/// rebinding page always uses a name), or one of `names`; any port.
pub fn host_allowed(host: Option<&str>, names: &[String]) -> bool {
    let Some(host) = host else { return false };
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.starts_with(':') => return v6.parse::<Ipv6Addr>().is_ok(),
            _ => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.to_ascii_lowercase();
    name.parse::<Ipv4Addr>().is_ok() || name == "localhost" || names.contains(&name)
}

/// A DNS host name: dot-separated labels of letters, digits and hyphens.
pub fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn feed(status: Status) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let ticks = stream::unfold((status, true), |(status, first)| async move {
        if !first {
            tokio::time::sleep(FEED_EVERY).await;
        }
        let data = serde_json::to_string(&status.snapshot()).unwrap_or_default();
        Some((Ok(Event::default().event("status").data(data)), (status, false)))
    });
    Sse::new(ticks).keep_alive(KeepAlive::default())
}

/// Prometheus text exposition of a snapshot.
pub fn metrics(s: &Snapshot) -> impl IntoResponse + use<> {
    let mut out = String::new();
    let online = s.gates.iter().filter(|g| g.online).count();
    let _ = writeln!(out, "# HELP tixgate_hub_gates_online Gates heard from recently.");
    let _ = writeln!(out, "# TYPE tixgate_hub_gates_online gauge\ntixgate_hub_gates_online {online}");
    let _ = writeln!(out, "# HELP tixgate_hub_gate_up 1 if the gate was heard from recently.");
    let _ = writeln!(out, "# TYPE tixgate_hub_gate_up gauge");
    for g in &s.gates {
        let _ = writeln!(out, "tixgate_hub_gate_up{{gate=\"{}\"}} {}", g.gate_id, u8::from(g.online));
    }
    let _ = writeln!(out, "# HELP tixgate_hub_scans_total Scans stored per gate since the hub started.");
    let _ = writeln!(out, "# TYPE tixgate_hub_scans_total counter");
    for g in &s.gates {
        let _ = writeln!(out, "tixgate_hub_scans_total{{gate=\"{}\"}} {}", g.gate_id, g.scans);
    }
    let _ = writeln!(out, "# HELP tixgate_hub_inside Tickets inside now, per check-in list.");
    let _ = writeln!(out, "# TYPE tixgate_hub_inside gauge");
    for (list, n) in &s.inside {
        let _ = writeln!(out, "tixgate_hub_inside{{list=\"{list}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP tixgate_hub_area_inside People inside now, per area (each ticket once).");
    let _ = writeln!(out, "# TYPE tixgate_hub_area_inside gauge");
    for area in &s.areas {
        let _ = writeln!(out, "tixgate_hub_area_inside{{area=\"{}\"}} {}", label(&area.name), area.inside);
    }
    let _ = writeln!(out, "# HELP tixgate_hub_area_capacity How many people an area may hold.");
    let _ = writeln!(out, "# TYPE tixgate_hub_area_capacity gauge");
    for area in &s.areas {
        if let Some(capacity) = area.capacity {
            let _ = writeln!(out, "tixgate_hub_area_capacity{{area=\"{}\"}} {capacity}", label(&area.name));
        }
    }
    let _ = writeln!(out, "# HELP tixgate_hub_rejections_total Rejected scans by reason since the hub started.");
    let _ = writeln!(out, "# TYPE tixgate_hub_rejections_total counter");
    for (reason, n) in &s.rejections {
        let _ = writeln!(out, "tixgate_hub_rejections_total{{reason=\"{reason}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP tixgate_hub_refused_frames_total Frames refused (forged, unknown gate, malformed).");
    let _ = writeln!(out, "# TYPE tixgate_hub_refused_frames_total counter");
    for (why, n) in &s.refused {
        let _ = writeln!(out, "tixgate_hub_refused_frames_total{{why=\"{}\"}} {n}", why.replace('"', "'"));
    }
    let _ = writeln!(out, "# HELP tixgate_hub_conflicts_total Double entries found since the hub started.");
    let _ = writeln!(out, "# TYPE tixgate_hub_conflicts_total counter\ntixgate_hub_conflicts_total {}", s.conflicts);
    let _ = writeln!(out, "# HELP tixgate_hub_commits_total Grouped commits since the hub started.");
    let _ = writeln!(out, "# TYPE tixgate_hub_commits_total counter\ntixgate_hub_commits_total {}", s.commits);
    if s.cloud.configured {
        let _ = writeln!(out, "# HELP tixgate_hub_uplink_backlog Scans and conflicts waiting to go up to the cloud.");
        let _ =
            writeln!(out, "# TYPE tixgate_hub_uplink_backlog gauge\ntixgate_hub_uplink_backlog {}", s.cloud.backlog);
        let _ = writeln!(
            out,
            "# HELP tixgate_hub_uplink_uploaded_total Items the cloud acknowledged since the hub started."
        );
        let _ = writeln!(
            out,
            "# TYPE tixgate_hub_uplink_uploaded_total counter\ntixgate_hub_uplink_uploaded_total {}",
            s.cloud.uploaded
        );
        let _ = writeln!(out, "# HELP tixgate_hub_uplink_ok 0 while the last exchange with the cloud failed.");
        let _ = writeln!(
            out,
            "# TYPE tixgate_hub_uplink_ok gauge\ntixgate_hub_uplink_ok {}",
            u8::from(s.cloud.last_error.is_none())
        );
    }
    out
}

/// A Prometheus label value: names come from the organizer, so `\`, `"` and
/// line breaks are escaped as the text format requires.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The dashboard: one page, no build step, live through `/events`.
const DASHBOARD: &str = include_str!("dashboard.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_hub_s_names_and_addresses_are_answered() {
        let names = vec!["hub.venue.lan".to_owned()];
        for ok in [
            "127.0.0.1:8480",
            "localhost",
            "LOCALHOST:80",
            "192.168.1.10",
            "[::1]:8480",
            "[fe80::1]",
            "hub.venue.lan:8480",
            "Hub.Venue.Lan",
        ] {
            assert!(host_allowed(Some(ok), &names), "{ok}");
        }
        for refused in [
            "attacker.example",
            "attacker.example:8480",
            "127.0.0.1.nip.io",
            "localhost.attacker.example",
            "[::1",
            "[::1]x",
            "",
            "hub.venue.lan.evil",
        ] {
            assert!(!host_allowed(Some(refused), &names), "{refused}");
        }
        assert!(!host_allowed(None, &names), "no Host at all");
    }

    #[test]
    fn organizer_names_cannot_break_the_metrics_text() {
        assert_eq!(label("Floor"), "Floor");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn configured_names_must_be_host_names() {
        assert!(valid_host_name("hub.venue.lan") && valid_host_name("box-1"));
        for bad in ["", "a..b", "-a", "a-", "a b", "a:80", &"x".repeat(64)] {
            assert!(!valid_host_name(bad), "{bad:?}");
        }
    }
}
