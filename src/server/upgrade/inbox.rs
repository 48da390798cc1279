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

    /// The client closed its side of the connection: the end of a WebSocket's frames, or, for
    /// a body with a length that hasn't all come, a body cut short (as actix-http's own
    /// dispatcher ends it).
    pub(super) fn eof(&mut self) {
        match self.left {
            Some(left) if left > 0 => self.end(Err(PayloadError::Incomplete(None))),
            _ => self.end(Ok(())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::upgrade::testing::{client_frame, Wakes};

    /// What actix-ws would get from the stream right now.
    fn next(
        stream: &mut InboxStream,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, PayloadError>>> {
        Pin::new(stream).poll_next(cx)
    }

    /// Everything the stream has now, and how it stands after: pending, ended (`None`) or
    /// failed (the error's text).
    fn drain(stream: &mut InboxStream, cx: &mut Context<'_>) -> (Vec<u8>, Poll<Option<String>>) {
        let mut bytes = Vec::new();
        loop {
            match next(stream, cx) {
                Poll::Ready(Some(Ok(b))) => bytes.extend_from_slice(&b),
                Poll::Ready(Some(Err(e))) => return (bytes, Poll::Ready(Some(e.to_string()))),
                Poll::Ready(None) => return (bytes, Poll::Ready(None)),
                Poll::Pending => return (bytes, Poll::Pending),
            }
        }
    }

    #[test]
    fn a_body_with_a_length_takes_exactly_its_bytes_then_ends() {
        let (_, waker) = Wakes::new();
        let mut cx = Context::from_waker(&waker);
        let inbox = Inbox::new(Some(11));
        let mut stream = InboxStream(inbox.clone());

        assert!(inbox.borrow_mut().feed(b"hello"), "6 bytes still to come");
        assert!(!inbox.borrow_mut().feed(b" worldGET /next HTTP/1.1"));

        let (bytes, end) = drain(&mut stream, &mut cx);
        assert_eq!(bytes, b"hello world", "nothing past the Content-Length");
        assert_eq!(end, Poll::Ready(None), "the body ended cleanly");
    }

    #[test]
    fn an_empty_body_has_ended_before_any_read() {
        let (_, waker) = Wakes::new();
        let mut cx = Context::from_waker(&waker);
        let mut stream = InboxStream(Inbox::new(Some(0)));

        assert_eq!(drain(&mut stream, &mut cx), (vec![], Poll::Ready(None)));
    }

    #[test]
    fn a_body_cut_short_by_the_clients_eof_ends_incomplete() {
        let (_, waker) = Wakes::new();
        let mut cx = Context::from_waker(&waker);
        let inbox = Inbox::new(Some(10));
        let mut stream = InboxStream(inbox.clone());

        inbox.borrow_mut().feed(b"abc");
        inbox.borrow_mut().eof();

        let (bytes, end) = drain(&mut stream, &mut cx);
        assert_eq!(bytes, b"abc");
        assert_eq!(
            end,
            Poll::Ready(Some(PayloadError::Incomplete(None).to_string()))
        );
        assert_eq!(
            next(&mut stream, &mut cx).map(|i| i.is_none()),
            Poll::Ready(true),
            "the error is given once, then the end"
        );
    }

    #[test]
    fn the_clients_eof_ends_websocket_frames_cleanly() {
        let (_, waker) = Wakes::new();
        let mut cx = Context::from_waker(&waker);
        let inbox = Inbox::new(None);
        let mut stream = InboxStream(inbox.clone());
        let ping = client_frame(0x9, b"hi");

        assert!(inbox.borrow_mut().feed(&ping));
        inbox.borrow_mut().eof();

        assert_eq!(drain(&mut stream, &mut cx), (ping, Poll::Ready(None)));
    }

    #[test]
    fn a_data_frame_reaches_actix_ws_as_an_empty_text_frame_and_ends_the_frames() {
        let (_, waker) = Wakes::new();
        let mut cx = Context::from_waker(&waker);
        let inbox = Inbox::new(None);
        let mut stream = InboxStream(inbox.clone());
        let ping = client_frame(0x9, b"hi");
        let mut bytes = ping.clone();
        bytes.extend(client_frame(0x1, b"hello"));

        assert!(!inbox.borrow_mut().feed(&bytes), "reading stops");

        let mut expected = ping;
        expected.extend([0x81, 0x80, 0, 0, 0, 0]);
        assert_eq!(drain(&mut stream, &mut cx), (expected, Poll::Ready(None)));
    }

    #[test]
    fn a_frame_no_client_may_send_ends_the_frames_with_an_error() {
        let (_, waker) = Wakes::new();
        let mut cx = Context::from_waker(&waker);
        let inbox = Inbox::new(None);
        let mut stream = InboxStream(inbox.clone());

        assert!(
            !inbox.borrow_mut().feed(&[0x89, 0x02, b'h', b'i']),
            "an unmasked ping"
        );

        assert_eq!(
            drain(&mut stream, &mut cx),
            (
                vec![],
                Poll::Ready(Some(PayloadError::EncodingCorrupted.to_string()))
            )
        );
    }

    #[test]
    fn the_first_end_is_the_one_given() {
        let (_, waker) = Wakes::new();
        let mut cx = Context::from_waker(&waker);
        let inbox = Inbox::new(None);
        let mut stream = InboxStream(inbox.clone());

        inbox.borrow_mut().end(Err(PayloadError::Incomplete(None)));
        inbox.borrow_mut().end(Ok(()));
        inbox.borrow_mut().eof();

        assert_eq!(
            drain(&mut stream, &mut cx),
            (
                vec![],
                Poll::Ready(Some(PayloadError::Incomplete(None).to_string()))
            )
        );
    }

    #[test]
    fn a_waiting_reader_is_woken_by_bytes_and_by_the_end() {
        let (wakes, waker) = Wakes::new();
        let mut cx = Context::from_waker(&waker);
        let inbox = Inbox::new(None);
        let mut stream = InboxStream(inbox.clone());

        assert!(next(&mut stream, &mut cx).is_pending());
        inbox.borrow_mut().feed(&client_frame(0xa, b""));
        assert_eq!(wakes.count(), 1, "woken by the bytes");
        assert!(matches!(
            next(&mut stream, &mut cx),
            Poll::Ready(Some(Ok(_)))
        ));
        assert!(next(&mut stream, &mut cx).is_pending());
        inbox.borrow_mut().eof();
        assert_eq!(wakes.count(), 2, "woken by the end");
        assert!(matches!(next(&mut stream, &mut cx), Poll::Ready(None)));
    }

    #[test]
    fn reading_pauses_at_the_limit_until_actix_ws_takes_some() {
        let (pump_wakes, pump_waker) = Wakes::new();
        let mut pump = Context::from_waker(&pump_waker);
        let (_, reader_waker) = Wakes::new();
        let mut reader = Context::from_waker(&reader_waker);
        let inbox = Inbox::new(Some(2 * INBOX_LIMIT));
        let mut stream = InboxStream(inbox.clone());

        assert!(inbox.borrow_mut().wants_more(&mut pump));
        inbox.borrow_mut().feed(&vec![7; INBOX_LIMIT - 1]);
        assert!(inbox.borrow_mut().wants_more(&mut pump), "below the limit");
        inbox.borrow_mut().feed(&[7]);
        assert!(!inbox.borrow_mut().wants_more(&mut pump), "at the limit");
        assert_eq!(pump_wakes.count(), 0);

        assert!(matches!(
            next(&mut stream, &mut reader),
            Poll::Ready(Some(Ok(_)))
        ));

        assert_eq!(
            pump_wakes.count(),
            1,
            "the pump is woken when there is room"
        );
        assert!(inbox.borrow_mut().wants_more(&mut pump));
    }

    #[test]
    fn once_actix_ws_drops_the_body_the_clients_bytes_are_read_and_dropped() {
        let (pump_wakes, pump_waker) = Wakes::new();
        let mut pump = Context::from_waker(&pump_waker);
        let inbox = Inbox::new(Some(4 * INBOX_LIMIT));
        let stream = InboxStream(inbox.clone());
        inbox.borrow_mut().feed(&vec![7; INBOX_LIMIT]);
        assert!(!inbox.borrow_mut().wants_more(&mut pump));

        drop(stream);

        assert_eq!(pump_wakes.count(), 1, "a pump waiting for room is woken");
        assert!(inbox.borrow_mut().wants_more(&mut pump), "and reads on");
        assert!(inbox.borrow_mut().feed(&vec![7; INBOX_LIMIT]));
        assert!(inbox.borrow().items.is_empty(), "what it reads is not kept");
    }
}
