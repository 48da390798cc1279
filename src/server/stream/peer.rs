//! Whether a request's client is still there. actix-web keeps running a handler whose client
//! has closed its connection (it notices only when it writes the answer), so a long poll
//! checks for itself, and gives its hub slot back when the client has left.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use actix_web::HttpRequest;

/// How often a waiting request looks at its connection.
const EVERY: Duration = Duration::from_secs(1);

/// The connection a request came on (put in each request's extensions at connect).
#[derive(Debug, Clone, Copy)]
pub struct Peer(RawFd);

impl Peer {
    pub fn of(io: &impl AsRawFd) -> Peer {
        Peer(io.as_raw_fd())
    }

    /// The connection's peer, if the request came on a connection the server knows.
    pub fn of_request(req: &HttpRequest) -> Option<Peer> {
        req.conn_data::<Peer>().copied()
    }

    /// Ends the TCP connection (both directions) without closing the descriptor, which stays
    /// actix-http's to close: its next read or write on it fails, and it drops the connection
    /// with whatever response it was writing. For a client that stopped reading, whose
    /// response would otherwise wait on it for as long as TCP keeps the connection up.
    /// Only call it while the response of this connection is known to be alive (the
    /// descriptor could otherwise be another connection's by now).
    pub fn cut(self) {
        // SAFETY: shutdown(2) on a descriptor changes no memory; the caller makes sure it is
        // still this connection's.
        unsafe {
            libc::shutdown(self.0, libc::SHUT_RDWR);
        }
    }

    /// Whether the client closed or reset the connection: a peek finds its end (0 bytes) or an
    /// error. Bytes waiting (a pipelined request) or none yet mean it is still there. An HTTP
    /// client that half-closes while it waits counts as gone, as it does for nginx.
    fn gone(self) -> bool {
        let mut byte = 0u8;
        // SAFETY: the descriptor belongs to the connection that carries the request being
        // served, which outlives the request's handler; MSG_PEEK reads nothing from it.
        let n = unsafe {
            libc::recv(
                self.0,
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match n {
            0 => true,
            n if n > 0 => false,
            _ => {
                let e = std::io::Error::last_os_error().kind();
                !matches!(
                    e,
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                )
            }
        }
    }
}

/// Resolves once the client of `req` has gone (never, for a request without a known peer).
pub async fn gone(req: &HttpRequest) {
    left(req.conn_data::<Peer>().copied()).await
}

/// Resolves once `peer` has gone (never, for `None`): [`gone`] for a task that outlives the
/// request's handler (an SSE stream), which keeps the peer rather than the request.
pub async fn left(peer: Option<Peer>) {
    let Some(peer) = peer else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        if peer.gone() {
            return;
        }
    }
}
