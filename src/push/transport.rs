//! The one way this layer reaches the network: a POST, answered or failed. The server layer
//! implements it with awc, refusing loopback and private addresses unless
//! `HUBBUB_PUSH_ALLOW_INSECURE` (the check is made on the addresses the name resolves to when
//! the connection is made, so a name can't be re-pointed after it was checked).

use std::time::Duration;

use futures_util::future::LocalBoxFuture;

/// A request to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The answer of the far end.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// `Retry-After`, in seconds or as an HTTP date, turned into a wait.
    pub retry_after: Option<Duration>,
    /// At most 64 KiB of it.
    pub body: Vec<u8>,
}

/// Why no answer came.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The address is not one this server may reach (loopback, private, not https).
    Forbidden(String),
    /// No answer within the time allowed.
    Timeout,
    /// The connection failed.
    Network(String),
}

/// Sends POST requests. The future is not `Send`: the server's client lives on one thread, and
/// so does the worker that uses it.
pub trait Transport: 'static {
    fn post(&self, request: Outgoing) -> LocalBoxFuture<'_, Result<Reply, Failure>>;
}
