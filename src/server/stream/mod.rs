//! `GET /api/v1/stream`: the read-only WebSocket. The upgrade is checked here (session,
//! `Origin`, cursor); `socket` runs the connection: hello, replay, then live. Beside it the
//! other transports of the same subscription: `sse` (Server-Sent Events) and `poll` (the long
//! poll); `session` is what the socket and SSE share.

pub mod peer;
pub mod poll;
mod session;
mod socket;
pub mod sse;
mod subscribe;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::error::Error;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;
use subscribe::subscribe;

pub use session::close_codes;

#[derive(Deserialize)]
pub struct StreamQuery {
    since: Option<String>,
    ticket: Option<String>,
}

/// Upgrades to the event stream, or answers 400/401/403/503 with the error envelope.
#[utoipa::path(operation_id = "stream_connect", get, path = "/api/v1/stream", tag = "stream", params(("since" = Option<String>, Query, description = "resume after this cursor"), ("ticket" = Option<String>, Query, description = "a stream ticket instead of a cookie or token")), responses((status = 101, description = "switching to the WebSocket: frames in docs/events.md"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, Error> {
    let sub = subscribe(
        &state,
        &req,
        query.since.as_deref(),
        query.ticket.as_deref(),
    )
    .await?;
    let (response, ws, messages) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        // `sub` is dropped, and its registration with it.
        Err(e) => {
            return Err(Error::bad_request(
                "not_a_websocket",
                format!("expected a WebSocket upgrade: {e}"),
            ));
        }
    };
    actix_web::rt::spawn(socket::run(state.get_ref().clone(), sub, ws, messages));
    Ok(response)
}
