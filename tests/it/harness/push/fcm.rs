//! Firebase Cloud Messaging on loopback: Google's OAuth token endpoint for one service account
//! (the JWT bearer grant, RS256) and the HTTP v1 `messages:send`, each checked as Google does
//! and answered in Google's shapes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use rand::RngCore;
use serde_json::{json, Value};

use super::fcm_v1::{check_message, google_error, with_retry_after, FcmDelivery};
use super::jwt;
use super::server::{self, Reply, Running, Scripts};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Google takes assertions valid for at most an hour, and allows this much clock skew.
const MAX_ASSERTION_LIFE: u64 = 3600;
const SKEW: u64 = 60;
/// Script key of the token endpoint.
const TOKEN_SCRIPT: &str = "/token";

struct Account {
    project_id: String,
    client_email: String,
    private_key_id: String,
    private_key_pem: String,
    public_key: PKey<Public>,
}

struct AccessToken {
    expires: Instant,
    revoked: bool,
}

struct State {
    token_url: String,
    account: Account,
    token_lifetime: u64,
    tokens: HashMap<String, AccessToken>,
    token_requests: usize,
    scripts: Scripts,
    attempts: HashMap<String, usize>,
    deliveries: Vec<FcmDelivery>,
    rejections: Vec<String>,
}

/// Google's token endpoint and FCM v1 on 127.0.0.1:<random port>; stops when dropped.
pub struct FcmReceiver {
    running: Running,
    state: Arc<Mutex<State>>,
}

fn random_string(bytes: usize) -> String {
    let mut buf = vec![0; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

impl FcmReceiver {
    /// Starts one on its own thread, with a fresh service account (an RSA-2048 key).
    pub fn start() -> FcmReceiver {
        // OpenSSL makes the key: the pure-Rust one takes seconds in a debug build.
        let rsa = Rsa::generate(2048).expect("generate an RSA key");
        let private = PKey::from_rsa(rsa).expect("RSA key");
        let pem = private.private_key_to_pem_pkcs8().expect("PKCS#8 PEM");
        let public = private.public_key_to_pem().expect("public key PEM");
        let project_id = "hubbub-test".to_owned();
        let account = Account {
            client_email: format!("hubbub-push@{project_id}.iam.gserviceaccount.com"),
            project_id,
            private_key_id: (0..20)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect(),
            private_key_pem: String::from_utf8(pem).expect("PEM is text"),
            public_key: PKey::public_key_from_pem(&public).expect("public key"),
        };
        let (listener, port) = Running::bind();
        let state = Arc::new(Mutex::new(State {
            token_url: format!("http://127.0.0.1:{port}/token"),
            account,
            token_lifetime: 3600,
            tokens: HashMap::new(),
            token_requests: 0,
            scripts: Scripts::default(),
            attempts: HashMap::new(),
            deliveries: Vec::new(),
            rejections: Vec::new(),
        }));
        let data = web::Data::from(state.clone());
        let running = Running::start(listener, move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(data.clone())
                .route("/token", web::post().to(token))
                .route("/v1/projects/{project}/messages:send", web::post().to(send))
                .default_service(web::to(unexpected));
        });
        FcmReceiver { running, state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("receiver state")
    }

    /// What the server gets as `HUBBUB_FCM_ENDPOINT`: `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.running.origin()
    }

    /// The token endpoint, the service account's `token_uri`.
    pub fn token_url(&self) -> String {
        self.state().token_url.clone()
    }

    /// The service account's project.
    pub fn project_id(&self) -> String {
        self.state().account.project_id.clone()
    }

    /// Writes the service account's JSON key file (as the Firebase console gives it) into
    /// `dir`; returns its path, for `HUBBUB_FCM_CREDENTIALS`.
    pub fn service_account(&self, dir: &Path) -> PathBuf {
        let state = self.state();
        let account = &state.account;
        let json = json!({
            "type": "service_account",
            "project_id": account.project_id,
            "private_key_id": account.private_key_id,
            "private_key": account.private_key_pem,
            "client_email": account.client_email,
            "client_id": "109876543210987654321",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": state.token_url,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!(
                "https://www.googleapis.com/robot/v1/metadata/x509/{}",
                account.client_email.replace('@', "%40")
            ),
            "universe_domain": "googleapis.com",
        });
        let path = dir.join("fcm-service-account.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&json).expect("JSON"))
            .expect("write the service account file");
        path
    }

    /// The `expires_in` of the next access tokens (3600 s unless set); they stop working then.
    pub fn token_lifetime(&self, secs: u64) {
        self.state().token_lifetime = secs;
    }

    /// Makes every access token issued so far invalid, as if Google revoked them: the next
    /// send with one is answered 401 (not a rejection: the server should get a new token).
    pub fn revoke_tokens(&self) {
        for token in self.state().tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// Answers the next sends to the device `token` with these, in order; then 200 again.
    /// `Reply::status(404)` is FCM's `UNREGISTERED`.
    pub fn script(&self, token: &str, replies: Vec<Reply>) {
        self.state().scripts.add(token, replies);
    }

    /// Answers the next token requests with these, in order; then a token again.
    pub fn script_token(&self, replies: Vec<Reply>) {
        self.state().scripts.add(TOKEN_SCRIPT, replies);
    }

    /// Every delivery so far, in order of arrival.
    pub fn deliveries(&self) -> Vec<FcmDelivery> {
        self.state().deliveries.clone()
    }

    /// The deliveries to the device `token`.
    pub fn deliveries_for(&self, token: &str) -> Vec<FcmDelivery> {
        let state = self.state();
        state
            .deliveries
            .iter()
            .filter(|d| d.token == token)
            .cloned()
            .collect()
    }

    /// Requests that failed a check, each with its reason (a test expects none).
    pub fn rejections(&self) -> Vec<String> {
        self.state().rejections.clone()
    }

    /// Requests to the token endpoint, whatever their answer.
    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    /// Sends to the device `token`, whatever their answer.
    pub fn attempts(&self, token: &str) -> usize {
        self.state().attempts.get(token).copied().unwrap_or(0)
    }

    /// Waits until at least `n` deliveries arrived (panics after `timeout`); returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<FcmDelivery> {
        server::wait_for(
            n,
            timeout,
            || self.deliveries(),
            || {
                let state = self.state();
                format!(
                    "token requests {}, attempts {:?}, rejections {:?}",
                    state.token_requests, state.attempts, state.rejections
                )
            },
        )
        .await
    }
}

/// `POST /token`: the JWT bearer grant (RFC 7523) as Google's endpoint takes it.
async fn token(req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>) -> HttpResponse {
    let mut state = state.lock().expect("receiver state");
    state.token_requests += 1;
    if let Err((error, reason)) = check_grant(&state, &req, &body) {
        state.rejections.push(format!("POST /token: {reason}"));
        return HttpResponse::BadRequest()
            .json(json!({ "error": error, "error_description": reason }));
    }
    if let Some(reply) = state.scripts.next(TOKEN_SCRIPT).filter(|r| !r.is_success()) {
        let error = match reply.status {
            400 => "invalid_grant",
            401 => "invalid_client",
            429 => "rate_limit_exceeded",
            _ => "internal_failure",
        };
        return with_retry_after(&reply)
            .json(json!({ "error": error, "error_description": "scripted" }));
    }
    let access_token = format!("ya29.c.{}", random_string(48));
    let lifetime = state.token_lifetime;
    state.tokens.insert(
        access_token.clone(),
        AccessToken {
            expires: Instant::now() + Duration::from_secs(lifetime),
            revoked: false,
        },
    );
    HttpResponse::Ok().json(json!({
        "access_token": access_token,
        "expires_in": lifetime,
        "token_type": "Bearer",
    }))
}

/// The grant's form and its assertion; `Err((OAuth error, reason))`.
fn check_grant(
    state: &State,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(), (&'static str, String)> {
    let invalid = |reason: String| ("invalid_request", reason);
    let content_type = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(invalid(format!(
            "Content-Type is {content_type:?}, not a form"
        )));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let grant_type = form.get("grant_type").map(String::as_str);
    if grant_type != Some(JWT_BEARER) {
        return Err((
            "unsupported_grant_type",
            format!("grant_type is {grant_type:?}"),
        ));
    }
    let assertion = form
        .get("assertion")
        .ok_or_else(|| invalid("no assertion in the form".into()))?;
    let bad = |reason: String| ("invalid_grant", reason);
    let account = &state.account;
    let (header, claims) = jwt::verify_rs256(assertion, &account.public_key).map_err(bad)?;
    if let Some(kid) = header.get("kid") {
        if kid != account.private_key_id.as_str() {
            return Err(bad(format!("kid {kid} is not the private_key_id")));
        }
    }
    let iss = jwt::string(&claims, "iss").map_err(bad)?;
    if iss != account.client_email {
        return Err(bad(format!("iss {iss:?} is not the client_email")));
    }
    let aud = jwt::string(&claims, "aud").map_err(bad)?;
    if aud != state.token_url {
        return Err(bad(format!(
            "aud {aud:?} is not the token_uri {:?}",
            state.token_url
        )));
    }
    let scope = jwt::string(&claims, "scope").map_err(bad)?;
    if !scope.split(' ').any(|s| s == SCOPE) {
        return Err(bad(format!("scope {scope:?} lacks {SCOPE}")));
    }
    let iat = jwt::number(&claims, "iat").map_err(bad)?;
    let exp = jwt::number(&claims, "exp").map_err(bad)?;
    let now = server::now();
    if iat > now + SKEW || exp <= now || exp <= iat || exp - iat > MAX_ASSERTION_LIFE {
        return Err(bad(format!(
            "iat {iat} and exp {exp} are not a token of at most an hour valid now ({now})"
        )));
    }
    Ok(())
}

/// Why a send is refused.
enum Refusal {
    /// A check failed: recorded as a rejection, answered with this status.
    Rejected(u16, String),
    /// The bearer was revoked by the test: 401, as Google would answer.
    Revoked,
}

/// `POST /v1/projects/{project}/messages:send`.
async fn send(
    req: HttpRequest,
    project: web::Path<String>,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let mut state = state.lock().expect("receiver state");
    let raw: Option<Value> = serde_json::from_slice(&body).ok();
    let device = raw
        .as_ref()
        .and_then(|r| r["message"]["token"].as_str())
        .unwrap_or_default()
        .to_owned();
    *state.attempts.entry(device.clone()).or_default() += 1;
    let delivery = match check_send(&state, &req, &project, raw) {
        Ok(delivery) => delivery,
        Err(Refusal::Revoked) => return google_error(&Reply::status(401), ""),
        Err(Refusal::Rejected(status, reason)) => {
            state
                .rejections
                .push(format!("POST {}: {reason}", req.path()));
            return google_error(&Reply::status(status), &reason);
        }
    };
    if let Some(reply) = state.scripts.next(&device).filter(|r| !r.is_success()) {
        return google_error(&reply, "scripted");
    }
    state.deliveries.push(delivery);
    let id = format!("0:{}%{:x}", rand::random::<u64>(), rand::random::<u64>());
    HttpResponse::Ok().json(json!({ "name": format!("projects/{project}/messages/{id}") }))
}

/// The bearer, the project, the content type and the message.
fn check_send(
    state: &State,
    req: &HttpRequest,
    project: &str,
    raw: Option<Value>,
) -> Result<FcmDelivery, Refusal> {
    let bearer = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let reject = |status: u16, reason: String| Refusal::Rejected(status, reason);
    match state.tokens.get(bearer) {
        None => {
            return Err(reject(
                401,
                format!("bearer {bearer:?} was not issued by /token"),
            ))
        }
        Some(t) if t.revoked => return Err(Refusal::Revoked),
        Some(t) if t.expires <= Instant::now() => {
            return Err(reject(401, "the bearer token expired".into()))
        }
        Some(_) => {}
    }
    if project != state.account.project_id {
        return Err(reject(
            403,
            format!("project {project:?} is not the service account's"),
        ));
    }
    let json = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(reject(400, "Content-Type is not application/json".into()));
    }
    let raw = raw.ok_or_else(|| reject(400, "the body is not JSON".into()))?;
    check_message(raw).map_err(|reason| reject(400, reason))
}

/// Any other request: a client that got the protocol wrong.
async fn unexpected(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    let reason = format!("unexpected request {} {}", req.method(), req.path());
    state
        .lock()
        .expect("receiver state")
        .rejections
        .push(reason.clone());
    google_error(&Reply::status(404), &reason)
}
