//! `GET /api/v1/stream/sse`: the stream as Server-Sent Events, for clients that would rather
//! read an HTTP response than hold a WebSocket (`EventSource` in a browser, `curl -N`).
//!
//! The same subscription as the socket (authentication, `Origin`, scopes, cursor, caps), the
//! same catch-up and the same frames: each frame is one SSE message whose `data:` is the
//! socket's JSON text, `event:` its type (`message.created`…, or `hello`, `resync_required`,
//! `close`), and `id:` the cursor to resume from after it (an event's id; the cursor of `hello`
//! and `resync_required`), so that `EventSource` reconnects with `Last-Event-ID` exactly where
//! it was. Heartbeats are comments; a close is an `event: close` message, then the end of the
//! response.
//!
//! A task of its own drives the stream and writes messages into a small channel that the
//! response body reads. A client that stops reading has its connection cut after the socket's
//! write timeout (two heartbeats); one that leaves is noticed within a second. Either way the
//! task ends and its hub registration (its slot under the caps) with it.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::domain::Time;
use crate::error::Error;
use crate::events;
use crate::realtime::hub::{Close, Registration};
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;
use crate::server::stream::peer::{self, Peer};
use crate::server::stream::session::{
    catch_up, closing, credential_expired, expiry, Context, End, Ending, Gone, Out, Sink,
};
use crate::server::stream::subscribe::subscribe;

/// Messages written ahead of what the connection has taken: the hub's queue holds the rest.
const AHEAD: usize = 16;
/// A heartbeat: a comment, which `EventSource` ignores.
const PING: &[u8] = b": ping\n\n";

#[derive(Deserialize)]
pub struct SseQuery {
    since: Option<String>,
    ticket: Option<String>,
}

/// Opens the event stream as `text/event-stream`, or answers 400/401/403/429/503 with the error
/// envelope.
#[utoipa::path(operation_id = "stream_sse", get, path = "/api/v1/stream/sse", tag = "stream", params(("since" = Option<String>, Query, description = "resume after this cursor (the Last-Event-ID header wins)"), ("ticket" = Option<String>, Query, description = "a stream ticket instead of a cookie or token"), ("Last-Event-ID" = Option<String>, Header, description = "resume after this cursor: what EventSource sends when it reconnects")), responses((status = 200, description = "Server-Sent Events: each frame of docs/events.md as a message (`event:` its type, `id:` its cursor, `data:` the frame); heartbeats as comments", content_type = "text/event-stream", body = String), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn sse(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SseQuery>,
) -> Result<HttpResponse, Error> {
    let since = match last_event_id(&req)? {
        Some(id) => Some(id),
        None => query.since.clone(),
    };
    let sub = subscribe(&state, &req, since.as_deref(), query.ticket.as_deref()).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(AHEAD);
    let out = SseOut {
        tx,
        write_timeout: state.settings.heartbeat * 2,
        peer: Peer::of_request(&req),
    };
    let (ctx, registration) = Context::of(state.get_ref().clone(), sub);
    actix_web::rt::spawn(run(ctx, registration, out));
    let body = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|next| next.map(Ok::<_, Infallible>))
    });
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        // nginx: pass each message on as it comes instead of buffering the response.
        .insert_header(("X-Accel-Buffering", HeaderValue::from_static("no")))
        .streaming(body))
}

/// The `Last-Event-ID` header as a cursor, if sent and not empty; 400 if it isn't a cursor.
fn last_event_id(req: &HttpRequest) -> Result<Option<String>, Error> {
    let Some(value) = req.headers().get("last-event-id") else {
        return Ok(None);
    };
    let bad = || Error::bad_request("invalid_cursor", "Last-Event-ID must be a cursor");
    let value = value.to_str().map_err(|_| bad())?.trim();
    if value.is_empty() {
        return Ok(None);
    }
    events::parse_cursor(value).ok_or_else(bad)?;
    Ok(Some(value.to_owned()))
}

/// The response body's end of the stream.
struct SseOut {
    tx: mpsc::Sender<Bytes>,
    /// How long a message may wait for the connection to take the ones ahead of it.
    write_timeout: Duration,
    peer: Option<Peer>,
}

impl SseOut {
    async fn write(&mut self, bytes: Bytes) -> Result<(), Gone> {
        match tokio::time::timeout(self.write_timeout, self.tx.send(bytes)).await {
            Ok(Ok(())) => Ok(()),
            // The response (and its connection) is gone.
            Ok(Err(_)) => Err(Gone),
            // The client stopped reading: cut its connection, which actix-http would
            // otherwise keep writing to for as long as TCP holds it up. The body is still
            // alive (the send would have failed otherwise), so the descriptor is its own.
            Err(_) => {
                if let Some(peer) = self.peer.filter(|_| !self.tx.is_closed()) {
                    peer.cut();
                }
                Err(Gone)
            }
        }
    }
}

impl Sink for SseOut {
    async fn send(&mut self, out: Out) -> Result<(), Gone> {
        let bytes = match out {
            Out::Hello(text, cursor) => message(Some(cursor), "hello", &text),
            Out::Resync(text, cursor) => message(Some(cursor), "resync_required", &text),
            Out::Event(id, text) => message(
                Some(id),
                events::frame_kind(&text).unwrap_or("event"),
                &text,
            ),
        };
        self.write(bytes).await
    }
}

/// One SSE message. A frame is compact JSON (no line breaks); were one ever to hold some (JSON
/// whitespace), each line becomes a `data:` line of its own, which the client joins with `\n`.
fn message(id: Option<i64>, event: &str, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + event.len() + 40);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&events::cursor(id));
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(event);
    out.push('\n');
    for line in data.split(['\r', '\n']) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// The `data` of the `close` message: what a WebSocket close frame carries, and the cursor to
/// resume from when the code asks for a resume.
#[derive(Serialize)]
struct CloseFrame<'a> {
    r#type: &'static str,
    code: u16,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

/// Runs the stream until it ends; it leaves the hub when `drive` returns, then says why.
async fn run(ctx: Context, registration: Registration, mut out: SseOut) {
    let end = drive(&ctx, registration, &mut out).await;
    if let End::Close(Ending {
        code,
        reason,
        cursor,
    }) = end
    {
        let frame = CloseFrame {
            r#type: "close",
            code,
            reason: &reason,
            cursor: cursor.map(events::cursor),
        };
        let data = serde_json::to_string(&frame).unwrap_or_default();
        let _ = out.write(message(cursor, "close", &data)).await;
    }
    // `out` is dropped here: the body ends once the client has read what is queued.
}

async fn drive(ctx: &Context, reg: Registration, out: &mut SseOut) -> End {
    let Registration {
        position,
        mut frames,
        lease: _lease,
    } = reg;
    let mut last = match Box::pin(catch_up(ctx, position, &frames, &mut *out)).await {
        Ok(last) => last,
        Err(end) => return end,
    };
    let heartbeat = ctx.state.settings.heartbeat;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let expiry = expiry(ctx);
    tokio::pin!(expiry);
    let mut expiry_armed = ctx.expires.is_some();
    let left = peer::left(out.peer);
    tokio::pin!(left);
    // A handle of its own to watch the body with (`out` is written to in the loop).
    let body = out.tx.clone();
    loop {
        tokio::select! {
            _ = &mut expiry, if expiry_armed => {
                expiry_armed = false;
                if Box::pin(credential_expired(ctx)).await {
                    return End::Close(closing(Close::Expired, last));
                }
            }
            frame = frames.recv() => match frame {
                Some((id, text)) => {
                    if id <= last {
                        continue; // already replayed
                    }
                    if out.send(Out::Event(id, text)).await.is_err() {
                        return End::Gone;
                    }
                    last = id;
                }
                // The hub closed or dropped us: the queue says why.
                None => return End::Close(closing(frames.closed().unwrap_or(Close::Resume), last)),
            },
            _ = tick.tick() => {
                if ctx.expires.is_some_and(|at| Time::now() >= at)
                    && Box::pin(credential_expired(ctx)).await
                {
                    return End::Close(closing(Close::Expired, last));
                }
                if out.write(Bytes::from_static(PING)).await.is_err() {
                    return End::Gone;
                }
            }
            // The client closed its connection, or actix-http dropped the response.
            _ = &mut left => return End::Gone,
            _ = body.closed() => return End::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_names_its_event_and_carries_the_frame_as_data() {
        let m = message(Some(42), "message.created", r#"{"type":"event","id":"42"}"#);
        assert_eq!(
            m,
            "id: 42\nevent: message.created\ndata: {\"type\":\"event\",\"id\":\"42\"}\n\n"
        );
        let m = message(None, "close", "{\n\"a\":1}");
        assert_eq!(m, "event: close\ndata: {\ndata: \"a\":1}\n\n");
    }
}
