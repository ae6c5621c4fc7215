//! Server-rendered web pages over the same business modules as the JSON API:
//! the customer's shop (browse, buy with the test gateway, tickets with their
//! QR codes) in [`shop`], and the organizer's pages (events, ticket types,
//! sales, cases, analytics plots) in [`manage`].
//!
//! A session is the API's access token in a `Secure`, `HttpOnly`,
//! `SameSite=Strict` cookie: a form posted from another site arrives without
//! it. Every form post must also come from this origin (`Sec-Fetch-Site`, or
//! `Origin` where a browser sends no fetch metadata), which stops what
//! SameSite does not: signing a victim into an attacker's account, forced
//! sign-outs, and posts from sibling subdomains. Pages carry no script; a
//! strict Content-Security-Policy says so.
//!
//! Markup is written with maud's `html!`: every interpolated value is escaped
//! unless wrapped in `PreEscaped`, so a forgotten call cannot become stored XSS.
//! `PreEscaped` appears only for the constant stylesheet and for the SVG of our
//! own QR renderer.

pub mod doors;
pub mod gates;
pub mod manage;
pub mod plot;
pub mod shop;

use axum::Router;
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next as NextLayer};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::accounts::auth::{Caller, Role};
use crate::accounts::users::{self, Credentials};
use crate::common::clock;
use crate::common::error::ApiError;
use crate::web::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tixgate_session";

/// The forms that create sessions, accounts and orders: rate-limited like
/// their API counterparts.
pub fn limited_forms() -> Router<AppState> {
    Router::new()
        .route("/shop/buy", post(shop::buy))
        .route("/login", post(login))
        .route("/register", post(register))
        .route_layer(middleware::from_fn(same_origin_forms))
}

/// The other pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(shop::home))
        .route("/e/{id}", get(shop::event))
        .route("/my/tickets", get(shop::my_tickets))
        .route("/login", get(login_page))
        .route("/register", get(register_page))
        .route("/logout", post(logout))
        .route("/manage", get(manage::events))
        .route("/manage/events/{id}", get(manage::event))
        .route("/manage/cases/{id}/resolve", post(manage::resolve_case))
        .route("/manage/events/{id}/doors", get(doors::doors))
        .route("/manage/events/{id}/entrances", post(doors::add_entrance))
        .route("/manage/events/{id}/areas", post(doors::add_area))
        .route("/manage/events/{id}/lists", post(doors::add_list))
        .route("/manage/lists/{id}/delete", post(doors::delete_list))
        .route("/manage/events/{id}/gates", post(gates::assign))
        .route("/manage/events/{id}/gates/revoke", post(gates::revoke))
        .route_layer(middleware::from_fn(same_origin_forms))
}

/// Refuses a form post that another site's page sent.
async fn same_origin_forms(request: Request, next: NextLayer) -> Response {
    if request.method() == Method::GET || request.method() == Method::HEAD || from_this_site(request.headers()) {
        return next.run(request).await;
    }
    let problem = html! { p.error { "This form can only be sent from this site's own pages." } };
    let mut response = page("Sorry", None, problem);
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// Whether a post comes from a page of this origin. Browsers send
/// `Sec-Fetch-Site`; older ones send `Origin` on posts; a client that sends
/// neither is not a browser, and carries no cookie it did not mean to.
fn from_this_site(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return site == "same-origin";
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, authority)| authority == host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Money in minor units as text, e.g. `25.00 EUR`: plain text, escaped where
/// a page interpolates it.
pub fn money(minor: i64, currency: &str) -> String {
    format!("{}.{:02} {currency}", minor / 100, (minor % 100).abs())
}

/// A date-time (Unix seconds) as `2026-12-02 19:30 UTC`.
pub fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| {
            format!("{}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
        })
        .unwrap_or_default()
}

/// A whole page around `body`.
pub fn page(title: &str, caller: Option<&Caller>, body: Markup) -> Response {
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tixgate" }
                // A constant of this file, not input: the one stylesheet of every page.
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.brand href="/" { "tixgate" }
                    nav { (account(caller)) }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    (PAGE_HEADERS, html.into_string()).into_response()
}

/// The header's links: sign in or register, or the signed-in user's pages.
fn account(caller: Option<&Caller>) -> Markup {
    html! {
        @if let Some(c) = caller {
            @if c.is_runner() {
                a href="/manage" { "Manage" } " "
            }
            a href="/my/tickets" { "My tickets" } " "
            form.inline method="post" action="/logout" { button { "Sign out" } }
        } @else {
            a href="/login" { "Sign in" } " "
            a href="/register" { "Register" }
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1a202c}\
header{display:flex;justify-content:space-between;align-items:center;padding:.6rem 1rem;background:#1a365d}\
header a,header button{color:#fff;margin-left:.8rem;background:none;border:0;font:inherit;cursor:pointer}\
.brand{font-weight:700;margin:0}main{max-width:60rem;margin:1rem auto;padding:0 1rem}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}\
.inline{display:inline}.notice{padding:.6rem;background:#fefcbf}.error{padding:.6rem;background:#fed7d7}\
.ticket{display:inline-block;border:1px solid #ccc;padding:.6rem;margin:.4rem;text-align:center}\
.ticket svg{width:220px;height:220px}svg.plot{width:100%;max-width:640px;height:auto}\
img.thumb{margin:.2rem;border-radius:4px}";

const PAGE_HEADERS: [(header::HeaderName, &str); 5] = [
    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
    ),
    (header::CACHE_CONTROL, "no-store"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
];

/// The signed-in user, if the session cookie holds a valid token of a session
/// still open.
pub async fn session(state: &AppState, headers: &HeaderMap) -> Option<Caller> {
    let claims = state.tokens.check(session_token(headers)?).ok()?;
    if claims.role == Role::Hub {
        return None;
    }
    Caller::of_claims(&state.db, &claims, clock::now()).await.ok()
}

/// The session cookie's token.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|c| c.trim().strip_prefix(SESSION_COOKIE).and_then(|v| v.strip_prefix('=')))
    })
}

/// An error as a page: what went wrong, in words, with the right status.
pub fn error_page(caller: Option<&Caller>, error: &ApiError) -> Response {
    let status = error.status();
    let text = match error {
        ApiError::Store(_) | ApiError::Internal(_) => "Something went wrong on our side; please try again.".into(),
        other => other.to_string(),
    };
    let mut response = page("Sorry", caller, html! { p.error { (text) } });
    *response.status_mut() = status;
    response
}

/// Sends someone without a session to sign in, and back to `next` after.
pub fn sign_in_first(next: &str) -> Response {
    Redirect::to(&format!("/login?next={}", urlencoding(next))).into_response()
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Only paths on this site: never an open redirect.
fn safe_next(next: Option<&str>) -> &str {
    // Browsers drop tabs and line breaks from URLs, so `/\t/evil.example` would become `//evil.example`.
    next.filter(|n| {
        n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.bytes().all(|b| b.is_ascii_graphic())
    })
    .unwrap_or("/")
}

#[derive(Debug, Deserialize)]
struct Next {
    next: Option<String>,
}

/// The sign-in or registration form; `next` rides along in a hidden field.
fn sign_in_form(action: &str, next: &str, register: bool, problem: Option<&str>) -> Markup {
    html! {
        @if let Some(problem) = problem {
            p.error { (problem) }
        }
        form method="post" action=(action) {
            input type="hidden" name="next" value=(next);
            p { label { "E-mail " input name="email" type="email" required autocomplete="email"; } }
            @if register {
                p { label { "Name " input name="name" autocomplete="name"; } }
            }
            p { label { "Password " input name="password" type="password" required minlength="8"; } }
            p { button type="submit" { @if register { "Create account" } @else { "Sign in" } } }
        }
    }
}

async fn login_page(next: axum::extract::Query<Next>) -> Response {
    page("Sign in", None, sign_in_form("/login", safe_next(next.next.as_deref()), false, None))
}

async fn register_page(next: axum::extract::Query<Next>) -> Response {
    page("Create an account", None, sign_in_form("/register", safe_next(next.next.as_deref()), true, None))
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

async fn login(State(s): State<AppState>, form: Form<SignInForm>) -> Response {
    let credentials =
        Credentials { email: form.email.clone(), password: form.password.clone(), name: None, phone: None };
    let next = safe_next(form.next.as_deref());
    match users::login(&s.db, &s.tokens, &credentials, clock::now()).await {
        Ok(token) => signed_in(&token.access_token, s.tokens.login_ttl, next),
        Err(e) => {
            let mut response = page("Sign in", None, sign_in_form("/login", next, false, Some(&e.to_string())));
            *response.status_mut() = e.status();
            response
        }
    }
}

async fn register(State(s): State<AppState>, form: Form<SignInForm>) -> Response {
    let credentials = Credentials {
        email: form.email.clone(),
        password: form.password.clone(),
        name: form.name.clone().filter(|n| !n.trim().is_empty()),
        phone: None,
    };
    let next = safe_next(form.next.as_deref());
    let created = users::create(&s.db, &credentials, Role::Customer, clock::now()).await;
    match created.map(drop) {
        Ok(()) => match users::login(&s.db, &s.tokens, &credentials, clock::now()).await {
            Ok(token) => signed_in(&token.access_token, s.tokens.login_ttl, next),
            Err(e) => error_page(None, &e),
        },
        Err(e) => {
            let mut response =
                page("Create an account", None, sign_in_form("/register", next, true, Some(&e.to_string())));
            *response.status_mut() = e.status();
            response
        }
    }
}

fn signed_in(token: &str, ttl: i64, next: &str) -> Response {
    // Secure: never sent over plain HTTP (browsers count localhost as secure).
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={ttl}");
    let mut response = Redirect::to(next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    // The session ends at the server too: a copied cookie opens nothing after this.
    if let Some(claims) = session_token(&headers).and_then(|token| s.tokens.check(token).ok())
        && let (Ok(user), Some(session)) = (claims.sub.parse(), claims.sid)
        && crate::accounts::sessions::end(&s.db, user, session, clock::now()).await.is_err()
    {
        return error_page(None, &ApiError::Internal("sign-out failed".into()));
    }
    let mut response = Redirect::to("/").into_response();
    let gone = HeaderValue::from_static("tixgate_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    response.headers_mut().insert(header::SET_COOKIE, gone);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a response's body as text.
    async fn text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn hostile_text_comes_out_escaped() {
        let hostile = "<script>alert(1)</script>";
        let html = text(page(hostile, None, html! { p { "Tom & Jerry" } })).await;
        assert!(!html.contains(hostile), "{html}");
        assert!(html.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt; · tixgate</title>"), "{html}");
        assert!(html.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>"), "{html}");
        assert!(html.contains("<p>Tom &amp; Jerry</p>"), "{html}");

        let form = sign_in_form("/login", "/e/1\"><script>alert(1)</script>", false, Some(hostile)).into_string();
        assert!(!form.contains("<script>"), "{form}");
        assert!(form.contains("value=\"/e/1&quot;&gt;&lt;script&gt;"), "a quote cannot close the attribute: {form}");
        assert!(form.contains("<p class=\"error\">&lt;script&gt;"), "{form}");
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/e/3")), "/e/3");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/e/3\r\nSet-Cookie: x=1")), "/");
        assert_eq!(safe_next(None), "/");
        assert_eq!(urlencoding("/e/3?x=1"), "/e/3%3Fx%3D1");
    }

    #[test]
    fn only_this_sites_pages_may_post_forms() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(header::HeaderName::from_static(name), HeaderValue::from_static(value));
            }
            map
        };
        assert!(from_this_site(&headers(&[("sec-fetch-site", "same-origin"), ("origin", "https://evil.example")])));
        assert!(!from_this_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!from_this_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(from_this_site(&headers(&[("origin", "https://tickets.example"), ("host", "tickets.example")])));
        assert!(!from_this_site(&headers(&[("origin", "https://evil.example"), ("host", "tickets.example")])));
        assert!(!from_this_site(&headers(&[("origin", "null"), ("host", "tickets.example")])));
        assert!(from_this_site(&headers(&[("host", "tickets.example")])), "not a browser");
    }

    #[test]
    fn amounts_and_times_read_as_people_write_them() {
        assert_eq!(money(2550, "EUR"), "25.50 EUR");
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
    }
}
