//! A socket's queue: the frames the hub hands it, and why the hub closed it.
//!
//! One small allocation per socket, and nothing more until frames wait in it (an idle socket's
//! queue is empty): a tokio `mpsc` channel allocates its first block of 32 slots up front, and
//! a `watch` channel for the close reason costs another allocation. The hub never waits on it:
//! `try_send` fails when the queue is full, and the hub then closes the socket.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use bytestring::ByteString;

/// Why the server closes a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The queue overflowed: reconnect with `since=` the last cursor received.
    Resume,
    /// The credential was revoked (logout, token deleted): don't retry.
    Revoked,
    /// The credential expired: don't retry with it.
    Expired,
    /// The server is shutting down: reconnect (to another node, or later).
    ShuttingDown,
}

/// A frame queued for a socket.
pub type Frame = (i64, ByteString);

struct Inner {
    frames: VecDeque<Frame>,
    capacity: usize,
    /// Set by the hub: the socket must close, whatever is still queued.
    closed: Option<Close>,
    /// The hub dropped its end.
    sender_gone: bool,
    /// The socket dropped its end.
    receiver_gone: bool,
    waiting: Option<Waker>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    // Nothing in `Inner` can be left half-updated by a panic that matters more than delivery.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A queue of at most `capacity` frames.
pub fn queue(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Mutex::new(Inner {
        frames: VecDeque::new(),
        capacity: capacity.max(1),
        closed: None,
        sender_gone: false,
        receiver_gone: false,
        waiting: None,
    }));
    (Sender(shared.clone()), Receiver(shared))
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue is full: the socket fell behind.
    Full,
    /// The socket is gone, or already closed.
    Closed,
}

/// The hub's end.
pub struct Sender(Shared);

impl Sender {
    /// Queues a frame without waiting.
    pub fn try_send(&self, frame: Frame) -> Result<(), Refused> {
        let mut inner = lock(&self.0);
        if inner.receiver_gone || inner.closed.is_some() {
            return Err(Refused::Closed);
        }
        if inner.frames.len() >= inner.capacity {
            return Err(Refused::Full);
        }
        inner.frames.push_back(frame);
        if let Some(w) = inner.waiting.take() {
            w.wake();
        }
        Ok(())
    }

    /// Tells the socket to close (the first reason given wins).
    pub fn close(&self, why: Close) {
        let mut inner = lock(&self.0);
        inner.closed.get_or_insert(why);
        if let Some(w) = inner.waiting.take() {
            w.wake();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut inner = lock(&self.0);
        inner.sender_gone = true;
        if let Some(w) = inner.waiting.take() {
            w.wake();
        }
    }
}

/// The socket's end.
pub struct Receiver(Shared);

impl Receiver {
    /// The next frame; `None` once the hub closed the socket (see `closed`) or dropped it.
    /// Cancel-safe: a frame is taken only when it is returned.
    pub async fn recv(&mut self) -> Option<Frame> {
        poll_fn(|cx| {
            let mut inner = lock(&self.0);
            if inner.closed.is_some() {
                return Poll::Ready(None);
            }
            if let Some(frame) = inner.take() {
                return Poll::Ready(Some(frame));
            }
            if inner.sender_gone {
                return Poll::Ready(None);
            }
            match &inner.waiting {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inner.waiting = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// A frame already queued, if any (and the socket isn't closed).
    pub fn try_recv(&mut self) -> Option<Frame> {
        let mut inner = lock(&self.0);
        if inner.closed.is_some() {
            return None;
        }
        inner.take()
    }

    /// Why the hub closed the socket, if it did.
    pub fn closed(&self) -> Option<Close> {
        lock(&self.0).closed
    }
}

impl Inner {
    fn take(&mut self) -> Option<Frame> {
        let frame = self.frames.pop_front();
        // A burst may have grown the buffer; an idle socket shouldn't keep it.
        if self.frames.is_empty() && self.frames.capacity() > 16 {
            self.frames = VecDeque::new();
        }
        frame
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut inner = lock(&self.0);
        inner.receiver_gone = true;
        inner.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytestring::ByteString;

    fn frame(id: i64) -> Frame {
        (id, ByteString::from(format!("frame {id}")))
    }

    #[actix_rt::test]
    async fn frames_arrive_in_order_until_the_hub_closes_the_queue() {
        let (tx, mut rx) = queue(2);
        tx.try_send(frame(1)).unwrap();
        tx.try_send(frame(2)).unwrap();
        assert_eq!(tx.try_send(frame(3)), Err(Refused::Full));
        assert_eq!(rx.recv().await.unwrap().0, 1);
        assert_eq!(rx.try_recv().unwrap().0, 2);
        assert!(rx.try_recv().is_none());
        // A waiting receiver is woken by a frame sent later.
        let waiting = actix_rt::spawn(async move {
            let got = rx.recv().await.map(|f| f.0);
            (got, rx)
        });
        actix_rt::task::yield_now().await;
        tx.try_send(frame(4)).unwrap();
        let (got, mut rx) = waiting.await.unwrap();
        assert_eq!(got, Some(4));
        // Closing wins over queued frames, and refuses new ones.
        tx.try_send(frame(5)).unwrap();
        tx.close(Close::Revoked);
        tx.close(Close::Resume);
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.closed(), Some(Close::Revoked));
        assert_eq!(tx.try_send(frame(6)), Err(Refused::Closed));
    }

    #[actix_rt::test]
    async fn either_end_going_away_is_seen_by_the_other() {
        let (tx, mut rx) = queue(4);
        tx.try_send(frame(1)).unwrap();
        drop(tx);
        assert_eq!(
            rx.recv().await.unwrap().0,
            1,
            "queued frames are still read"
        );
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.closed(), None);
        let (tx, rx) = queue(4);
        drop(rx);
        assert_eq!(tx.try_send(frame(1)), Err(Refused::Closed));
    }
}
