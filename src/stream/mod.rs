//! `GET /api/v1/stream`: the read-only WebSocket. The upgrade is checked here (session,
//! `Origin`, cursor); `socket` runs the connection: hello, replay, then live.

mod socket;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::api::auth::Caller;
use crate::api::middleware::origin_allowed;
use crate::error::Error;
use crate::events;
use crate::state::AppState;
use crate::store;

pub use socket::close_codes;

#[derive(Deserialize)]
pub struct StreamQuery {
    since: Option<String>,
}

/// Upgrades to the event stream, or answers 400/401/403/503 with the error envelope.
pub async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, Error> {
    // Cross-site WebSocket hijacking: a browser sends the cookie with any page's upgrade.
    if !origin_allowed(&req, &state.settings) {
        return Err(Error::forbidden(
            "origin_not_allowed",
            "this Origin may not open the stream",
        ));
    }
    let caller = Caller::of(&req)?;
    let since = match query.since.as_deref() {
        None => None,
        Some(raw) => Some(
            events::parse_cursor(raw)
                .ok_or_else(|| Error::bad_request("invalid_cursor", "since must be a cursor"))?,
        ),
    };
    // Register first, then check the session: a logout that commits in between is either seen
    // here (the row is gone) or reaches this socket through the hub. Never neither.
    let registration = state
        .hub
        .register(caller.user, caller.credential, state.settings.stream_queue)
        .ok_or_else(|| Error::unavailable(anyhow::anyhow!("shutting down")))?;
    let socket_id = registration.socket;
    let session = caller.credential;
    let checked = state
        .db
        .run(move |conn| {
            Ok((
                store::events::head(conn)?,
                store::events::pruned_through(conn)?,
                store::sessions::expiry(conn, session)?,
            ))
        })
        .await;
    let refuse = |e: Error| {
        state.hub.unregister(caller.user, socket_id);
        Err(e)
    };
    let (head, pruned, expires) = match checked {
        Ok(v) => v,
        Err(e) => return refuse(e),
    };
    let Some(expires) = expires else {
        return refuse(Error::unauthenticated());
    };
    if since.is_some_and(|s| s > head) {
        return refuse(Error::bad_request(
            "invalid_cursor",
            "since is ahead of the event log",
        ));
    }
    let (response, ws, messages) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(e) => {
            state.hub.unregister(caller.user, socket_id);
            return Err(Error::bad_request(
                "not_a_websocket",
                format!("expected a WebSocket upgrade: {e}"),
            ));
        }
    };
    let ctx = socket::Context {
        state: state.get_ref().clone(),
        caller,
        since,
        head,
        resync: since.is_some_and(|s| s < pruned),
        expires,
    };
    actix_web::rt::spawn(socket::run(ctx, registration, ws, messages));
    Ok(response)
}
