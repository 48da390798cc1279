//! Opening a subscription to the log, shared by the socket and the long poll: who is asking,
//! from which cursor, and a hub registration that catches everything after it.

use actix_web::HttpRequest;

use crate::core::presence::Online;
use crate::core::replay;
use crate::core::tokens::{self, Scopes};
use crate::domain::Time;
use crate::error::{Class, Error};
use crate::events;
use crate::realtime::hub::{Refused, Registration};
use crate::server::api::auth::Caller;
use crate::server::api::middleware::origin_allowed;
use crate::server::state::AppState;

/// A caller registered with the hub, and where their stream starts.
pub struct Subscription {
    pub caller: Caller,
    pub since: Option<i64>,
    /// The newest committed event when it opened.
    pub head: i64,
    /// The cursor is older than the retained log.
    pub resync: bool,
    /// When the credential expires, if it does.
    pub expires: Option<Time>,
    pub registration: Registration,
    /// The stream counts for the caller's presence while this lives.
    pub presence: Online,
}

impl Subscription {
    /// Where the stream starts for the client: `since`, or the head when absent.
    pub fn start(&self) -> i64 {
        self.since
            .unwrap_or(self.head.max(self.registration.position))
    }
}

/// Authenticates (a `ticket`, a bearer token, or the session cookie from an allowed Origin),
/// checks the cursor, and registers with the hub.
pub async fn subscribe(
    state: &AppState,
    req: &HttpRequest,
    since: Option<&str>,
    ticket: Option<&str>,
) -> Result<Subscription, Error> {
    let since = match since {
        None => None,
        Some(raw) => Some(
            events::parse_cursor(raw)
                .ok_or_else(|| Error::bad_request("invalid_cursor", "since must be a cursor"))?,
        ),
    };
    let caller = match ticket {
        Some(ticket) => {
            let (user, credential) = tokens::redeem_ticket(&state.db, ticket).await?;
            Caller {
                user,
                credential,
                scopes: Scopes::ALL,
                expires: None,
                bearer: true,
            }
        }
        None => {
            let caller = Caller::authenticate(req).await?;
            // Cross-site WebSocket hijacking: a browser sends the cookie with any page's upgrade.
            if !caller.bearer && !origin_allowed(req, &state.settings) {
                return Err(Error::forbidden(
                    "origin_not_allowed",
                    "this Origin may not open the stream",
                ));
            }
            if !caller.scopes.read {
                return Err(Error::forbidden(
                    "insufficient_scope",
                    "this token lacks the `read` scope",
                ));
            }
            caller
        }
    };
    // Register first, then check the credential: a revocation that commits in between is
    // either seen here (the credential is gone) or reaches the registration through the hub.
    // Any refusal below drops the registration, and its lease gives the slot back.
    let registration = state
        .hub
        .register(caller.user, caller.credential, state.settings.stream_queue)
        .map_err(|why| refused(why, state.settings.max_streams_per_user))?;
    let opening = replay::open(&state.db, caller.credential, since).await?;
    let presence = state.presence.open(caller.user);
    Ok(Subscription {
        caller,
        since,
        head: opening.head,
        resync: opening.resync,
        expires: opening.expires,
        registration,
        presence,
    })
}

/// The answer to a registration the hub refused.
fn refused(why: Refused, per_user: usize) -> Error {
    match why {
        Refused::ShuttingDown => Error::unavailable(anyhow::anyhow!("shutting down")),
        Refused::NodeFull => Error::busy(
            Class::Unavailable,
            "too_many_connections",
            "this server holds as many sockets as it can; retry later or on another node",
            5,
        ),
        Refused::UserFull => Error::busy(
            Class::TooMany,
            "too_many_streams",
            format!(
                "you already hold {per_user} sockets and long polls on this server; close one first"
            ),
            5,
        ),
    }
}
