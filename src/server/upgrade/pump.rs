//! The pump of an upgraded connection: actix-ws's outgoing frames to the TCP stream, the
//! client's bytes to actix-ws's message stream, taking turns, until either side ends it.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::error::PayloadError;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::inbox::Inbox;

/// Bytes read from an upgraded connection at a time (client frames are pings and closes).
const READ_CHUNK: usize = 1024;

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
/// connection fails. Writing and reading take turns, so that a client that is slow to read
/// still gets its pongs read; reading pauses while actix-ws hasn't taken what was read (its
/// request body applies backpressure).
pub(super) async fn pump_bytes<B, T>(
    mut io: T,
    body: B,
    inbox: Rc<RefCell<Inbox>>,
    write_timeout: Duration,
) -> io::Result<()>
where
    B: MessageBody,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut body = pin!(body);
    let mut reading = true;
    let mut read_first = false;
    let result = loop {
        let step = poll_fn(|cx| {
            if read_first {
                if let Poll::Ready(step) = poll_read(cx, &mut io, &inbox, reading) {
                    return Poll::Ready(step);
                }
            }
            match body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => return Poll::Ready(Step::Write(bytes)),
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(Step::Done),
                Poll::Pending => {}
            }
            if read_first {
                Poll::Pending
            } else {
                poll_read(cx, &mut io, &inbox, reading)
            }
        })
        .await;
        read_first = !read_first;
        match step {
            Step::Write(bytes) => {
                match tokio::time::timeout(write_timeout, io.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => break Err(e),
                    Err(_) => {
                        break Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the client stopped reading",
                        ))
                    }
                }
            }
            // The guard may stop the reading (a data frame, or a frame no client may send).
            Step::Read(bytes) => reading = inbox.borrow_mut().feed(&bytes),
            Step::Eof => {
                inbox.borrow_mut().eof();
                reading = false;
            }
            Step::Failed(e) => break Err(e),
            Step::Done => break Ok(()),
        }
    };
    // Whatever happened, actix-ws's message stream must end too.
    if reading {
        inbox.borrow_mut().end(Err(PayloadError::Incomplete(None)));
    }
    match result {
        Ok(()) => linger(io).await,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e),
    }
}

fn poll_read<T: AsyncRead + Unpin>(
    cx: &mut Context<'_>,
    io: &mut T,
    inbox: &RefCell<Inbox>,
    reading: bool,
) -> Poll<Step> {
    if !reading || !inbox.borrow_mut().wants_more(cx) {
        return Poll::Pending;
    }
    match read_some(cx, io) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Ok(Some(bytes))) => Poll::Ready(Step::Read(bytes)),
        Poll::Ready(Ok(None)) => Poll::Ready(Step::Eof),
        Poll::Ready(Err(e)) => Poll::Ready(Step::Failed(e)),
    }
}

/// What the kernel has for us: `None` at EOF. A buffer exists only for the time of the call:
/// an idle connection holds none, and what is kept is copied to its exact size. (A
/// `TcpStream`'s `poll_read` waits for readiness and reads without blocking; it keeps no
/// buffer of its own.)
pub(super) fn read_some<T: AsyncRead + Unpin>(
    cx: &mut Context<'_>,
    io: &mut T,
) -> Poll<io::Result<Option<Bytes>>> {
    let mut chunk = [0u8; READ_CHUNK];
    let mut buf = ReadBuf::new(&mut chunk);
    match Pin::new(io).poll_read(cx, &mut buf) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Ok(None)),
        Poll::Ready(Ok(())) => Poll::Ready(Ok(Some(Bytes::copy_from_slice(buf.filled())))),
    }
}

/// Ends a connection the server is done with: FIN, then whatever the client still sends is
/// read and dropped (for a second and 64 KiB at most), so that closing doesn't answer it with
/// a reset that could destroy the last frames or the answer on the client's side. A client
/// that keeps sending past that gets the reset.
pub(super) async fn linger<T: AsyncRead + AsyncWrite + Unpin>(mut io: T) -> io::Result<()> {
    io.shutdown().await?;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut sink = [0u8; 512];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match io.read(&mut sink).await {
                Ok(n) if n > 0 => left = left.saturating_sub(n),
                _ => break,
            }
        }
    })
    .await;
    Ok(())
}

/// What a closing connection reads and drops at most before it closes anyway.
const LINGER_BYTES: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use actix_http::body::BodyStream;
    use futures_util::{FutureExt, StreamExt};
    use tokio::io::{duplex, DuplexStream};
    use tokio::time::{sleep, timeout};

    use super::*;
    use crate::server::upgrade::inbox::InboxStream;
    use crate::server::upgrade::testing::{body, client_frame, read_n, Wakes, TIMEOUT};

    /// The next item of actix-ws's message stream.
    async fn next(messages: &mut InboxStream) -> Option<Result<Bytes, PayloadError>> {
        timeout(TIMEOUT, messages.next())
            .await
            .expect("the message stream moves")
    }

    /// Waits for the client's EOF (the server's FIN), returning what came before it.
    async fn until_eof(client: &mut DuplexStream) -> Vec<u8> {
        let mut rest = Vec::new();
        timeout(TIMEOUT, client.read_to_end(&mut rest))
            .await
            .expect("the server closes")
            .expect("the read");
        rest
    }

    /// A connection whose reads fail (a reset), and whose writes go nowhere.
    struct Reset;

    impl AsyncRead for Reset {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
        }
    }

    impl AsyncWrite for Reset {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[actix_rt::test]
    async fn frames_go_both_ways_and_the_end_of_the_body_closes_the_connection() {
        // Arrange
        let (mut client, server) = duplex(4096);
        let (frames, body) = body();
        let inbox = Inbox::new(None);
        let mut messages = InboxStream(inbox.clone());
        let pump = actix_rt::spawn(pump_bytes(server, body, inbox, TIMEOUT));
        let pong = client_frame(0xa, b"");

        // Act
        frames.send(Bytes::from_static(&[0x89, 0x00])).unwrap();
        let ping = read_n(&mut client, 2).await;
        client.write_all(&pong).await.unwrap();
        let received = next(&mut messages).await;
        drop(frames); // the socket task closed the socket: its body ends
        let rest = until_eof(&mut client).await;
        drop(client);
        let result = timeout(TIMEOUT, pump).await.expect("the pump ends");

        // Assert
        assert_eq!(ping, [0x89, 0x00]);
        assert_eq!(received.unwrap().unwrap(), pong);
        assert!(rest.is_empty(), "nothing after the last frame but the FIN");
        assert!(result.unwrap().is_ok());
        assert!(
            matches!(
                next(&mut messages).await,
                Some(Err(PayloadError::Incomplete(None)))
            ),
            "actix-ws's message stream ends with the connection"
        );
    }

    #[actix_rt::test]
    async fn the_clients_eof_ends_the_message_stream_and_frames_still_go_out() {
        // Arrange
        let (mut client, server) = duplex(4096);
        let (frames, body) = body();
        let inbox = Inbox::new(None);
        let mut messages = InboxStream(inbox.clone());
        let pump = actix_rt::spawn(pump_bytes(server, body, inbox, TIMEOUT));

        // Act
        client.shutdown().await.unwrap();
        let ended = next(&mut messages).await;
        frames
            .send(Bytes::from_static(&[0x88, 0x02, 0x03, 0xe8]))
            .unwrap();
        let close = read_n(&mut client, 4).await;
        drop(frames);
        let rest = until_eof(&mut client).await;
        drop(client);

        // Assert
        assert!(ended.is_none(), "a clean end: the client left");
        assert_eq!(close, [0x88, 0x02, 0x03, 0xe8]);
        assert!(rest.is_empty());
        assert!(timeout(TIMEOUT, pump).await.unwrap().unwrap().is_ok());
    }

    #[actix_rt::test]
    async fn a_body_that_always_has_frames_does_not_keep_the_clients_from_being_read() {
        // Arrange: actix-ws always has something to send, and the client reads all of it.
        let (client, server) = duplex(64 * 1024);
        let (mut client_reads, mut client_writes) = tokio::io::split(client);
        let endless = BodyStream::new(futures_util::stream::repeat_with(|| {
            Ok::<_, io::Error>(Bytes::from_static(b"x"))
        }));
        let inbox = Inbox::new(None);
        let mut messages = InboxStream(inbox.clone());
        let pump = actix_rt::spawn(pump_bytes(server, endless, inbox, TIMEOUT));
        actix_rt::spawn(async move {
            let mut sink = [0u8; 4096];
            while client_reads.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        });
        let pong = client_frame(0xa, b"p");

        // Act
        client_writes.write_all(&pong).await.unwrap();
        let received = next(&mut messages).await;

        // Assert
        assert_eq!(
            received.unwrap().unwrap(),
            pong,
            "writing and reading take turns"
        );
        pump.abort();
    }

    #[actix_rt::test]
    async fn a_write_that_would_block_goes_out_as_the_client_reads() {
        // Arrange: a pipe of 16 bytes, so that the write waits for the client again and again.
        let (mut client, server) = duplex(16);
        let (frames, body) = body();
        let sent: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        frames.send(Bytes::from(sent.clone())).unwrap();
        drop(frames);
        let pump = actix_rt::spawn(pump_bytes(
            server,
            body,
            Inbox::new(None),
            Duration::from_secs(2),
        ));

        // Act: a slow reader, 16 bytes at a time.
        let mut received = Vec::new();
        let mut piece = [0u8; 16];
        loop {
            sleep(Duration::from_millis(1)).await;
            let n = timeout(TIMEOUT, client.read(&mut piece))
                .await
                .unwrap()
                .unwrap();
            if n == 0 {
                break;
            }
            received.extend_from_slice(&piece[..n]);
        }
        drop(client);

        // Assert
        assert_eq!(received, sent);
        assert!(timeout(TIMEOUT, pump).await.unwrap().unwrap().is_ok());
    }

    #[actix_rt::test]
    async fn a_client_that_takes_no_write_within_the_timeout_is_dropped() {
        // Arrange: a client that reads nothing, and a frame larger than the pipe.
        let (client, server) = duplex(64);
        let (frames, body) = body();
        frames.send(Bytes::from(vec![0u8; 1024])).unwrap();
        let inbox = Inbox::new(None);
        let mut messages = InboxStream(inbox.clone());
        let started = Instant::now();

        // Act
        let result = timeout(
            TIMEOUT,
            pump_bytes(server, body, inbox, Duration::from_millis(100)),
        )
        .await
        .expect("the write timeout ends the pump");

        // Assert
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(matches!(
            next(&mut messages).await,
            Some(Err(PayloadError::Incomplete(None)))
        ));
        drop((client, frames));
    }

    #[actix_rt::test]
    async fn a_client_gone_before_a_write_is_no_error() {
        // Arrange
        let (client, server) = duplex(64);
        drop(client);
        let (frames, body) = body();
        frames.send(Bytes::from_static(b"frame")).unwrap();

        // Act
        let result = timeout(TIMEOUT, pump_bytes(server, body, Inbox::new(None), TIMEOUT)).await;

        // Assert
        assert!(
            result.expect("the pump ends").is_ok(),
            "a broken pipe is a client that left"
        );
    }

    #[actix_rt::test]
    async fn a_read_that_fails_ends_the_pump_with_its_error_and_the_message_stream_too() {
        // Arrange
        let (_frames, body) = body();
        let inbox = Inbox::new(None);
        let mut messages = InboxStream(inbox.clone());

        // Act
        let result = timeout(TIMEOUT, pump_bytes(Reset, body, inbox, TIMEOUT))
            .await
            .expect("the pump ends");

        // Assert
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
        assert!(matches!(
            next(&mut messages).await,
            Some(Err(PayloadError::Incomplete(None)))
        ));
    }

    #[actix_rt::test]
    async fn reading_pauses_while_actix_ws_has_not_taken_what_was_read() {
        // Arrange: 300 pings of 125 bytes (39,300 bytes) sent at once; nobody takes them yet.
        let (mut client, server) = duplex(64 * 1024);
        let pings: Vec<u8> = (0..300)
            .flat_map(|_| client_frame(0x9, &[b'x'; 125]))
            .collect();
        client.write_all(&pings).await.unwrap();
        let (_frames, body) = body();
        let inbox = Inbox::new(None);
        let mut messages = InboxStream(inbox.clone());
        let _pump = actix_rt::spawn(pump_bytes(server, body, inbox, TIMEOUT));

        // Act
        sleep(Duration::from_millis(100)).await;
        let mut held = Vec::new();
        while let Some(Some(Ok(bytes))) = messages.next().now_or_never() {
            held.extend_from_slice(&bytes);
        }
        let mut received = held.clone();
        while received.len() < pings.len() {
            received.extend_from_slice(&next(&mut messages).await.unwrap().unwrap());
        }

        // Assert
        assert!(
            (32 * 1024..33 * 1024).contains(&held.len()),
            "the pump stopped reading at the limit: {} bytes held",
            held.len()
        );
        assert_eq!(
            received, pings,
            "and read on, in order, once they were taken"
        );
    }

    #[actix_rt::test]
    async fn a_read_takes_what_is_there_up_to_a_chunk_and_none_at_eof() {
        let (mut client, mut server) = duplex(4096);
        let (wakes, waker) = Wakes::new();
        let mut cx = Context::from_waker(&waker);

        assert!(read_some(&mut cx, &mut server).is_pending());
        client.write_all(&[1u8; 1500]).await.unwrap();
        assert_eq!(wakes.count(), 1, "the waiting reader is woken");
        let Poll::Ready(Ok(Some(first))) = read_some(&mut cx, &mut server) else {
            panic!("bytes");
        };
        let Poll::Ready(Ok(Some(second))) = read_some(&mut cx, &mut server) else {
            panic!("bytes");
        };
        drop(client);

        assert_eq!((first.len(), second.len()), (READ_CHUNK, 1500 - READ_CHUNK));
        assert!(matches!(
            read_some(&mut cx, &mut server),
            Poll::Ready(Ok(None))
        ));
    }

    #[actix_rt::test]
    async fn closing_sends_fin_then_reads_and_drops_what_the_client_still_sends() {
        // Arrange
        let (mut client, server) = duplex(1024);
        let closing = actix_rt::spawn(linger(server));

        // Act
        let before = until_eof(&mut client).await;
        // 16 KiB through a 1 KiB pipe go only if the server reads them.
        let sent = timeout(TIMEOUT, client.write_all(&[0u8; 16 * 1024])).await;
        drop(client);
        let closed = timeout(Duration::from_millis(500), closing).await;

        // Assert
        assert!(before.is_empty());
        assert!(sent
            .expect("the server reads what the client still sends")
            .is_ok());
        assert!(closed
            .expect("it ends at the client's EOF, not after its second")
            .unwrap()
            .is_ok());
    }

    #[actix_rt::test]
    async fn closing_reads_at_most_64_kib_from_a_client_that_keeps_sending() {
        // Arrange
        let (client, server) = duplex(1024);
        let (_client_reads, mut client_writes) = tokio::io::split(client);
        let closing = actix_rt::spawn(linger(server));

        // Act: send until the server's side is gone.
        let mut sent = 0;
        let sending = async {
            while let Ok(n) = client_writes.write(&[0u8; 512]).await {
                sent += n;
            }
        };
        timeout(TIMEOUT, sending).await.expect("the server closes");

        // Assert
        assert!(timeout(TIMEOUT, closing).await.unwrap().unwrap().is_ok());
        assert!(
            (LINGER_BYTES..LINGER_BYTES + 2048).contains(&sent),
            "{sent} bytes taken"
        );
    }

    #[actix_rt::test]
    async fn closing_waits_a_second_for_a_silent_client() {
        let (client, server) = duplex(1024);
        let started = Instant::now();

        linger(server).await.unwrap();

        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(990) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        drop(client);
    }
}
