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
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::metrics::Metrics;
use inbox::{Inbox, InboxStream};
use pump::{linger, pump_bytes, read_some};

mod guard;
mod inbox;
mod pump;
#[cfg(test)]
mod testing;

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
        // Counted from the start, so that shutdown also waits for a socket being opened.
        let pump = Pump::start(self.pumps.clone());
        Box::pin(serve(self.app.clone(), pump, req, framed))
    }
}

/// One upgrade request, from the request head to the end of its connection: the handshake,
/// then, after a `101`, the pump in a task of its own (which keeps `pump` counted until it
/// ends).
async fn serve<S, B, T>(
    app: Rc<S>,
    pump: Pump,
    req: Request,
    framed: Framed<T, Codec>,
) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
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
type Upgraded<T, B> = (T, EitherBody<B, BoxBody>, Rc<RefCell<Inbox>>);

/// Runs the request through the App and writes its answer: the upgraded connection after a
/// `101`, else `None` (the answer was written and the connection closed).
///
/// The request's body is what the client sends on the connection: for a `GET` (a WebSocket),
/// everything until the connection ends, which after the `101` is the client's frames; for
/// any other method, the next `Content-Length` bytes (actix-http sends any request with
/// `Upgrade: websocket` here, whatever its method, and without counting its body). It is fed
/// while the App works, so a handler that reads it gets it, and a client that leaves is seen.
async fn handshake<S, B, T>(
    app: Rc<S>,
    mut req: Request,
    framed: Framed<T, Codec>,
) -> io::Result<Option<Upgraded<T, B>>>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let parts = framed.into_parts();
    let (mut io, mut codec) = (parts.io, parts.codec);
    let length = body_length(&req);
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
            match read_some(cx, &mut io) {
                Poll::Pending => break,
                Poll::Ready(Ok(Some(bytes))) => {
                    reading = inbox.borrow_mut().feed(&bytes);
                }
                Poll::Ready(Ok(None)) => {
                    inbox.borrow_mut().eof();
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
    io.write_all(&buf).await?;
    Ok(Some((io, body, inbox)))
}

/// How the request's body is framed: `None` for a `GET` (a WebSocket: the client's frames, to
/// the end of the connection), else its `Content-Length`, 0 without one (the App refuses a
/// chunked body with 411, `api::middleware::oversized`).
fn body_length(req: &Request) -> Option<usize> {
    if req.method() == Method::GET {
        return None;
    }
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    Some(length.unwrap_or(0))
}

/// Writes a non-upgrade answer (its body read whole: these are error envelopes and the odd
/// REST answer) and closes the connection.
async fn answer<T: AsyncRead + AsyncWrite + Unpin, B: MessageBody>(
    mut io: T,
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use actix_web::dev::ServiceRequest;
    use actix_web::middleware::{from_fn, Next};
    use actix_web::{web, App, HttpRequest, HttpResponse};
    use futures_util::StreamExt;
    use tokio::io::{duplex, AsyncReadExt, DuplexStream};
    use tokio::time::timeout;

    use super::*;
    use testing::{arrive, client_frame, read_head, read_n, ws_request, TIMEOUT};

    /// A WebSocket as the stream route opens one: pongs for pings, a close for a close.
    async fn socket(req: HttpRequest, body: web::Payload) -> actix_web::Result<HttpResponse> {
        let (res, mut session, mut messages) = actix_ws::handle(&req, body)?;
        actix_rt::spawn(async move {
            while let Some(Ok(message)) = messages.next().await {
                match message {
                    actix_ws::Message::Ping(bytes) if session.pong(&bytes).await.is_err() => return,
                    actix_ws::Message::Close(reason) => {
                        let _ = session.close(reason).await;
                        return;
                    }
                    _ => {}
                }
            }
        });
        Ok(res)
    }

    /// Reads the request's body whole: 200 with it, or 400 with how it failed.
    async fn echo(mut body: web::Payload) -> HttpResponse {
        let mut received = Vec::new();
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => received.extend_from_slice(&bytes),
                Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
            }
        }
        HttpResponse::Ok().body(received)
    }

    /// A middleware that fails a request: the App's service answers with an error, not a
    /// response.
    async fn deny(
        req: ServiceRequest,
        next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
        if req.path() == "/denied" {
            return Err(actix_web::error::ErrorForbidden("denied by a middleware"));
        }
        next.call(req).await
    }

    async fn app() -> Rc<
        impl Service<
            Request,
            Response = ServiceResponse<impl MessageBody + 'static>,
            Error = actix_web::Error,
        >,
    > {
        let app = App::new()
            .route("/ws", web::get().to(socket))
            .route(
                "/refused",
                web::get().to(|| async { HttpResponse::Forbidden().body("no") }),
            )
            .route("/echo", web::post().to(echo))
            .wrap(from_fn(deny));
        Rc::new(actix_web::test::init_service(app).await)
    }

    fn pumps() -> Pumps {
        Pumps::new(Arc::new(Metrics::default()), TIMEOUT)
    }

    /// Everything the server writes until its FIN; the client is gone after it (so that the
    /// server's linger ends).
    async fn answer_of(mut client: DuplexStream) -> String {
        let mut answer = Vec::new();
        timeout(TIMEOUT, client.read_to_end(&mut answer))
            .await
            .expect("the server closes")
            .expect("the read");
        String::from_utf8(answer).expect("a UTF-8 answer")
    }

    /// Runs `raw` through the handshake, the client sending `then` once it has begun and
    /// reading until the server closes; what the handshake returned (`true`: upgraded), and
    /// the answer.
    async fn refused(raw: &[u8], then: &[u8], close_after: bool) -> (io::Result<bool>, String) {
        let (mut client, server) = duplex(4096);
        let (req, framed) = arrive(raw, server);
        let client = async move {
            client.write_all(then).await.unwrap();
            if close_after {
                client.shutdown().await.unwrap();
            }
            answer_of(client).await
        };
        let (upgraded, answer) = tokio::join!(handshake(app().await, req, framed), client);
        (upgraded.map(|u| u.is_some()), answer)
    }

    #[actix_web::test]
    async fn a_get_reads_to_the_end_of_the_connection_and_other_methods_their_content_length() {
        let head = |raw: &[u8]| arrive(raw, duplex(1).0).0;

        assert_eq!(
            body_length(&head(&ws_request("/ws"))),
            None,
            "a WebSocket's body is its frames"
        );
        assert_eq!(
            body_length(&head(
                b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\n"
            )),
            None,
            "even one that states a length"
        );
        assert_eq!(
            body_length(&head(
                b"POST /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nContent-Length: 11\r\n\r\n"
            )),
            Some(11)
        );
        assert_eq!(
            body_length(&head(
                b"DELETE /x HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\r\n"
            )),
            Some(0),
            "no length, no body"
        );
    }

    #[actix_web::test]
    async fn a_refusal_is_written_whole_with_connection_close_and_the_connection_ends() {
        // Act
        let (upgraded, answer) = refused(&ws_request("/refused"), b"", false).await;

        // Assert
        assert!(!upgraded.expect("no I/O error"), "not upgraded");
        let lower = answer.to_lowercase();
        assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
        assert!(lower.contains("\r\nconnection: close\r\n"), "{answer}");
        assert!(lower.contains("\r\ncontent-length: 2\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nno"), "{answer}");
    }

    #[actix_web::test]
    async fn an_error_from_the_app_is_written_as_its_response_and_the_connection_ends() {
        // Act
        let (upgraded, answer) = refused(&ws_request("/denied"), b"", false).await;

        // Assert
        assert!(!upgraded.expect("no I/O error"));
        assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
        assert!(answer.to_lowercase().contains("\r\nconnection: close\r\n"));
        assert!(
            answer.ends_with("\r\n\r\ndenied by a middleware"),
            "{answer}"
        );
    }

    #[actix_web::test]
    async fn a_body_framed_by_content_length_is_read_from_the_connection_while_the_app_works() {
        // Arrange: half the body behind the head, the rest later, then bytes past the body.
        let raw = b"POST /echo HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n\
                    Content-Length: 11\r\n\r\nhello";

        // Act
        let (upgraded, answer) = refused(raw, b" worldGET / HTTP/1.1\r\n\r\n", false).await;

        // Assert
        assert!(!upgraded.expect("no I/O error"));
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.to_lowercase().contains("\r\nconnection: close\r\n"));
        assert!(answer.ends_with("\r\n\r\nhello world"), "{answer}");
    }

    #[actix_web::test]
    async fn a_post_without_content_length_is_answered_with_an_empty_body_at_once() {
        // Act: the client sends nothing more and keeps the connection open.
        let (upgraded, answer) = refused(
            b"POST /echo HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n\r\n",
            b"",
            false,
        )
        .await;

        // Assert
        assert!(!upgraded.expect("no I/O error"));
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.to_lowercase().contains("\r\ncontent-length: 0\r\n"));
        assert!(answer.ends_with("\r\n\r\n"), "{answer}");
    }

    #[actix_web::test]
    async fn a_client_that_closes_mid_body_has_the_body_end_incomplete() {
        // Act: 3 of 10 bytes, then the client's FIN.
        let (upgraded, answer) = refused(
            b"POST /echo HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n\
              Content-Length: 10\r\n\r\nabc",
            b"",
            true,
        )
        .await;

        // Assert: the handler saw the body fail, not a body of 3 bytes.
        assert!(!upgraded.expect("no I/O error"));
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        let incomplete = PayloadError::Incomplete(None).to_string();
        assert!(answer.ends_with(&incomplete), "{answer}");
    }

    #[actix_web::test]
    async fn a_101_writes_only_its_head_and_hands_over_the_connection_the_body_and_the_inbox() {
        // Arrange: a ping right behind the request, in actix-http's read buffer.
        let (mut client, server) = duplex(4096);
        let mut raw = ws_request("/ws");
        raw.extend(client_frame(0x9, b"early"));
        let (req, framed) = arrive(&raw, server);

        // Act
        let upgraded = handshake(app().await, req, framed)
            .await
            .expect("no I/O error");
        let Some((mut io, body, _inbox)) = upgraded else {
            panic!("upgraded");
        };
        let head = read_head(&mut client).await;
        let mut more = [0u8; 1];
        let nothing_more = timeout(Duration::from_millis(50), client.read(&mut more)).await;
        let mut body = pin!(body);
        let first = timeout(TIMEOUT, poll_fn(|cx| body.as_mut().poll_next(cx))).await;
        io.write_all(b"x").await.unwrap();
        let through = read_n(&mut client, 1).await;

        // Assert
        let lower = head.to_lowercase();
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{head}"
        );
        assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{head}");
        assert!(
            lower.contains("\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
            "{head}"
        );
        assert!(
            !lower.contains("content-length") && !lower.contains("transfer-encoding"),
            "frames follow a 101 as they are: {head}"
        );
        assert!(
            nothing_more.is_err(),
            "nothing behind the head until the pump writes"
        );
        let first = first.expect("a frame").expect("the body goes on");
        assert_eq!(
            first.ok().as_deref(),
            Some(&b"\x8a\x05early"[..]),
            "the early ping reached actix-ws, and its pong is the body's first frame"
        );
        assert_eq!(through, b"x", "the connection is the client's");
    }

    #[actix_web::test]
    async fn a_socket_is_served_by_a_counted_pump_from_its_first_ping_to_its_close() {
        // Arrange
        let pumps = pumps();
        let (mut client, server) = duplex(4096);
        let mut raw = ws_request("/ws");
        raw.extend(client_frame(0x9, b"early"));
        let (req, framed) = arrive(&raw, server);
        let pump = Pump::start(pumps.clone());
        let counted_at_start = pumps.count();

        // Act
        serve(app().await, pump, req, framed)
            .await
            .expect("upgraded");
        let head = read_head(&mut client).await;
        let pong = read_n(&mut client, 7).await;
        let counted_while_open = pumps.count();
        client
            .write_all(&client_frame(0x8, &1000u16.to_be_bytes()))
            .await
            .unwrap();
        let close = read_n(&mut client, 4).await;
        let rest = answer_of(client).await;
        timeout(TIMEOUT, pumps.drained(TIMEOUT)).await.unwrap();

        // Assert
        assert_eq!(counted_at_start, 1, "counted from the handshake on");
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert_eq!(pong, b"\x8a\x05early");
        assert_eq!(
            counted_while_open, 1,
            "the pump runs on in a task of its own"
        );
        assert_eq!(close, [0x88, 0x02, 0x03, 0xe8], "the close is answered");
        assert!(rest.is_empty(), "the connection ends after the close frame");
        assert_eq!(pumps.count(), 0, "and the pump is no longer counted");
    }

    #[actix_web::test]
    async fn a_refused_upgrade_runs_no_pump() {
        // Arrange
        let pumps = pumps();
        let (client, server) = duplex(4096);
        let (req, framed) = arrive(&ws_request("/refused"), server);

        // Act
        let (served, answer) = tokio::join!(
            serve(app().await, Pump::start(pumps.clone()), req, framed),
            answer_of(client)
        );

        // Assert
        assert!(served.is_ok());
        assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
        assert_eq!(pumps.count(), 0);
    }

    #[actix_web::test]
    async fn a_client_gone_before_the_answer_leaves_no_pump_counted() {
        // Arrange
        let pumps = pumps();
        let (client, server) = duplex(4096);
        let (req, framed) = arrive(&ws_request("/ws"), server);
        drop(client);

        // Act
        let served = timeout(
            TIMEOUT,
            serve(app().await, Pump::start(pumps.clone()), req, framed),
        )
        .await;

        // Assert
        assert!(served.is_ok(), "the handshake ends");
        timeout(TIMEOUT, pumps.drained(TIMEOUT)).await.unwrap();
        assert_eq!(pumps.count(), 0);
    }

    #[actix_web::test]
    async fn drained_waits_for_the_last_pump_or_its_timeout() {
        // Arrange
        let pumps = pumps();
        let pump = Pump::start(pumps.clone());

        // Act
        let started = Instant::now();
        pumps.drained(Duration::from_millis(100)).await;
        let gave_up_after = started.elapsed();
        actix_rt::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(pump);
        });
        let started = Instant::now();
        pumps.drained(TIMEOUT).await;
        let drained_after = started.elapsed();

        // Assert
        assert!(
            gave_up_after >= Duration::from_millis(100),
            "{gave_up_after:?}"
        );
        assert!(drained_after < Duration::from_secs(1), "{drained_after:?}");
        assert_eq!(pumps.count(), 0);
    }
}
