//! The hubbub calls the scenarios make, over awc exactly as clients do: register, bots,
//! rooms, sends, push subscriptions and the WebSocket stream. Also `on_threads`: one actix System per thread.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use awc::error::WsProtocolError;
use awc::ws;
use awc::{Client, Connector};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{json, Value};

/// A WebSocket connection as awc gives it (its codec type isn't re-exported by awc).
pub trait Socket:
    Stream<Item = Result<ws::Frame, WsProtocolError>> + Sink<ws::Message> + Unpin
{
}
impl<T> Socket for T where
    T: Stream<Item = Result<ws::Frame, WsProtocolError>> + Sink<ws::Message> + Unpin
{
}

/// A client without a connection limit, optionally bound to a source address.
pub fn client(source: Option<IpAddr>) -> Client {
    let mut connector = Connector::new()
        .limit(0)
        .timeout(Duration::from_secs(30))
        .conn_keep_alive(Duration::from_secs(300))
        .conn_lifetime(Duration::from_secs(3600));
    if let Some(ip) = source {
        connector = connector.local_address(ip);
    }
    Client::builder()
        .connector(connector)
        .timeout(Duration::from_secs(30))
        .max_http_version(awc::http::Version::HTTP_11)
        .finish()
}

/// Runs `f(i)` on `n` threads, each in its own actix System (awc is !Send); joins them all.
pub fn on_threads<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = T> + 'static,
{
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || actix_rt::System::new().block_on(f(i)))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a load thread panicked"))
        .collect()
}

/// Runs one future to completion in a fresh System on this thread (setup phases).
pub fn block<T>(fut: impl Future<Output = T>) -> T {
    actix_rt::System::new().block_on(fut)
}

/// A bot: its user id and its bearer token.
#[derive(Debug, Clone)]
pub struct Bot {
    pub id: String,
    pub token: String,
}

async fn json_of<S>(resp: &mut awc::ClientResponse<S>) -> Value
where
    S: Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    match resp.body().limit(1 << 20).await {
        Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Registers `username` and returns its session cookie (`hubbub_session=...`).
pub async fn register(c: &Client, base: &str, username: &str) -> Result<String, String> {
    let mut resp = c
        .post(format!("{base}/api/v1/users"))
        .send_json(&json!({"username": username, "password": "bench-password-1"}))
        .await
        .map_err(|e| format!("POST /api/v1/users: {e}"))?;
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hubbub_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    match (resp.status().as_u16(), cookie) {
        (201, Some(cookie)) => Ok(cookie),
        (status, _) => Err(format!(
            "POST /api/v1/users: {status} {}",
            json_of(&mut resp).await
        )),
    }
}

/// Creates a bot owned by the cookie's user.
pub async fn create_bot(c: &Client, base: &str, cookie: &str, name: &str) -> Result<Bot, String> {
    let mut resp = c
        .post(format!("{base}/api/v1/bots"))
        .insert_header(("Cookie", cookie))
        .send_json(&json!({"username": name}))
        .await
        .map_err(|e| format!("POST /api/v1/bots: {e}"))?;
    let body = json_of(&mut resp).await;
    let id = body["bot"]["id"].as_str();
    let token = body["token"]["token_secret"].as_str();
    match (resp.status().as_u16(), id, token) {
        (201, Some(id), Some(token)) => Ok(Bot {
            id: id.into(),
            token: token.into(),
        }),
        (status, ..) => Err(format!("POST /api/v1/bots: {status} {body}")),
    }
}

/// One user, then `n` bots of theirs named `{prefix}{i}`, `parallel` requests at a time.
pub async fn bots(base: &str, prefix: &str, n: usize, parallel: usize) -> Result<Vec<Bot>, String> {
    let c = client(None);
    let cookie = register(&c, base, &format!("{prefix}owner")).await?;
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let results: Vec<Result<Bot, String>> = futures_util::stream::iter(names)
        .map(|name| {
            let (c, cookie) = (c.clone(), cookie.clone());
            async move { create_bot(&c, base, &cookie, &name).await }
        })
        .buffered(parallel.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Creates a group room as `owner` with `members` (ids) and returns its id.
pub async fn create_room(
    base: &str,
    owner: &Bot,
    name: &str,
    members: &[String],
) -> Result<String, String> {
    let c = client(None);
    let mut resp = c
        .post(format!("{base}/api/v1/rooms"))
        .insert_header(("Authorization", format!("Bearer {}", owner.token)))
        .send_json(&json!({"name": name, "member_ids": members}))
        .await
        .map_err(|e| format!("POST /api/v1/rooms: {e}"))?;
    let body = json_of(&mut resp).await;
    match (resp.status().as_u16(), body["id"].as_str()) {
        (201, Some(id)) => Ok(id.to_string()),
        (status, _) => Err(format!("POST /api/v1/rooms: {status} {body}")),
    }
}

/// What a send came back with.
pub enum Sent {
    /// 201 carrying `message.id` (and the event id, if parsable).
    Acked { message_id: String, event_id: i64 },
    /// Anything else: the status (0: no response) and a short reason.
    Failed(u16, String),
}

/// `POST /api/v1/rooms/{room}/messages` as the bot with `token`.
pub async fn send(c: &Client, base: &str, token: &str, room: &str, body: &str) -> Sent {
    send_keyed(c, base, token, room, body, None).await
}

/// How a sender signs its requests: a bot's bearer token, or a browser's session cookie (sent
/// with the `Origin` a browser adds, as the CSRF guard requires).
#[derive(Debug, Clone)]
pub enum Auth {
    Bearer(String),
    Cookie(String),
}

/// A user who sends: their id and how they sign in.
#[derive(Debug, Clone)]
pub struct Sender {
    pub id: String,
    pub auth: Auth,
}

impl From<&Bot> for Sender {
    fn from(bot: &Bot) -> Sender {
        Sender {
            id: bot.id.clone(),
            auth: Auth::Bearer(bot.token.clone()),
        }
    }
}

/// The id of the user a session cookie belongs to (`GET /api/v1/me`).
pub async fn me(c: &Client, base: &str, cookie: &str) -> Result<String, String> {
    let mut resp = c
        .get(format!("{base}/api/v1/me"))
        .insert_header(("Cookie", cookie))
        .send()
        .await
        .map_err(|e| format!("GET /api/v1/me: {e}"))?;
    let body = json_of(&mut resp).await;
    match (resp.status().as_u16(), body["id"].as_str()) {
        (200, Some(id)) => Ok(id.to_string()),
        (status, _) => Err(format!("GET /api/v1/me: {status} {body}")),
    }
}

/// [`send`], with an `Idempotency-Key` header if `key` is given.
pub async fn send_keyed(
    c: &Client,
    base: &str,
    token: &str,
    room: &str,
    body: &str,
    key: Option<&str>,
) -> Sent {
    send_as(c, base, &Auth::Bearer(token.into()), room, body, key).await
}

/// A send signed as `auth`, with an `Idempotency-Key` header if `key` is given.
pub async fn send_as(
    c: &Client,
    base: &str,
    auth: &Auth,
    room: &str,
    body: &str,
    key: Option<&str>,
) -> Sent {
    let req = c.post(format!("{base}/api/v1/rooms/{room}/messages"));
    let mut req = match auth {
        Auth::Bearer(token) => req.insert_header(("Authorization", format!("Bearer {token}"))),
        Auth::Cookie(cookie) => req
            .insert_header(("Cookie", cookie.as_str()))
            .insert_header(("Origin", base)),
    };
    if let Some(key) = key {
        req = req.insert_header(("Idempotency-Key", key));
    }
    let resp = req.send_json(&json!({ "body": body })).await;
    let mut resp = match resp {
        Ok(r) => r,
        Err(e) => return Sent::Failed(0, e.to_string()),
    };
    let status = resp.status().as_u16();
    let v = json_of(&mut resp).await;
    match (status, v["message"]["id"].as_str()) {
        (201, Some(id)) => Sent::Acked {
            message_id: id.to_string(),
            event_id: v["event_id"]
                .as_str()
                .and_then(|e| e.parse().ok())
                .unwrap_or(0),
        },
        (201, None) => Sent::Failed(201, "201 without message.id".into()),
        _ => Sent::Failed(
            status,
            v["error"]["code"]
                .as_str()
                .unwrap_or("no error code")
                .to_string(),
        ),
    }
}

/// An answer's status and its `error.code` (empty if it has none); status 0 and the client's
/// error if there was no answer.
pub async fn answer<S>(
    resp: Result<awc::ClientResponse<S>, awc::error::SendRequestError>,
) -> (u16, String)
where
    S: Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    match resp {
        Ok(mut resp) => {
            let v = json_of(&mut resp).await;
            let code = v["error"]["code"].as_str().unwrap_or("");
            (resp.status().as_u16(), code.to_string())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// `POST /api/v1/push/subscriptions` as the bot with `token`: a Web Push subscription to
/// `endpoint` with `keys` (`p256dh`, `auth`). The status (201: made; 200: it
/// already was) and its error code.
pub async fn subscribe_webpush(
    c: &Client,
    base: &str,
    token: &str,
    endpoint: &str,
    keys: &(String, String),
) -> (u16, String) {
    let resp = c
        .post(format!("{base}/api/v1/push/subscriptions"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_json(&json!({
            "kind": "webpush",
            "endpoint": endpoint,
            "keys": {"p256dh": keys.0, "auth": keys.1},
        }))
        .await;
    answer(resp).await
}

/// `POST /api/v1/attachments` as the bot with `token`, `bytes` in the `file` field.
pub async fn upload(c: &Client, base: &str, token: &str, bytes: &[u8]) -> (u16, String) {
    let boundary = "hubbub-bench-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.img\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let resp = c
        .post(format!("{base}/api/v1/attachments"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header((
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        ))
        .send_body(body)
        .await;
    answer(resp).await
}

/// Opens the stream as the bot with `token`, from `since` if given.
pub async fn connect(
    c: &Client,
    ws_base: &str,
    token: &str,
    since: Option<i64>,
) -> Result<impl Socket, String> {
    let url = match since {
        Some(s) => format!("{ws_base}/api/v1/stream?since={s}"),
        None => format!("{ws_base}/api/v1/stream"),
    };
    let (resp, socket) = c
        .ws(url)
        .header("Authorization", format!("Bearer {token}"))
        .max_frame_size(1 << 20)
        .connect()
        .await
        .map_err(|e| format!("GET /api/v1/stream: {e}"))?;
    if resp.status().as_u16() != 101 {
        return Err(format!("GET /api/v1/stream: {}", resp.status()));
    }
    Ok(socket)
}

/// A frame the scenarios care about.
pub enum Frame {
    /// `hello`.
    Hello,
    /// `message.created`: event id and message id.
    Message(i64, String),
    /// Any other event (its id).
    Other(i64),
    /// Closed (with the reason, if any).
    Closed(String),
}

/// The next meaningful frame; answers pings on the way. `None` if the stream ended.
pub async fn next_frame(socket: &mut impl Socket) -> Option<Frame> {
    loop {
        match socket.next().await? {
            Ok(ws::Frame::Text(bytes)) => {
                let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let id = v["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                return Some(match (v["type"].as_str(), v["event"].as_str()) {
                    (Some("hello"), _) => Frame::Hello,
                    (Some("event"), Some("message.created")) => {
                        Frame::Message(id, v["data"]["id"].as_str().unwrap_or("").to_string())
                    }
                    (Some("resync_required"), _) => Frame::Closed("resync_required".into()),
                    _ => Frame::Other(id),
                });
            }
            Ok(ws::Frame::Ping(p)) => {
                let _ = socket.send(ws::Message::Pong(p)).await;
            }
            Ok(ws::Frame::Close(reason)) => return Some(Frame::Closed(format!("{reason:?}"))),
            Ok(_) => {}
            Err(e) => return Some(Frame::Closed(e.to_string())),
        }
    }
}
