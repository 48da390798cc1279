//! The receivers' common parts: an actix-web server on a thread of its own, scripted replies,
//! and waiting for deliveries.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};

/// One scripted answer of a receiver: its status and, if any, `Retry-After` in seconds. The
/// body is the one the real service sends with that status.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub(super) status: u16,
    pub(super) retry_after: Option<u64>,
}

impl Reply {
    /// An answer with this status (`Reply::status(410)`: the subscription is gone).
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            retry_after: None,
        }
    }

    /// Adds `Retry-After: <secs>`.
    pub fn retry_after(mut self, secs: u64) -> Reply {
        self.retry_after = Some(secs);
        self
    }

    pub(super) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Scripted replies per key (an endpoint name, a device token), consumed in order.
#[derive(Default)]
pub(super) struct Scripts(HashMap<String, VecDeque<Reply>>);

impl Scripts {
    pub(super) fn add(&mut self, key: &str, replies: Vec<Reply>) {
        self.0.entry(key.to_owned()).or_default().extend(replies);
    }

    pub(super) fn next(&mut self, key: &str) -> Option<Reply> {
        self.0.get_mut(key)?.pop_front()
    }
}

/// An HTTP server on 127.0.0.1:<random port>, run by an actix system on its own thread so that
/// it answers whatever the test's runtime is doing; stopped on drop.
pub(super) struct Running {
    port: u16,
    handle: ServerHandle,
}

impl Running {
    /// A port on loopback, bound before the server starts so that its state can know it.
    pub(super) fn bind() -> (TcpListener, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver port");
        let port = listener.local_addr().expect("receiver address").port();
        (listener, port)
    }

    /// Serves `configure`'s routes on `listener` from a new thread.
    pub(super) fn start<F>(listener: TcpListener, configure: F) -> Running
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let port = listener.local_addr().expect("receiver address").port();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("push-receiver-{port}"))
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || App::new().configure(configure.clone()))
                        .workers(1)
                        // Longer than a client keeps an idle connection (awc: 15 s), so that
                        // the server's client never reuses one this end already closed.
                        .keep_alive(Duration::from_secs(60))
                        .disable_signals()
                        .shutdown_timeout(0)
                        .listen(listener)
                        .expect("receiver listens")
                        .run();
                    let _ = tx.send(server.handle());
                    let _ = server.await;
                })
            })
            .expect("spawn the receiver thread");
        let handle = rx.recv().expect("the receiver started");
        Running { port, handle }
    }

    pub(super) fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The command is sent now; the server's thread ends by itself once it stopped.
        drop(self.handle.stop(false));
    }
}

/// Seconds since the epoch.
pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Polls `read` until it holds `n` items; panics after `timeout` with `describe()`.
pub(super) async fn wait_for<T>(
    n: usize,
    timeout: Duration,
    read: impl Fn() -> Vec<T>,
    describe: impl Fn() -> String,
) -> Vec<T> {
    let started = Instant::now();
    loop {
        let items = read();
        if items.len() >= n {
            return items;
        }
        if started.elapsed() > timeout {
            panic!(
                "waited {timeout:?} for {n} deliveries, got {}; {}",
                items.len(),
                describe()
            );
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}
