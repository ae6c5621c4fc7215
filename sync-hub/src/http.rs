//! The hub's web side for the operator: the dashboard page (`/`), its live feed
//! (`/events`, server-sent events), the same data as JSON (`/api/status`),
//! Prometheus metrics (`/metrics`) and a liveness check (`/healthz`).
//!
//! Read-only: it reads [`Status`] and never touches the store.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use tokio_util::sync::CancellationToken;

use crate::status::{Snapshot, Status};

/// How often the live feed pushes a fresh snapshot.
const FEED_EVERY: Duration = Duration::from_secs(1);

/// Binds `listen` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    listen: SocketAddr,
    status: Status,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let app = router(status);
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

/// The dashboard: one page, no build step, live through `/events`.
const DASHBOARD: &str = include_str!("dashboard.html");
