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
//! incoming frames). The pump keeps no buffer while the socket is idle: it reads into a stack
//! buffer when the kernel says there are bytes, and keeps a copy of what it read. It drops a
//! client that doesn't take a write in time. Any other answer is written with
//! `Connection: close`, and the connection ends.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use actix_codec::{Encoder, Framed};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::error::PayloadError;
use actix_http::h1::{Codec, Message};
use actix_http::header;
use actix_http::{ConnectionType, HttpMessage, Method, Payload, Request, Response, StatusCode};
use actix_rt::net::TcpStream;
use actix_service::{Service, ServiceFactory};
use actix_web::body::EitherBody;
use actix_web::dev::{AppConfig, ServiceResponse};
use bytes::BytesMut;
use futures_util::future::LocalBoxFuture;
use tokio::io::AsyncWriteExt;

use crate::metrics::Metrics;
use inbox::{Inbox, InboxStream};
use pump::{linger, pump_bytes, read_some};

mod guard;
mod inbox;
mod pump;

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
        let app = self.app.clone();
        // Counted from the start, so that shutdown also waits for a socket being opened.
        let pump = Pump::start(self.pumps.clone());
        Box::pin(async move {
            let Some((io, body, inbox)) = handshake(app, req, framed).await? else {
                return Ok(());
            };
            // The pump gets a task of its own, and this one ends: actix-http's connection task
            // (its dispatcher, sized for any request) is not kept for the socket's life.
            actix_rt::spawn(async move {
                let write_timeout = pump.0.write_timeout;
                if let Err(e) = pump_bytes(io, body, inbox, write_timeout).await {
                    tracing::debug!(error = %e, "upgraded connection failed");
                }
                drop(pump);
            });
            Ok(())
        })
    }
}

/// The pumps running, so that shutdown can wait for the sockets' close frames to go out
/// (actix-server only waits for the connections it still runs), and how long one may wait for
/// a client to take what it writes.
#[derive(Clone)]
pub struct Pumps {
    metrics: Arc<Metrics>,
    write_timeout: Duration,
}

impl Pumps {
    /// A client that doesn't take a write (the frames actix-ws has ready) within
    /// `write_timeout` is dropped: it stopped reading (a full TCP window), and without this its
    /// socket would wait on it for as long as TCP keeps the connection up.
    /// Counted in `metrics.upgraded_connections`.
    pub fn new(metrics: Arc<Metrics>, write_timeout: Duration) -> Pumps {
        Pumps {
            metrics,
            write_timeout,
        }
    }

    /// How many upgraded connections are open (or opening).
    pub fn count(&self) -> u64 {
        self.metrics.upgraded_connections.load(Ordering::Relaxed)
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
        pumps
            .metrics
            .upgraded_connections
            .fetch_add(1, Ordering::Relaxed);
        Pump(pumps)
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.0
            .metrics
            .upgraded_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection after a `101`, the response body (frames to send) and the inbox of the
/// request body (frames received).
type Upgraded<B> = (TcpStream, EitherBody<B, BoxBody>, Rc<RefCell<Inbox>>);

/// Runs the request through the App and writes its answer: the upgraded connection after a
/// `101`, else `None` (the answer was written and the connection closed).
///
/// The request's body is what the client sends on the connection: for a `GET` (a WebSocket),
/// everything until the connection ends, which after the `101` is the client's frames; for
/// any other method, the next `Content-Length` bytes (actix-http sends any request with
/// `Upgrade: websocket` here, whatever its method, and without counting its body). It is fed
/// while the App works, so a handler that reads it gets it, and a client that leaves is seen.
async fn handshake<S, B>(
    app: Rc<S>,
    mut req: Request,
    framed: Framed<TcpStream, Codec>,
) -> io::Result<Option<Upgraded<B>>>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let parts = framed.into_parts();
    let (io, mut codec) = (parts.io, parts.codec);
    let length = if req.method() == Method::GET {
        None
    } else {
        let length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        Some(length.unwrap_or(0))
    };
    let inbox = Inbox::new(length);
    // Bytes the client sent right behind its request (copied: the buffer is 8 KiB).
    let mut reading = length != Some(0) && inbox.borrow_mut().feed(&parts.read_buf);
    drop(parts.read_buf);
    drop(parts.write_buf);
    *req.payload() = Payload::Stream {
        payload: Box::pin(InboxStream(inbox.clone())),
    };
    let mut call = pin!(app.call(req));
    let answered = poll_fn(|cx| {
        if let Poll::Ready(answered) = call.as_mut().poll(cx) {
            return Poll::Ready(answered);
        }
        while reading && inbox.borrow_mut().wants_more(cx) {
            match read_some(cx, &io) {
                Poll::Pending => break,
                Poll::Ready(Ok(Some(bytes))) => {
                    reading = inbox.borrow_mut().feed(&bytes);
                }
                Poll::Ready(Ok(None)) => {
                    inbox.borrow_mut().end(Ok(()));
                    reading = false;
                }
                Poll::Ready(Err(_)) => {
                    inbox.borrow_mut().end(Err(PayloadError::Incomplete(None)));
                    reading = false;
                }
            }
        }
        Poll::Pending
    })
    .await;
    let res: Response<EitherBody<B, BoxBody>> = match answered {
        Ok(res) => Response::from(res.into_parts().1).map_body(|_, b| EitherBody::left(b)),
        Err(e) => Response::from(e.error_response()).map_body(|_, b| EitherBody::right(b)),
    };
    let (mut head, body) = res.into_parts();
    if head.status() != StatusCode::SWITCHING_PROTOCOLS {
        head.head_mut().set_connection_type(ConnectionType::Close);
        answer(io, codec, head, body).await?;
        return Ok(None);
    }
    let mut buf = BytesMut::new();
    codec.encode(Message::Item((head, BodySize::None)), &mut buf)?;
    let mut io = io;
    io.write_all(&buf).await?;
    Ok(Some((io, body, inbox)))
}

/// Writes a non-upgrade answer (its body read whole: these are error envelopes and the odd
/// REST answer) and closes the connection.
async fn answer<B: MessageBody>(
    mut io: TcpStream,
    mut codec: Codec,
    head: Response<()>,
    body: B,
) -> io::Result<()> {
    let body = actix_http::body::to_bytes(body)
        .await
        .map_err(|e| io::Error::other(e.into().to_string()))?;
    let mut buf = BytesMut::new();
    codec.encode(
        Message::Item((head, BodySize::Sized(body.len() as u64))),
        &mut buf,
    )?;
    if !body.is_empty() {
        codec.encode(Message::Chunk(Some(body)), &mut buf)?;
    }
    codec.encode(Message::Chunk(None), &mut buf)?;
    io.write_all(&buf).await?;
    linger(io).await
}
