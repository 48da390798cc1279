//! What the stream transports (the WebSocket, Server-Sent Events) share: the frames that aren't
//! rows of the log (`hello`, `resync_required`), the catch-up (hello, then resync or the replay
//! of what the client missed up to where its hub queue takes over), the credential's expiry,
//! and the close each reason of the hub's maps to. A transport only says how a frame is written.

use std::time::Duration;

use bytestring::ByteString;
use serde::Serialize;

use crate::core::replay;
use crate::domain::{Id, Time};
use crate::events;
use crate::realtime::hub::Close;
use crate::realtime::queue;
use crate::server::api::auth::Caller;
use crate::server::state::AppState;
use crate::server::stream::subscribe::Subscription;

/// Close codes: 4000–4099 mean "reconnect and resume with since=", 4100–4199 "don't retry".
pub mod close_codes {
    /// Fell behind (queue overflow): reconnect with `since=` the cursor in the reason.
    pub const RESUME: u16 = 4000;
    /// The credential was revoked (logout, token deleted).
    pub const REVOKED: u16 = 4100;
    /// The credential expired.
    pub const EXPIRED: u16 = 4101;
    /// The server is shutting down (WebSocket's "going away").
    pub const AWAY: u16 = 1001;
    /// The server couldn't read the log: reconnect with the cursor in the reason.
    pub const ERROR: u16 = 1011;
}

/// Events read from the database per replay query.
const REPLAY_PAGE: i64 = 500;

/// What a stream knows about itself.
pub struct Context {
    pub state: AppState,
    pub caller: Caller,
    pub since: Option<i64>,
    /// The newest committed event when the stream opened: without `since`, it starts there
    /// (the hub may not have dispatched it yet; the transports skip ids already sent).
    pub head: i64,
    /// The cursor is older than the retained log: say `resync_required` instead of replaying.
    pub resync: bool,
    pub expires: Option<Time>,
    /// The stream counts for the caller's presence while the context lives.
    pub _presence: crate::core::presence::Online,
}

impl Context {
    /// The context of a subscription, and its hub registration apart.
    pub fn of(state: AppState, sub: Subscription) -> (Context, crate::realtime::hub::Registration) {
        let ctx = Context {
            state,
            caller: sub.caller,
            since: sub.since,
            head: sub.head,
            resync: sub.resync,
            expires: sub.expires,
            _presence: sub.presence,
        };
        (ctx, sub.registration)
    }
}

/// The first frame on every stream.
#[derive(Serialize)]
struct Hello {
    r#type: &'static str,
    cursor: String,
    user_id: Id,
    heartbeat_s: u64,
}

/// Sent instead of a replay when the cursor is older than the retained log.
#[derive(Serialize)]
struct Resync {
    r#type: &'static str,
    cursor: String,
}

/// One frame for the client, as JSON text, with what an SSE stream names it by.
pub enum Out {
    /// `hello`, and the cursor it gives.
    Hello(String, i64),
    /// `resync_required`, and its fresh cursor.
    Resync(String, i64),
    /// An `event` frame: a row of the log, and its id.
    Event(i64, ByteString),
}

/// The client is gone: nothing more can be written.
pub struct Gone;

/// Where a stream's frames are written: a WebSocket session or an SSE body.
pub trait Sink {
    /// Writes one frame; `Err(Gone)` when the client can't take it any more.
    async fn send(&mut self, out: Out) -> Result<(), Gone>;
}

/// A close with its code, its reason, and for "resume" closes the cursor to resume from.
pub struct Ending {
    pub code: u16,
    pub reason: String,
    pub cursor: Option<i64>,
}

/// Why a stream ended.
pub enum End {
    /// Close with this code and reason.
    Close(Ending),
    /// The peer is gone; nothing to send.
    Gone,
}

impl From<Gone> for End {
    fn from(_: Gone) -> End {
        End::Gone
    }
}

/// A close that asks the client to resume from `last` with `code` (4000 or 1011).
fn resume(code: u16, last: i64) -> Ending {
    Ending {
        code,
        reason: format!("resume from {last}"),
        cursor: Some(last),
    }
}

/// The close for a reason of the hub's, `last` being the cursor the client has reached.
pub fn closing(why: Close, last: i64) -> Ending {
    let (code, reason) = match why {
        Close::Resume => return resume(close_codes::RESUME, last),
        Close::Revoked => (close_codes::REVOKED, "credential revoked"),
        Close::Expired => (close_codes::EXPIRED, "credential expired"),
        Close::ShuttingDown => (close_codes::AWAY, "server shutting down"),
    };
    Ending {
        code,
        reason: reason.into(),
        cursor: None,
    }
}

/// Sends `hello`, then `resync_required` or the replay of what the client missed, up to where
/// the hub queue (registered at `position`) takes over; returns the last id sent (or passed).
pub async fn catch_up(
    ctx: &Context,
    position: i64,
    frames: &queue::Receiver,
    sink: &mut impl Sink,
) -> Result<i64, End> {
    let start = ctx.since.unwrap_or(ctx.head.max(position));
    let hello = Hello {
        r#type: "hello",
        cursor: events::cursor(start),
        user_id: ctx.caller.user,
        heartbeat_s: ctx.state.settings.heartbeat.as_secs(),
    };
    let hello = serde_json::to_string(&hello).unwrap_or_default();
    sink.send(Out::Hello(hello, start)).await?;
    let mut last = start;
    if ctx.resync {
        last = ctx.head.max(position);
        let frame = Resync {
            r#type: "resync_required",
            cursor: events::cursor(last),
        };
        let frame = serde_json::to_string(&frame).unwrap_or_default();
        sink.send(Out::Resync(frame, last)).await?;
    }
    // Replay what the client missed, up to where the hub queue takes over. The next page is
    // read while this one is sent.
    let page_after =
        |after: i64| replay::page(&ctx.state.db, ctx.caller.user, after, position, REPLAY_PAGE);
    let mut next = (last < position).then(|| page_after(last));
    while let Some(reading) = next.take() {
        if let Some(why) = frames.closed() {
            return Err(End::Close(closing(why, last)));
        }
        let page = match reading.await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "replay failed");
                return Err(End::Close(resume(close_codes::ERROR, last)));
            }
        };
        match page.frames.last() {
            Some((id, _)) if page.full && *id < position => next = Some(page_after(*id)),
            _ => {} // the last page: everything visible up to `position` has been read
        }
        for (id, frame) in page.frames {
            sink.send(Out::Event(id, frame.into())).await?;
            last = id;
        }
    }
    Ok(last.max(position))
}

/// Whether the credential really is over (a session may have been extended since).
pub async fn credential_expired(ctx: &Context) -> bool {
    // A database that can't answer doesn't end the stream: the next tick asks again.
    replay::credential_over(&ctx.state.db, ctx.caller.credential)
        .await
        .unwrap_or(false)
}

/// A timer that fires just after the credential's expiry (in a year if it doesn't expire), so
/// that an expired credential's stream closes then, not at its next heartbeat.
pub fn expiry(ctx: &Context) -> tokio::time::Sleep {
    let until = ctx
        .expires
        .and_then(|at| (at.0 - Time::now().0).to_std().ok())
        .unwrap_or(Duration::from_secs(365 * 24 * 3600));
    tokio::time::sleep(until + Duration::from_millis(10))
}
