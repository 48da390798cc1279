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

use super::guard::{FrameGuard, Verdict};

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
    /// Body bytes still to come, for a body with a length; `None` for a WebSocket's frames,
    /// which run to the end of the connection and pass the guard first.
    left: Option<usize>,
    guard: FrameGuard,
}

impl Inbox {
    /// The inbox of a body of `length` bytes, or of WebSocket frames (`None`).
    pub(super) fn new(length: Option<usize>) -> Rc<RefCell<Inbox>> {
        let inbox = Inbox {
            items: VecDeque::new(),
            len: 0,
            end: None,
            reader: None,
            pump: None,
            dropped: false,
            left: length,
            guard: FrameGuard::default(),
        };
        if length == Some(0) {
            let inbox = Rc::new(RefCell::new(inbox));
            inbox.borrow_mut().end(Ok(()));
            return inbox;
        }
        Rc::new(RefCell::new(inbox))
    }

    /// Takes what the client sent: up to the body's length (then ends the body), or the
    /// WebSocket frames the guard lets through. Returns whether to read more of the connection.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> bool {
        match &mut self.left {
            Some(left) => {
                let take = (*left).min(bytes.len());
                *left -= take;
                let done = *left == 0;
                self.push(&bytes[..take]);
                if done {
                    self.end(Ok(()));
                }
                !done
            }
            None => {
                let mut passed = Vec::new();
                let verdict = self.guard.filter(bytes, &mut passed);
                self.push(&passed);
                match verdict {
                    Verdict::Pass => true,
                    // The socket reads the empty text frame that stands for it, and closes.
                    Verdict::DataFrame => {
                        self.end(Ok(()));
                        false
                    }
                    Verdict::Invalid => {
                        self.end(Err(PayloadError::EncodingCorrupted));
                        false
                    }
                }
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.dropped {
            return;
        }
        self.len += bytes.len();
        self.items.push_back(Bytes::copy_from_slice(bytes));
        if let Some(w) = self.reader.take() {
            w.wake();
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
