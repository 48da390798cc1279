//! Test harness, WebSocket side: a client socket on `/api/v1/stream` that reads JSON frames with timeouts.

use std::time::Duration;

use awc::error::WsProtocolError;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

/// Longest wait for any single socket frame or close before a test fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// What one read from a socket produced.
pub enum Recv {
    Frame(Value),
    Closed(Option<(u16, String)>),
    Timeout,
}

/// awc's framed WebSocket, named by what it does (its concrete type is not re-exported).
pub(super) trait WsConn:
    futures_util::Stream<Item = Result<ws::Frame, WsProtocolError>>
    + futures_util::Sink<ws::Message, Error = WsProtocolError>
    + Unpin
{
}

impl<T> WsConn for T where
    T: futures_util::Stream<Item = Result<ws::Frame, WsProtocolError>>
        + futures_util::Sink<ws::Message, Error = WsProtocolError>
        + Unpin
{
}

/// A client WebSocket on `/api/v1/stream`; `hello` is the first frame, already read.
pub struct Socket {
    framed: Box<dyn WsConn>,
    pub hello: Value,
}

impl Socket {
    /// Wraps an upgraded connection and reads its first frame, which must be `hello`.
    pub(super) async fn start(framed: impl WsConn + 'static) -> Socket {
        let mut socket = Socket {
            framed: Box::new(framed),
            hello: Value::Null,
        };
        let hello = socket.next_frame().await;
        assert_eq!(hello["type"], "hello", "first frame must be hello: {hello}");
        socket.hello = hello;
        socket
    }

    /// Reads the next JSON frame, close, or timeout (pings are answered, heartbeats skipped).
    pub async fn recv(&mut self, within: Duration) -> Recv {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let item = match tokio::time::timeout_at(deadline, self.framed.next()).await {
                Err(_) => return Recv::Timeout,
                Ok(item) => item,
            };
            match item {
                None | Some(Err(_)) => return Recv::Closed(None),
                Some(Ok(ws::Frame::Close(reason))) => {
                    let reason =
                        reason.map(|r| (u16::from(r.code), r.description.unwrap_or_default()));
                    return Recv::Closed(reason);
                }
                Some(Ok(ws::Frame::Ping(p))) => {
                    let _ = self.framed.send(ws::Message::Pong(p)).await;
                }
                Some(Ok(ws::Frame::Pong(_))) => {}
                Some(Ok(ws::Frame::Text(t))) => {
                    let v: Value = serde_json::from_slice(&t).expect("text frame is JSON");
                    if v["type"] != "heartbeat" && v["type"] != "ping" {
                        return Recv::Frame(v);
                    }
                }
                Some(Ok(other)) => panic!("unexpected frame from server: {other:?}"),
            }
        }
    }

    /// The next JSON frame; fails on close or after [`FRAME_TIMEOUT`].
    pub async fn next_frame(&mut self) -> Value {
        match self.recv(FRAME_TIMEOUT).await {
            Recv::Frame(v) => v,
            Recv::Closed(r) => panic!("socket closed while waiting for a frame: {r:?}"),
            Recv::Timeout => panic!("no frame within {FRAME_TIMEOUT:?}"),
        }
    }

    /// The next frame, which must be an event.
    pub async fn next_event(&mut self) -> Value {
        let frame = self.next_frame().await;
        assert_eq!(frame["type"], "event", "expected an event frame: {frame}");
        frame
    }

    pub async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next_event().await);
        }
        out
    }

    /// Asserts that no data frame (and no close) arrives for `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        match self.recv(Duration::from_millis(ms)).await {
            Recv::Timeout => {}
            Recv::Frame(v) => panic!("expected silence, got frame {v}"),
            Recv::Closed(r) => panic!("expected silence, socket closed: {r:?}"),
        }
    }

    /// Reads until the server closes; returns the frames seen before and the close code/reason.
    pub async fn read_until_close(
        &mut self,
        within: Duration,
    ) -> (Vec<Value>, Option<(u16, String)>) {
        let mut frames = Vec::new();
        loop {
            match self.recv(within).await {
                Recv::Frame(v) => frames.push(v),
                Recv::Closed(r) => return (frames, r),
                Recv::Timeout => panic!(
                    "socket not closed within {within:?} (after {} frames)",
                    frames.len()
                ),
            }
        }
    }

    /// Expects a close (with no data frame before it) within `within`.
    pub async fn expect_close(&mut self, within: Duration) -> (u16, String) {
        let (frames, reason) = self.read_until_close(within).await;
        assert!(frames.is_empty(), "frames before close: {frames:?}");
        reason.expect("close frame with a code")
    }

    pub async fn send_text(&mut self, text: &str) {
        self.framed
            .send(ws::Message::Text(text.to_owned().into()))
            .await
            .expect("send text frame");
    }
}
