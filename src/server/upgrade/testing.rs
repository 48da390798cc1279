//! What the upgrade path's unit tests share: an in-memory connection as actix-http hands it
//! over, a client's frames, a waker that counts, and a response body fed by hand.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::Duration;

use actix_codec::{Decoder, Framed, FramedParts};
use actix_http::body::{BodyStream, MessageBody};
use actix_http::h1::{Codec, Message};
use actix_http::Request;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Longer than any step of these tests takes: one that reaches it has hung.
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);

/// The request head parsed from `raw` as actix-http's dispatcher parses it, and the connection
/// as it hands it over: the codec that read the head, and the bytes behind the head still in
/// the read buffer.
pub(super) fn arrive(raw: &[u8], io: DuplexStream) -> (Request, Framed<DuplexStream, Codec>) {
    let mut codec = Codec::default();
    let mut buf = BytesMut::from(raw);
    let decoded = codec.decode(&mut buf);
    let Ok(Some(Message::Item(req))) = decoded else {
        panic!(
            "no request head in {:?}: {decoded:?}",
            String::from_utf8_lossy(raw)
        );
    };
    (
        req,
        Framed::from_parts(FramedParts::with_read_buf(io, codec, buf)),
    )
}

/// A WebSocket upgrade request for `path` (the RFC 6455 example key).
pub(super) fn ws_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// A masked, final client frame.
pub(super) fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125, "a control-sized payload");
    let mask = [1, 2, 3, 4];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads up to and including the blank line that ends a response head.
pub(super) async fn read_head(client: &mut DuplexStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = timeout(TIMEOUT, client.read_u8())
            .await
            .expect("the server writes a whole head")
            .expect("a whole response head");
        head.push(byte);
    }
    String::from_utf8(head).expect("a UTF-8 head")
}

/// Reads exactly `n` bytes.
pub(super) async fn read_n(client: &mut DuplexStream, n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    timeout(TIMEOUT, client.read_exact(&mut bytes))
        .await
        .expect("the server writes the bytes")
        .expect("the bytes");
    bytes
}

/// A waker that counts how often it was woken.
#[derive(Default)]
pub(super) struct Wakes(AtomicUsize);

impl Wakes {
    pub(super) fn new() -> (Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes::default());
        (wakes.clone(), Waker::from(wakes))
    }

    pub(super) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A response body that yields what is sent on the channel, and ends when it is dropped: what
/// actix-ws's outgoing frames are to the pump.
pub(super) fn body() -> (mpsc::UnboundedSender<Bytes>, impl MessageBody) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|bytes| bytes.map(Ok::<_, io::Error>))
    });
    (tx, BodyStream::new(stream))
}
