//! Test harness, Server-Sent Events side: a client of `/api/v1/stream/sse` that reads the
//! response body as it arrives and parses it into messages (as `EventSource` does).

use std::time::Duration;

use awc::http::header::HeaderMap;
use futures_util::StreamExt;
use serde_json::Value;

use super::socket::FRAME_TIMEOUT;
use super::{Resp, TestApp};

/// One SSE message: its `id:`, `event:` and `data:` (lines joined with `\n`), the data parsed.
#[derive(Debug, Clone)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
    pub json: Value,
}

/// What one read from the stream produced.
#[derive(Debug)]
pub enum SseRecv {
    Message(SseMessage),
    /// A comment line (`: ping`), without the colon and the space.
    Comment(String),
    /// The response ended.
    Ended,
    Timeout,
}

/// An open SSE response; `hello` is its first message, already read.
pub struct Sse {
    resp: awc::ClientResponse,
    buf: Vec<u8>,
    pub headers: HeaderMap,
    pub hello: SseMessage,
}

impl Sse {
    /// Reads the next message, comment or end within `within`.
    pub async fn recv(&mut self, within: Duration) -> SseRecv {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(parsed) = self.parse_one() {
                return parsed;
            }
            match tokio::time::timeout_at(deadline, self.resp.next()).await {
                Err(_) => return SseRecv::Timeout,
                Ok(None) | Ok(Some(Err(_))) => return SseRecv::Ended,
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
            }
        }
    }

    /// One whole block (up to a blank line) from the buffer, if there is one.
    fn parse_one(&mut self) -> Option<SseRecv> {
        let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
        let block: Vec<u8> = self.buf.drain(..end + 2).collect();
        let block = String::from_utf8(block).expect("an SSE stream is UTF-8");
        let (mut id, mut event, mut data, mut comment) = (None, None, Vec::new(), None);
        for line in block.lines() {
            if let Some(c) = line.strip_prefix(':') {
                comment = Some(c.trim_start().to_owned());
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.to_owned()),
                "event" => event = Some(value.to_owned()),
                "data" => data.push(value.to_owned()),
                "" => {}
                other => panic!("unexpected SSE field {other:?} in {block:?}"),
            }
        }
        if data.is_empty() {
            return Some(SseRecv::Comment(comment.unwrap_or_default()));
        }
        let data = data.join("\n");
        let json = serde_json::from_str(&data)
            .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {data}"));
        Some(SseRecv::Message(SseMessage {
            id,
            event: event.unwrap_or_else(|| "message".into()),
            data,
            json,
        }))
    }

    /// The next message (comments skipped); fails on the end of the stream or a timeout.
    pub async fn next_message(&mut self) -> SseMessage {
        let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                SseRecv::Message(m) => return m,
                SseRecv::Comment(_) => {}
                SseRecv::Ended => panic!("the SSE stream ended while waiting for a message"),
                SseRecv::Timeout => panic!("no SSE message within {FRAME_TIMEOUT:?}"),
            }
        }
    }

    /// The next message, which must be an event: its frame checked against its SSE fields.
    pub async fn next_event(&mut self) -> SseMessage {
        let m = self.next_message().await;
        assert_eq!(m.json["type"], "event", "expected an event: {m:?}");
        assert_eq!(
            m.id.as_deref(),
            m.json["id"].as_str(),
            "id: is the event id"
        );
        assert_eq!(
            m.event,
            m.json["event"].as_str().unwrap(),
            "event: its type"
        );
        m
    }

    pub async fn events(&mut self, n: usize) -> Vec<SseMessage> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next_event().await);
        }
        out
    }

    /// Asserts that no message (and no end) comes for `ms` milliseconds; comments may.
    pub async fn expect_silence(&mut self, ms: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                SseRecv::Timeout => return,
                SseRecv::Comment(_) => {}
                SseRecv::Message(m) => panic!("expected silence, got {m:?}"),
                SseRecv::Ended => panic!("expected silence, the stream ended"),
            }
        }
    }

    /// Expects a `close` message (with no message before it) and then the end of the stream;
    /// returns the close's data.
    pub async fn expect_close(&mut self, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        let close = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                SseRecv::Comment(_) => {}
                SseRecv::Message(m) => {
                    assert_eq!(m.event, "close", "a message before the close: {m:?}");
                    assert_eq!(m.json["type"], "close", "{m:?}");
                    break m.json;
                }
                SseRecv::Ended => panic!("the stream ended without a close message"),
                SseRecv::Timeout => panic!("no close within {within:?}"),
            }
        };
        match self.recv(Duration::from_secs(3)).await {
            SseRecv::Ended => close,
            other => panic!("the stream goes on after its close: {other:?}"),
        }
    }
}

impl TestApp {
    /// Opens `/api/v1/stream/sse?<query>` with `headers` on a connection of its own; the
    /// refusal's status and body if it isn't a 200.
    pub async fn try_sse(&self, query: &str, headers: &[(&str, &str)]) -> Result<Sse, Resp> {
        let path = if query.is_empty() {
            "/api/v1/stream/sse".to_owned()
        } else {
            format!("/api/v1/stream/sse?{query}")
        };
        // A client of its own: dropping the stream closes its connection, as a browser does.
        let client = awc::Client::builder().disable_timeout().finish();
        let mut req = client.get(self.url(&path));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut resp = req.send().await.expect("GET /api/v1/stream/sse");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if status != 200 {
            let body = resp.body().await.unwrap_or_default();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            return Err(Resp {
                status,
                headers,
                body,
            });
        }
        let mut sse = Sse {
            resp,
            buf: Vec::new(),
            headers,
            hello: SseMessage {
                id: None,
                event: String::new(),
                data: String::new(),
                json: Value::Null,
            },
        };
        let hello = sse.next_message().await;
        assert_eq!(
            hello.event, "hello",
            "the first message is hello: {hello:?}"
        );
        assert_eq!(hello.json["type"], "hello");
        sse.hello = hello;
        Ok(sse)
    }

    /// Opens the SSE stream, which must open.
    pub async fn sse(&self, query: &str, headers: &[(&str, &str)]) -> Sse {
        match self.try_sse(query, headers).await {
            Ok(sse) => sse,
            Err(resp) => panic!("SSE refused: {} {}", resp.status, resp.body),
        }
    }
}
