//! One socket's life: `hello`, the replay of what the client missed (from the database, up to
//! the hub position it registered at), then live frames from its hub queue, skipping any id
//! already sent. One `select!` over the hub queue, the close signal, the client's frames and a
//! heartbeat tick; no shared state is held across a send.

use std::time::{Duration, Instant};

use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use futures_util::StreamExt;
use serde::Serialize;

use crate::core::replay;
use crate::domain::{Id, Time};
use crate::events;
use crate::realtime::hub::{Close, Registration};
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
}

/// Events read from the database per replay query.
const REPLAY_PAGE: i64 = 500;

/// What a socket knows about itself.
pub struct Context {
    pub state: AppState,
    pub caller: Caller,
    pub since: Option<i64>,
    /// The newest committed event when the socket connected: without `since`, the socket
    /// starts there (the hub may not have dispatched it yet; the skip below covers that).
    pub head: i64,
    /// The cursor is older than the retained log: say `resync_required` instead of replaying.
    pub resync: bool,
    pub expires: Option<Time>,
}

/// The first frame on every socket.
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

enum End {
    /// Close with this code and reason.
    Close(CloseReason),
    /// The peer is gone; nothing to send.
    Gone,
}

fn reason(code: CloseCode, text: impl Into<String>) -> End {
    End::Close(CloseReason {
        code,
        description: Some(text.into()),
    })
}

/// Runs the socket until it closes; it leaves the hub when `drive` returns.
pub async fn run(state: AppState, sub: Subscription, mut ws: Session, messages: MessageStream) {
    let ctx = Context {
        state,
        caller: sub.caller,
        since: sub.since,
        head: sub.head,
        resync: sub.resync,
        expires: sub.expires,
    };
    // The registration (and its lease) ends with `drive`, before the close frame goes out.
    let end = drive(&ctx, sub.registration, &mut ws, messages).await;
    if let End::Close(reason) = end {
        let _ = ws.close(Some(reason)).await;
    }
}

async fn drive(
    ctx: &Context,
    reg: Registration,
    ws: &mut Session,
    mut messages: MessageStream,
) -> End {
    let Registration {
        position,
        mut frames,
        lease: _lease,
    } = reg;
    // Boxed: what catching up needs is gone once it is done, and an idle socket keeps only
    // what the live loop below needs.
    let mut last = match Box::pin(catch_up(ctx, position, &frames, ws)).await {
        Ok(last) => last,
        Err(end) => return end,
    };
    let heartbeat = ctx.state.settings.heartbeat;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut seen = Instant::now();
    // Wakes at the credential's expiry, so that an expired credential's socket closes then,
    // not at the next heartbeat. If it was extended meanwhile, the heartbeat checks again.
    let until_expiry = ctx
        .expires
        .and_then(|at| (at.0 - Time::now().0).to_std().ok())
        .unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let expiry = tokio::time::sleep(until_expiry + Duration::from_millis(10));
    tokio::pin!(expiry);
    let mut expiry_armed = ctx.expires.is_some();
    loop {
        tokio::select! {
            _ = &mut expiry, if expiry_armed => {
                expiry_armed = false;
                if Box::pin(credential_expired(ctx)).await {
                    return closing(Close::Expired, last);
                }
            }
            frame = frames.recv() => match frame {
                Some((id, text)) => {
                    if id <= last {
                        continue; // already replayed
                    }
                    if ws.text(text).await.is_err() {
                        return End::Gone;
                    }
                    last = id;
                }
                // The hub closed or dropped us: the queue says why.
                None => return closing(frames.closed().unwrap_or(Close::Resume), last),
            },
            msg = messages.next() => match msg {
                Some(Ok(Message::Ping(bytes))) => {
                    seen = Instant::now();
                    if ws.pong(&bytes).await.is_err() {
                        return End::Gone;
                    }
                }
                Some(Ok(Message::Pong(_))) => seen = Instant::now(),
                Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Continuation(_))) => {
                    return reason(CloseCode::Policy, "read-only socket: send with the REST API");
                }
                Some(Ok(Message::Close(_))) | None => return reason(CloseCode::Normal, "bye"),
                Some(Ok(Message::Nop)) => {}
                Some(Err(_)) => return reason(CloseCode::Protocol, "protocol error"),
            },
            _ = tick.tick() => {
                if seen.elapsed() > heartbeat * 2 {
                    return End::Gone;
                }
                if ctx.expires.is_some_and(|at| Time::now() >= at)
                    && Box::pin(credential_expired(ctx)).await
                {
                    return closing(Close::Expired, last);
                }
                if ws.ping(b"").await.is_err() {
                    return End::Gone;
                }
            }
        }
    }
}

/// Sends `hello`, then `resync_required` or the replay of what the client missed, up to where
/// the hub queue takes over; returns the last id sent (or passed).
async fn catch_up(
    ctx: &Context,
    position: i64,
    frames: &queue::Receiver,
    ws: &mut Session,
) -> Result<i64, End> {
    let start = ctx.since.unwrap_or(ctx.head.max(position));
    let hello = Hello {
        r#type: "hello",
        cursor: events::cursor(start),
        user_id: ctx.caller.user,
        heartbeat_s: ctx.state.settings.heartbeat.as_secs(),
    };
    if ws
        .text(serde_json::to_string(&hello).unwrap_or_default())
        .await
        .is_err()
    {
        return Err(End::Gone);
    }
    let mut last = start;
    if ctx.resync {
        let frame = Resync {
            r#type: "resync_required",
            cursor: events::cursor(ctx.head.max(position)),
        };
        if ws
            .text(serde_json::to_string(&frame).unwrap_or_default())
            .await
            .is_err()
        {
            return Err(End::Gone);
        }
        last = ctx.head.max(position);
    }
    // Replay what the client missed, up to where the hub queue takes over. The next page is
    // read while this one is sent.
    let page_after =
        |after: i64| replay::page(&ctx.state.db, ctx.caller.user, after, position, REPLAY_PAGE);
    let mut next = (last < position).then(|| page_after(last));
    while let Some(reading) = next.take() {
        if let Some(why) = frames.closed() {
            return Err(closing(why, last));
        }
        let page = match reading.await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "replay failed");
                return Err(reason(CloseCode::Error, format!("resume from {last}")));
            }
        };
        match page.frames.last() {
            Some((id, _)) if page.full && *id < position => next = Some(page_after(*id)),
            _ => {} // the last page: everything visible up to `position` has been read
        }
        for (id, frame) in page.frames {
            if ws.text(frame).await.is_err() {
                return Err(End::Gone);
            }
            last = id;
        }
    }
    Ok(last.max(position))
}

/// Whether the credential really is over (a session may have been extended since).
async fn credential_expired(ctx: &Context) -> bool {
    // A database that can't answer doesn't end the socket: the next tick asks again.
    replay::credential_over(&ctx.state.db, ctx.caller.credential)
        .await
        .unwrap_or(false)
}

fn closing(why: Close, last: i64) -> End {
    match why {
        Close::Resume => reason(
            CloseCode::Other(close_codes::RESUME),
            format!("resume from {last}"),
        ),
        Close::Revoked => reason(CloseCode::Other(close_codes::REVOKED), "credential revoked"),
        Close::Expired => reason(CloseCode::Other(close_codes::EXPIRED), "credential expired"),
        Close::ShuttingDown => reason(CloseCode::Away, "server shutting down"),
    }
}
