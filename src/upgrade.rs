//! Upgraded connections (the WebSocket) leave actix-http's connection dispatcher.
//!
//! A keep-alive connection in that dispatcher holds an 8 KiB read buffer and an 8 KiB write
//! buffer for its whole life: right for HTTP, most of the memory of an idle socket. actix-http
//! hands a request that asks for an upgrade to the service set with
//! `HttpServiceBuilder::upgrade` together with the connection; this module is that service.
//!
//! The request still goes through the whole `App` (middleware, routing, the stream handler,
//! `actix_ws::handle`), with a request body fed from the connection. What the App answers is
//! written back; a `101 Switching Protocols` is then followed by a small byte pump between the
//! TCP stream and the response body (actix-ws's outgoing frames) / the request body (its
//! incoming frames). The pump keeps no buffer while the socket is idle: it allocates a read
//! buffer only when the kernel says there are bytes to read. Any other answer is written with
//! `Connection: close`, and the connection ends.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::error::PayloadError;
use actix_http::h1::{Codec, Message};
use actix_http::{ConnectionType, Payload, Request, Response, StatusCode};
use actix_rt::net::TcpStream;
use actix_service::{Service, ServiceFactory};
use actix_web::body::EitherBody;
use actix_web::dev::{AppConfig, ServiceResponse};
use bytes::{Bytes, BytesMut};
use futures_util::future::LocalBoxFuture;
use futures_util::{SinkExt, Stream};
use tokio::io::AsyncWriteExt;

/// Bytes read from an upgraded connection at a time (client frames are pings and closes).
const READ_CHUNK: usize = 1024;
/// Bytes read but not yet taken by actix-ws past which the pump stops reading.
const INBOX_LIMIT: usize = 32 * 1024;

/// The upgrade service's factory: one App instance per worker, as for plain requests.
pub struct Upgrades<F> {
    app: F,
    config: AppConfig,
    pumps: Pumps,
}

impl<F> Upgrades<F> {
    pub fn new(app: F, config: AppConfig, pumps: Pumps) -> Self {
        Upgrades { app, config, pumps }
    }
}

/// The upgrade service of one worker.
pub struct UpgradeService<S> {
    app: Rc<S>,
    pumps: Pumps,
}

impl<F, S, B> ServiceFactory<(Request, Framed<TcpStream, Codec>)> for Upgrades<F>
where
    F: ServiceFactory<Request, Config = AppConfig, Service = S, InitError = ()>,
    F::Future: 'static,
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ();
    type Error = actix_web::Error;
    type Config = ();
    type Service = UpgradeService<S>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<UpgradeService<S>, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        let app = self.app.new_service(self.config.clone());
        let pumps = self.pumps.clone();
        Box::pin(async move {
            Ok(UpgradeService {
                app: Rc::new(app.await?),
                pumps,
            })
        })
    }
}

impl<S, B> Service<(Request, Framed<TcpStream, Codec>)> for UpgradeService<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ();
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<(), actix_web::Error>>;

    actix_service::always_ready!();

    fn call(&self, (req, framed): (Request, Framed<TcpStream, Codec>)) -> Self::Future {
        let (app, pumps) = (self.app.clone(), self.pumps.clone());
        Box::pin(async move {
            let Some((io, body, inbox)) = handshake(app, req, framed).await? else {
                return Ok(());
            };
            // The pump gets a task of its own, and this one ends: actix-http's connection task
            // (its dispatcher, sized for any request) is not kept for the socket's life.
            let pump = Pump::start(pumps);
            actix_rt::spawn(async move {
                if let Err(e) = pump_bytes(io, body, inbox).await {
                    tracing::debug!(error = %e, "upgraded connection failed");
                }
                drop(pump);
            });
            Ok(())
        })
    }
}

/// The pumps running, so that shutdown can wait for the sockets' close frames to go out
/// (actix-server only waits for the connections it still runs).
#[derive(Clone, Default)]
pub struct Pumps(Arc<AtomicUsize>);

impl Pumps {
    /// How many upgraded connections are open.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Waits until every pump has ended, or `timeout` has passed.
    pub async fn drained(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One running pump, counted while it lives.
struct Pump(Pumps);

impl Pump {
    fn start(pumps: Pumps) -> Pump {
        pumps.0.fetch_add(1, Ordering::Relaxed);
        Pump(pumps)
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection after a `101`, the response body (frames to send) and the inbox of the
/// request body (frames received).
type Upgraded<B> = (TcpStream, EitherBody<B, BoxBody>, Rc<RefCell<Inbox>>);

/// Runs the request through the App and writes its answer: the upgraded connection after a
/// `101`, else `None` (the answer was written and the connection closed).
async fn handshake<S, B>(
    app: Rc<S>,
    mut req: Request,
    mut framed: Framed<TcpStream, Codec>,
) -> io::Result<Option<Upgraded<B>>>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let feed = Inbox::new();
    *req.payload() = Payload::Stream {
        payload: Box::pin(InboxStream(feed.clone())),
    };
    let res: Response<EitherBody<B, BoxBody>> = match app.call(req).await {
        Ok(res) => Response::from(res.into_parts().1).map_body(|_, b| EitherBody::left(b)),
        Err(e) => Response::from(e.error_response()).map_body(|_, b| EitherBody::right(b)),
    };
    let (mut head, body) = res.into_parts();
    if head.status() != StatusCode::SWITCHING_PROTOCOLS {
        head.head_mut().set_connection_type(ConnectionType::Close);
        answer(framed, head, body).await?;
        return Ok(None);
    }
    framed.send(Message::Item((head, BodySize::None))).await?;
    let parts = framed.into_parts();
    let io = parts.io;
    // Bytes the client sent right behind its request (copied: the buffer is 8 KiB).
    if !parts.read_buf.is_empty() {
        feed.borrow_mut()
            .push(Bytes::copy_from_slice(&parts.read_buf));
    }
    Ok(Some((io, body, feed)))
}

/// Writes a non-upgrade answer and closes the connection.
async fn answer<B: MessageBody>(
    mut framed: Framed<TcpStream, Codec>,
    head: Response<()>,
    body: B,
) -> io::Result<()> {
    let size = body.size();
    framed.send(Message::Item((head, size))).await?;
    if !matches!(size, BodySize::None | BodySize::Sized(0)) {
        let mut body = pin!(body);
        while let Some(chunk) = poll_fn(|cx| body.as_mut().poll_next(cx)).await {
            let chunk = chunk.map_err(|e| io::Error::other(e.into().to_string()))?;
            framed.send(Message::Chunk(Some(chunk))).await?;
        }
        framed.send(Message::Chunk(None)).await?;
    }
    framed.close().await
}

/// What the pump does next.
enum Step {
    /// Frames to write to the client.
    Write(Bytes),
    /// Bytes the client sent.
    Read(Bytes),
    /// The client closed its side.
    Eof,
    /// Reading failed.
    Failed(io::Error),
    /// The response body ended (the socket was closed by the server) or failed.
    Done,
}

/// Moves bytes both ways between the connection and actix-ws until the body ends or the
/// connection fails. Outgoing frames go first; reading stops while actix-ws hasn't taken what
/// was read (its request body applies backpressure).
async fn pump_bytes<B: MessageBody>(
    mut io: TcpStream,
    body: B,
    feed: Rc<RefCell<Inbox>>,
) -> io::Result<()> {
    let mut body = pin!(body);
    let mut reading = true;
    let result = loop {
        let step = poll_fn(|cx| next_step(cx, &io, body.as_mut(), &feed, reading)).await;
        match step {
            Step::Write(bytes) => {
                if let Err(e) = io.write_all(&bytes).await {
                    break Err(e);
                }
            }
            Step::Read(bytes) => feed.borrow_mut().push(bytes),
            Step::Eof => {
                feed.borrow_mut().end(Ok(()));
                reading = false;
            }
            Step::Failed(e) => break Err(e),
            Step::Done => break Ok(()),
        }
    };
    // Whatever happened, actix-ws's message stream must end too.
    if reading {
        feed.borrow_mut().end(Err(PayloadError::Incomplete(None)));
    }
    match result {
        Ok(()) => io.shutdown().await,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e),
    }
}

fn next_step<B: MessageBody>(
    cx: &mut Context<'_>,
    io: &TcpStream,
    body: Pin<&mut B>,
    feed: &RefCell<Inbox>,
    reading: bool,
) -> Poll<Step> {
    match body.poll_next(cx) {
        Poll::Ready(Some(Ok(bytes))) => return Poll::Ready(Step::Write(bytes)),
        Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(Step::Done),
        Poll::Pending => {}
    }
    if !reading || !feed.borrow_mut().wants_more(cx) {
        return Poll::Pending;
    }
    loop {
        match io.poll_read_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Step::Failed(e)),
            Poll::Ready(Ok(())) => {}
        }
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        match io.try_read_buf(&mut buf) {
            Ok(0) => return Poll::Ready(Step::Eof),
            Ok(_) => return Poll::Ready(Step::Read(buf.freeze())),
            // Readiness was stale: poll it again, which registers the waker.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Step::Failed(e)),
        }
    }
}

/// The client's bytes on their way to actix-ws (the upgraded request's body), with
/// backpressure: the pump reads only while less than `INBOX_LIMIT` is waiting.
struct Inbox {
    items: VecDeque<Bytes>,
    len: usize,
    /// How the body ended, once it has: `Ok` at the client's EOF.
    end: Option<Result<(), PayloadError>>,
    /// The body's reader waits for bytes.
    reader: Option<Waker>,
    /// The pump waits for room.
    pump: Option<Waker>,
    /// actix-ws dropped the body: nobody reads the client's frames any more.
    dropped: bool,
}

impl Inbox {
    fn new() -> Rc<RefCell<Inbox>> {
        Rc::new(RefCell::new(Inbox {
            items: VecDeque::new(),
            len: 0,
            end: None,
            reader: None,
            pump: None,
            dropped: false,
        }))
    }

    fn push(&mut self, bytes: Bytes) {
        self.len += bytes.len();
        self.items.push_back(bytes);
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    fn end(&mut self, how: Result<(), PayloadError>) {
        self.end.get_or_insert(how);
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    /// Whether the pump may read more; if not, it is woken when it may (or never, once the
    /// reader is gone: the client's bytes then stay in the kernel's buffer).
    fn wants_more(&mut self, cx: &mut Context<'_>) -> bool {
        if self.dropped {
            return false;
        }
        if self.len < INBOX_LIMIT {
            return true;
        }
        self.pump = Some(cx.waker().clone());
        false
    }
}

/// actix-ws's end of the inbox.
struct InboxStream(Rc<RefCell<Inbox>>);

impl Stream for InboxStream {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut inbox = self.0.borrow_mut();
        if let Some(bytes) = inbox.items.pop_front() {
            inbox.len -= bytes.len();
            if let Some(w) = inbox.pump.take() {
                w.wake();
            }
            return Poll::Ready(Some(Ok(bytes)));
        }
        match inbox.end.take() {
            Some(Ok(())) => {
                inbox.end = Some(Ok(()));
                Poll::Ready(None)
            }
            Some(Err(e)) => {
                inbox.end = Some(Ok(()));
                Poll::Ready(Some(Err(e)))
            }
            None => {
                inbox.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for InboxStream {
    fn drop(&mut self) {
        let mut inbox = self.0.borrow_mut();
        inbox.dropped = true;
        inbox.items.clear();
        if let Some(w) = inbox.pump.take() {
            w.wake();
        }
    }
}
