//! `GET /api/v1/events?since=&timeout=`: the long poll, for bots that don't hold a socket.
//! It answers as soon as there is at least one event after `since` (or empty at the timeout)
//! with the next cursor: the same cursor and the same event frames as the socket, so a client
//! can switch between the two without missing or repeating anything.

use std::time::Duration;

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::core::replay;
use crate::error::{Class, Error};
use crate::events;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;
use crate::server::stream::peer;
use crate::server::stream::subscribe::{subscribe, Subscription};

/// The longest a poll may wait.
pub const MAX_TIMEOUT_S: u64 = 60;
/// Events one answer carries at most; the cursor then lets the client ask for the rest.
const PAGE: i64 = 500;

#[derive(Deserialize)]
pub struct PollQuery {
    since: Option<String>,
    timeout: Option<String>,
}

/// A long poll's answer: event frames exactly as the socket sends them, and the next cursor.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the JSON built in `page`
pub struct EventPage {
    events: Vec<serde_json::Value>,
    cursor: String,
}

/// Long-polls the caller's events.
#[utoipa::path(operation_id = "poll_events", get, path = "/api/v1/events", tag = "stream", params(("since" = Option<String>, Query, description = "the cursor"), ("timeout" = Option<u64>, Query, description = "0-60 seconds, default 30")), responses((status = 200, body = EventPage), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PollQuery>,
) -> Result<HttpResponse, Error> {
    let timeout = match query.timeout.as_deref() {
        None => 30,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|t| *t <= MAX_TIMEOUT_S)
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_query",
                    format!("timeout must be 0 to {MAX_TIMEOUT_S} seconds"),
                )
            })?,
    };
    // The registration's lease goes with `sub`: released when the poll answers, or when a
    // client that leaves drops this future.
    let sub = subscribe(&state, &req, query.since.as_deref(), None).await?;
    let body = poll(&state, &req, sub, Duration::from_secs(timeout)).await?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body))
}

/// `{"events":[frames…],"cursor":"N"}`, with the frames as they are.
fn page(frames: &[String], cursor: i64) -> String {
    format!(
        r#"{{"events":[{}],"cursor":"{}"}}"#,
        frames.join(","),
        events::cursor(cursor)
    )
}

async fn poll(
    state: &AppState,
    req: &HttpRequest,
    mut sub: Subscription,
    timeout: Duration,
) -> Result<String, Error> {
    let upto = sub.head.max(sub.registration.position);
    if sub.resync {
        let frame = format!(
            r#"{{"type":"resync_required","cursor":"{}"}}"#,
            events::cursor(upto)
        );
        return Ok(page(&[frame], upto));
    }
    let start = sub.start();
    if start < upto {
        let user = sub.caller.user;
        let missed = replay::page(&state.db, user, start, upto, PAGE).await?;
        if let Some(&(last, _)) = missed.frames.last() {
            let cursor = if missed.full { last } else { upto };
            let frames: Vec<String> = missed.frames.into_iter().map(|(_, f)| f).collect();
            return Ok(page(&frames, cursor));
        }
    }
    // Nothing yet: wait for the hub to hand over the next event visible to the caller.
    let mut cursor = start.max(upto);
    let mut frames = Vec::new();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = sub.registration.frames.recv() => match next {
                Some((id, _)) if id <= cursor => continue,
                Some((id, text)) => {
                    frames.push(text.to_string());
                    cursor = id;
                    // Take whatever else is already queued, then answer.
                    while let Some((id, text)) = sub.registration.frames.try_recv() {
                        if id > cursor {
                            frames.push(text.to_string());
                            cursor = id;
                        }
                    }
                    break;
                }
                None => break,
            },
            _ = &mut deadline => break,
            // Nobody to answer: end now, and the registration with it.
            _ = peer::gone(req) => return Err(Error::new(Class::ClientClosed, "client_closed", "the client left")),
        }
    }
    Ok(page(&frames, cursor))
}
