//! A Web Push service on loopback (RFC 8030): it checks each push's VAPID signature (RFC 8292)
//! and headers, decrypts it with the subscription's keys (RFC 8291) and records it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{json, Value};

use super::jwt;
use super::keys::PushKeys;
use super::server::{self, Reply, Running, Scripts};

/// RFC 8030 §7.2: the largest body a push service must take.
const MAX_BODY: usize = 4096;
/// RFC 8292 §2: a push service may reject a JWT that expires more than 24 hours ahead.
const MAX_EXP_AHEAD: u64 = 24 * 3600;

/// base64url with or without padding, as `k` may come.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One push that passed every check and was decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct WebPushDelivery {
    /// The endpoint's name (`/push/<name>`).
    pub name: String,
    pub ttl: u32,
    pub topic: Option<String>,
    pub urgency: Option<String>,
    /// The decrypted body, parsed.
    pub payload: Value,
}

#[derive(Default)]
struct State {
    origin: String,
    keys: HashMap<String, PushKeys>,
    vapid: Option<Vec<u8>>,
    scripts: Scripts,
    attempts: HashMap<String, usize>,
    deliveries: Vec<WebPushDelivery>,
    rejections: Vec<String>,
}

/// A Web Push service on 127.0.0.1:<random port>; stops when dropped.
pub struct WebPushReceiver {
    running: Running,
    state: Arc<Mutex<State>>,
}

impl WebPushReceiver {
    /// Starts one on its own thread.
    pub fn start() -> WebPushReceiver {
        let (listener, port) = Running::bind();
        let state = Arc::new(Mutex::new(State {
            origin: format!("http://127.0.0.1:{port}"),
            ..State::default()
        }));
        let data = web::Data::from(state.clone());
        let running = Running::start(listener, move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(data.clone())
                .route("/push/{name}", web::post().to(push))
                .default_service(web::to(unexpected));
        });
        WebPushReceiver { running, state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("receiver state")
    }

    /// The push resource of the subscription `name`: `http://127.0.0.1:<port>/push/<name>`.
    pub fn endpoint(&self, name: &str) -> String {
        format!("{}/push/{name}", self.running.origin())
    }

    /// The keys that decrypt what is pushed to `name`; returns its endpoint.
    pub fn register(&self, name: &str, keys: PushKeys) -> String {
        self.state().keys.insert(name.to_owned(), keys);
        self.endpoint(name)
    }

    /// Makes keys for `name`, registers them, and returns the browser's subscription JSON.
    pub fn subscribe(&self, name: &str) -> Value {
        let keys = PushKeys::new();
        let json = keys.subscription_json(&self.endpoint(name));
        self.register(name, keys);
        json
    }

    /// The server's VAPID public key (base64url of the uncompressed point) that every `k` must
    /// be and every JWT must verify with.
    pub fn vapid_key(&self, public_key: &str) {
        let key = LENIENT
            .decode(public_key)
            .unwrap_or_else(|e| panic!("VAPID key {public_key:?} is not base64url: {e}"));
        assert!(
            key.len() == 65 && key[0] == 4,
            "VAPID key {public_key:?} is not an uncompressed P-256 point"
        );
        self.state().vapid = Some(key);
    }

    /// Answers the next pushes to `name` with these, in order; then 201 again.
    pub fn script(&self, name: &str, replies: Vec<Reply>) {
        self.state().scripts.add(name, replies);
    }

    /// Every delivery so far, in order of arrival.
    pub fn deliveries(&self) -> Vec<WebPushDelivery> {
        self.state().deliveries.clone()
    }

    /// The deliveries to `name`.
    pub fn deliveries_for(&self, name: &str) -> Vec<WebPushDelivery> {
        let state = self.state();
        state
            .deliveries
            .iter()
            .filter(|d| d.name == name)
            .cloned()
            .collect()
    }

    /// Requests that failed a check, each with its reason (a test expects none).
    pub fn rejections(&self) -> Vec<String> {
        self.state().rejections.clone()
    }

    /// Requests to `name`, whatever their answer (scripted failures and rejections included).
    pub fn attempts(&self, name: &str) -> usize {
        self.state().attempts.get(name).copied().unwrap_or(0)
    }

    /// Waits until at least `n` deliveries arrived (panics after `timeout`); returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<WebPushDelivery> {
        server::wait_for(
            n,
            timeout,
            || self.deliveries(),
            || {
                let state = self.state();
                format!(
                    "attempts {:?}, rejections {:?}",
                    state.attempts, state.rejections
                )
            },
        )
        .await
    }
}

/// `POST /push/{name}`: checked, decrypted, recorded, answered as scripted.
async fn push(
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let name = name.into_inner();
    let mut state = state.lock().expect("receiver state");
    *state.attempts.entry(name.clone()).or_default() += 1;
    let delivery = match check(&state, &req, &name, &body) {
        Ok(delivery) => delivery,
        Err((status, reason)) => {
            state
                .rejections
                .push(format!("POST /push/{name}: {reason}"));
            return answer(&Reply::status(status), &reason);
        }
    };
    let reply = state.scripts.next(&name).unwrap_or(Reply::status(201));
    if !reply.is_success() {
        return answer(&reply, "scripted");
    }
    let ttl = delivery.ttl;
    state.deliveries.push(delivery);
    HttpResponse::build(status_code(reply.status))
        .insert_header(("Location", format!("/message/{}", uuid::Uuid::new_v4())))
        .insert_header(("TTL", ttl.to_string()))
        .finish()
}

/// Any other request: a client that got the protocol wrong.
async fn unexpected(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    let reason = format!("unexpected request {} {}", req.method(), req.path());
    state
        .lock()
        .expect("receiver state")
        .rejections
        .push(reason.clone());
    answer(&Reply::status(404), &reason)
}

fn status_code(status: u16) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status).expect("a valid status")
}

/// An error answer in autopush's shape (`reply` is not a success).
fn answer(reply: &Reply, message: &str) -> HttpResponse {
    let status = status_code(reply.status);
    let mut resp = HttpResponse::build(status);
    if let Some(secs) = reply.retry_after {
        resp.insert_header(("Retry-After", secs.to_string()));
    }
    resp.json(json!({
        "code": reply.status,
        "errno": if reply.status == 410 { 106 } else { 999 },
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    }))
}

type Rejected = (u16, String);

fn header<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, Rejected> {
    req.headers()
        .get(name)
        .map(|v| v.to_str().map_err(|_| (400, format!("{name} is not text"))))
        .transpose()
}

/// Every check of one push; the delivery it makes if all pass.
fn check(
    state: &State,
    req: &HttpRequest,
    name: &str,
    body: &[u8],
) -> Result<WebPushDelivery, Rejected> {
    let keys = state
        .keys
        .get(name)
        .ok_or((404, format!("no subscription is registered as {name:?}")))?;
    match header(req, "Content-Encoding")? {
        Some(enc) if enc.eq_ignore_ascii_case("aes128gcm") => {}
        other => return Err((400, format!("Content-Encoding is {other:?}, not aes128gcm"))),
    }
    let ttl = header(req, "TTL")?
        .ok_or((400, "no TTL header".to_owned()))?
        .parse::<u32>()
        .map_err(|e| (400, format!("TTL is not a number of seconds: {e}")))?;
    let urgency = header(req, "Urgency")?.map(str::to_owned);
    if let Some(u) = &urgency {
        if !["very-low", "low", "normal", "high"].contains(&u.as_str()) {
            return Err((
                400,
                format!("Urgency {u:?} is not very-low, low, normal or high"),
            ));
        }
    }
    let topic = header(req, "Topic")?.map(str::to_owned);
    if let Some(t) = &topic {
        // RFC 8030 §5.4: at most 32 characters of the base64url alphabet.
        let url_safe = t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if t.is_empty() || t.len() > 32 || !url_safe {
            return Err((400, format!("Topic {t:?} is not 1-32 base64url characters")));
        }
    }
    check_vapid(state, header(req, "Authorization")?)?;
    if body.len() > MAX_BODY {
        return Err((
            413,
            format!("the body is {} bytes, over {MAX_BODY}", body.len()),
        ));
    }
    let plaintext = keys.decrypt(body).map_err(|e| (400, e))?;
    let payload = serde_json::from_slice(&plaintext).map_err(|e| {
        let text = String::from_utf8_lossy(&plaintext);
        (
            400,
            format!("the decrypted payload is not JSON ({e}): {text:?}"),
        )
    })?;
    Ok(WebPushDelivery {
        name: name.to_owned(),
        ttl,
        topic,
        urgency,
        payload,
    })
}

/// `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292 §3): the server's key, a valid signature
/// and the claims a push service requires.
fn check_vapid(state: &State, authorization: Option<&str>) -> Result<(), Rejected> {
    let unauthorized = |reason: String| (401, reason);
    let auth = authorization.ok_or_else(|| unauthorized("no Authorization header".into()))?;
    let params = auth
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("vapid"))
        .map(|(_, params)| params)
        .ok_or_else(|| unauthorized(format!("Authorization {auth:?} is not the vapid scheme")))?;
    let mut t = None;
    let mut k = None;
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.trim()),
            Some(("k", v)) => k = Some(v.trim()),
            _ => {
                return Err(unauthorized(format!(
                    "Authorization has a stray part {param:?}"
                )))
            }
        }
    }
    let (t, k) = t
        .zip(k)
        .ok_or_else(|| unauthorized(format!("Authorization {auth:?} lacks t= or k=")))?;
    let k = LENIENT
        .decode(k)
        .map_err(|e| unauthorized(format!("k is not base64url: {e}")))?;
    let expected = state
        .vapid
        .as_ref()
        .ok_or_else(|| unauthorized("the test set no VAPID key on the receiver".into()))?;
    if &k != expected {
        return Err((403, "k is not the server's VAPID public key".into()));
    }
    let claims = jwt::verify_es256(t, &k).map_err(unauthorized)?;
    let aud = jwt::string(&claims, "aud").map_err(unauthorized)?;
    if aud != state.origin {
        return Err(unauthorized(format!(
            "aud is {aud:?}, not the push resource's origin {:?}",
            state.origin
        )));
    }
    let exp = jwt::number(&claims, "exp").map_err(unauthorized)?;
    let now = server::now();
    if exp <= now {
        return Err(unauthorized(format!("exp {exp} is not after now ({now})")));
    }
    if exp > now + MAX_EXP_AHEAD {
        return Err(unauthorized(format!(
            "exp {exp} is more than 24 h after now ({now})"
        )));
    }
    let sub = jwt::string(&claims, "sub").map_err(unauthorized)?;
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err(unauthorized(format!(
            "sub {sub:?} is not a mailto: or https: URL"
        )));
    }
    Ok(())
}
