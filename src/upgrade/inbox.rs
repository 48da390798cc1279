//! The upgraded request's body: what the client sends, on its way to actix-ws, with
//! backpressure.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_http::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

/// Bytes read but not yet taken by actix-ws past which the pump stops reading.
const INBOX_LIMIT: usize = 32 * 1024;

/// The client's bytes on their way to actix-ws (the upgraded request's body), with
/// backpressure: the pump reads only while less than `INBOX_LIMIT` is waiting.
pub(super) struct Inbox {
    items: VecDeque<Bytes>,
    len: usize,
    /// How the body ended, once it has: `Ok` at the client's EOF.
    end: Option<Result<(), PayloadError>>,
    /// The body's reader waits for bytes.
    reader: Option<Waker>,
    /// The pump waits for room.
    pump: Option<Waker>,
    /// actix-ws dropped the body: nobody reads the client's frames any more, they are dropped.
    dropped: bool,
}

impl Inbox {
    pub(super) fn new() -> Rc<RefCell<Inbox>> {
        Rc::new(RefCell::new(Inbox {
            items: VecDeque::new(),
            len: 0,
            end: None,
            reader: None,
            pump: None,
            dropped: false,
        }))
    }

    /// Takes what the client sent, up to `left` bytes if the body has a length (then ends the
    /// body when it is complete). Returns whether more of the connection belongs to the body.
    pub(super) fn feed(&mut self, bytes: &[u8], left: &mut Option<usize>) -> bool {
        let take = left.map_or(bytes.len(), |n| n.min(bytes.len()));
        if take > 0 && !self.dropped {
            self.len += take;
            self.items.push_back(Bytes::copy_from_slice(&bytes[..take]));
            if let Some(w) = self.reader.take() {
                w.wake();
            }
        }
        match left {
            Some(n) => {
                *n -= take;
                if *n == 0 {
                    self.end(Ok(()));
                    return false;
                }
                true
            }
            None => true,
        }
    }

    pub(super) fn end(&mut self, how: Result<(), PayloadError>) {
        self.end.get_or_insert(how);
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    /// Whether the pump may read more; if not, it is woken when it may. Once the reader is
    /// gone, what the client sends is read and dropped (left unread, it would turn the close
    /// into a reset).
    pub(super) fn wants_more(&mut self, cx: &mut Context<'_>) -> bool {
        if self.dropped || self.len < INBOX_LIMIT {
            return true;
        }
        self.pump = Some(cx.waker().clone());
        false
    }
}

/// actix-ws's end of the inbox.
pub(super) struct InboxStream(pub(super) Rc<RefCell<Inbox>>);

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
