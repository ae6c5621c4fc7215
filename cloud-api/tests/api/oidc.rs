//! Sign-in through an OpenID Connect provider: a local issuer started by the
//! test serves its discovery document and keys; ID tokens are checked against
//! them, and accounts are found, linked or created by subject.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use cloud_api::accounts::auth::Role;
use cloud_api::common::clock;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Api, Store};
use crate::on_both_stores;

on_both_stores!(id_tokens_sign_in_link_by_subject_and_follow_key_rotation);

const CLIENT: &str = "tixgate-web";

/// A minimal OpenID provider: discovery, a key set that can be rotated, and
/// a count of key-set fetches.
#[derive(Clone)]
struct Issuer {
    url: String,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issuer = Self { url, keys: Arc::new(Mutex::new(json!({"keys": []}))), fetches: Arc::default() };
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|State(i): State<Issuer>| async move {
                    axum::Json(json!({"issuer": i.url, "jwks_uri": format!("{}/jwks", i.url)}))
                }),
            )
            .route(
                "/jwks",
                get(|State(i): State<Issuer>| async move {
                    i.fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(i.keys.lock().unwrap().clone())
                }),
            )
            .with_state(issuer.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        issuer
    }

    /// Publishes `key` (alone) under `kid`.
    fn publish(&self, key: &SigningKey, kid: &str) {
        let x = data_encoding::BASE64URL_NOPAD.encode(key.verifying_key().as_bytes());
        *self.keys.lock().unwrap() =
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}]});
    }

    fn config(&self) -> String {
        format!("[[oidc]]\nname = \"local\"\nissuer = \"{}\"\nclient_id = \"{CLIENT}\"\n", self.url)
    }
}

fn sign(key: &SigningKey, kid: &str, claims: &Value) -> String {
    let der = key.to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

fn claims(issuer: &Issuer, sub: &str, email: &str, verified: bool) -> Value {
    let now = clock::now();
    json!({"iss": issuer.url, "aud": CLIENT, "sub": sub, "email": email, "email_verified": verified,
           "name": "Alice Example", "iat": now, "exp": now + 300})
}

async fn sign_in(api: &Api, token: &str) -> (StatusCode, Value) {
    api.post("/auth/oidc/local", None, json!({"id_token": token})).await
}

async fn me(api: &Api, access: &Value) -> Value {
    let (status, me) = api.get("/users/me", access["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me
}

async fn id_tokens_sign_in_link_by_subject_and_follow_key_rotation(store: Store) {
    let issuer = Issuer::start().await;
    let key = SigningKey::from_bytes(&[1; 32]);
    issuer.publish(&key, "k1");
    let api = Api::start_with(store, &issuer.config()).await;

    // A first sign-in creates a customer account without a password.
    let (status, access) =
        sign_in(&api, &sign(&key, "k1", &claims(&issuer, "alice-1", "Alice@Example.com", true))).await;
    assert_eq!(status, StatusCode::OK, "{access}");
    let alice = me(&api, &access).await;
    assert_eq!((alice["email"].as_str(), alice["name"].as_str()), (Some("alice@example.com"), Some("Alice Example")));
    assert_eq!(alice["role"], "customer");
    let (status, _) = api.post("/auth/login", None, json!({"email": "alice@example.com", "password": "!"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no password opens an account made by a provider");
    // The same subject signs in to the same account, whatever its e-mail says now.
    let renamed = claims(&issuer, "alice-1", "alice@new.example", true);
    let (_, again) = sign_in(&api, &sign(&key, "k1", &renamed)).await;
    assert_eq!(me(&api, &again).await["id"], alice["id"]);

    // An address the provider has not verified is never claimed, for a new account either.
    let (status, problem) = sign_in(&api, &sign(&key, "k1", &claims(&issuer, "eve-1", "eve@example.com", false))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    // A password account is linked only when the provider has verified the address.
    let (bob, _) = api.user("bob@example.com", Role::Customer).await;
    let (status, problem) = sign_in(&api, &sign(&key, "k1", &claims(&issuer, "bob-9", "bob@example.com", false))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, linked) = sign_in(&api, &sign(&key, "k1", &claims(&issuer, "bob-9", "bob@example.com", true))).await;
    assert_eq!(status, StatusCode::OK, "{linked}");
    assert_eq!(me(&api, &linked).await["id"], bob);

    // Refused: another audience, another issuer, expired, another key under the
    // same id, a shared-secret token, no token at all; an unknown provider.
    let now = clock::now();
    let mut bad = Vec::new();
    for (field, value) in
        [("aud", json!("someone-else")), ("iss", json!("http://evil.example")), ("exp", json!(now - 3600))]
    {
        let mut c = claims(&issuer, "alice-1", "alice@example.com", true);
        c[field] = value;
        bad.push((field.to_owned(), sign(&key, "k1", &c)));
    }
    let impostor = SigningKey::from_bytes(&[2; 32]);
    bad.push(("impostor".into(), sign(&impostor, "k1", &claims(&issuer, "alice-1", "alice@example.com", true))));
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let secret = jsonwebtoken::encode(&hs, &claims(&issuer, "alice-1", "a@b.c", true), &EncodingKey::from_secret(b"k"));
    bad.push(("HS256".into(), secret.unwrap()));
    bad.push(("garbage".into(), "not.a.token".into()));
    for (what, token) in &bad {
        let (status, problem) = sign_in(&api, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {problem}");
    }
    let (status, _) = api
        .post("/auth/oidc/elsewhere", None, json!({"id_token": sign(&key, "k1", &claims(&issuer, "x", "x@y.z", true))}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The provider rotates its key: a token under the new id makes one refetch
    // (refetches are at least 2 s apart).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let fetched = issuer.fetches.load(Ordering::SeqCst);
    let rotated = SigningKey::from_bytes(&[3; 32]);
    issuer.publish(&rotated, "k2");
    let (status, after) =
        sign_in(&api, &sign(&rotated, "k2", &claims(&issuer, "alice-1", "alice@example.com", true))).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(me(&api, &after).await["id"], alice["id"]);
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), fetched + 1);
    // An unknown key id right after is refused without hammering the provider.
    let (status, _) =
        sign_in(&api, &sign(&rotated, "k3", &claims(&issuer, "alice-1", "alice@example.com", true))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), fetched + 1);
}
