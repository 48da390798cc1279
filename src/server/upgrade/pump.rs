//! The pump of an upgraded connection: actix-ws's outgoing frames to the TCP stream, the
//! client's bytes to actix-ws's message stream, taking turns, until either side ends it.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::error::PayloadError;
use actix_rt::net::TcpStream;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
pub(super) async fn pump_bytes<B: MessageBody>(
    mut io: TcpStream,
    body: B,
    inbox: Rc<RefCell<Inbox>>,
    write_timeout: Duration,
) -> io::Result<()> {
    let mut body = pin!(body);
    let mut reading = true;
    let mut read_first = false;
    let result = loop {
        let step = poll_fn(|cx| {
            if read_first {
                if let Poll::Ready(step) = poll_read(cx, &io, &inbox, reading) {
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
                poll_read(cx, &io, &inbox, reading)
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
                inbox.borrow_mut().end(Ok(()));
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

fn poll_read(
    cx: &mut Context<'_>,
    io: &TcpStream,
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
/// an idle connection holds none, and what is kept is copied to its exact size.
pub(super) fn read_some(cx: &mut Context<'_>, io: &TcpStream) -> Poll<io::Result<Option<Bytes>>> {
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        match io.poll_read_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {}
        }
        match io.try_read(&mut chunk) {
            Ok(0) => return Poll::Ready(Ok(None)),
            Ok(n) => return Poll::Ready(Ok(Some(Bytes::copy_from_slice(&chunk[..n])))),
            // Readiness was stale: poll it again, which registers the waker.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Ends a connection the server is done with: FIN, then whatever the client still sends is
/// read and dropped (for a second and 64 KiB at most), so that closing doesn't answer it with
/// a reset that could destroy the last frames or the answer on the client's side. A client
/// that keeps sending past that gets the reset.
pub(super) async fn linger(mut io: TcpStream) -> io::Result<()> {
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
