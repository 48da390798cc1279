//! One socket's life: `hello`, the replay of what the client missed (from the database, up to
//! the hub position it registered at), then live frames from its hub queue, skipping any id
//! already sent. One `select!` over the hub queue, the close signal, the client's frames and a
//! heartbeat tick; no shared state is held across a send.

use std::time::Instant;

use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use futures_util::StreamExt;

use crate::domain::Time;
use crate::realtime::hub::{Close, Registration};
use crate::server::state::AppState;
use crate::server::stream::session::{
    catch_up, closing, credential_expired, expiry, Context, End, Ending, Gone, Out, Sink,
};
use crate::server::stream::subscribe::Subscription;

/// A WebSocket session as a stream's sink: every frame is a text frame.
impl Sink for Session {
    async fn send(&mut self, out: Out) -> Result<(), Gone> {
        let text = match out {
            Out::Hello(text, _) | Out::Resync(text, _) => text.into(),
            Out::Event(_, text) => text,
        };
        self.text(text).await.map_err(|_| Gone)
    }
}

fn reason(code: CloseCode, text: impl Into<String>) -> End {
    End::Close(Ending {
        code: code.into(),
        reason: text.into(),
        cursor: None,
    })
}

/// Runs the socket until it closes; it leaves the hub when `drive` returns.
pub async fn run(state: AppState, sub: Subscription, mut ws: Session, messages: MessageStream) {
    let (ctx, registration) = Context::of(state, sub);
    // The registration (and its lease) ends with `drive`, before the close frame goes out.
    let end = drive(&ctx, registration, &mut ws, messages).await;
    if let End::Close(ending) = end {
        let reason = CloseReason {
            code: CloseCode::from(ending.code),
            description: Some(ending.reason),
        };
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
    let mut last = match Box::pin(catch_up(ctx, position, &frames, &mut *ws)).await {
        Ok(last) => last,
        Err(end) => return end,
    };
    let heartbeat = ctx.state.settings.heartbeat;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut seen = Instant::now();
    // Wakes at the credential's expiry, so that an expired credential's socket closes then,
    // not at the next heartbeat. If it was extended meanwhile, the heartbeat checks again.
    let expiry = expiry(ctx);
    tokio::pin!(expiry);
    let mut expiry_armed = ctx.expires.is_some();
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
                    if ws.text(text).await.is_err() {
                        return End::Gone;
                    }
                    last = id;
                }
                // The hub closed or dropped us: the queue says why.
                None => return End::Close(closing(frames.closed().unwrap_or(Close::Resume), last)),
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
                    return End::Close(closing(Close::Expired, last));
                }
                if ws.ping(b"").await.is_err() {
                    return End::Gone;
                }
            }
        }
    }
}
