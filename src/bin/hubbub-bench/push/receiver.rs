//! The local Web Push receiver: an HTTP server on loopback, inside this process (one actix
//! worker thread), that answers `201 Created` to `POST /push/<name>` as a push service does and
//! records each request's subscription, arrival time and `Topic`. It doesn't decrypt the body:
//! it only checks that the request has the shape of a Web Push request (an `aes128gcm` body at
//! least as long as its header and tag, a `vapid` `Authorization`, a `Topic`, a `TTL`).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// The path name of the requests that measure the receiver's own ceiling.
pub const CEILING: &str = "ceiling";

/// The shortest `aes128gcm` body: salt (16), record size (4), key id length (1), the sender's
/// public key (65), then at least the padding delimiter and the tag (1 + 16).
const SHORTEST_BODY: usize = 16 + 4 + 1 + 65 + 1 + 16;

/// One push that arrived.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The subscription's index (its endpoint is `/push/<prefix><index>`).
    pub subscription: usize,
    pub at: Instant,
    pub topic: Option<String>,
}

#[derive(Default)]
struct Log {
    arrivals: Vec<Arrival>,
    /// (subscription, topic) pairs seen, to count repeats.
    seen: HashSet<(usize, String)>,
    /// Requests not shaped like Web Push, by what was wrong.
    malformed: BTreeMap<&'static str, u64>,
}

struct Shared {
    prefix: String,
    /// Pushes to this run's subscriptions, repeats included.
    total: AtomicU64,
    /// Pushes to this run's subscriptions, a repeated (subscription, Topic) counted once.
    distinct: AtomicU64,
    /// Requests to names that are no subscription of this run.
    unknown: AtomicU64,
    /// Requests to [`CEILING`].
    ceiling: AtomicU64,
    log: Mutex<Log>,
}

/// The receiver, running until dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

/// What was wrong with a request, if anything, for a push service.
fn problem(req: &HttpRequest, body: &[u8]) -> Option<&'static str> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if !header("content-encoding").eq_ignore_ascii_case("aes128gcm") {
        Some("not Content-Encoding: aes128gcm")
    } else if body.len() < SHORTEST_BODY {
        Some("body shorter than aes128gcm's header and tag")
    } else if !header("authorization")
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("vapid "))
    {
        Some("no vapid Authorization")
    } else if header("topic").is_empty() {
        Some("no Topic")
    } else if header("ttl").is_empty() {
        Some("no TTL")
    } else {
        None
    }
}

async fn push(
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let at = Instant::now();
    let name = name.into_inner();
    if name == CEILING {
        shared.ceiling.fetch_add(1, Ordering::Relaxed);
        return HttpResponse::Created().finish();
    }
    let index = name
        .strip_prefix(shared.prefix.as_str())
        .and_then(|i| i.parse::<usize>().ok());
    let Some(subscription) = index else {
        shared.unknown.fetch_add(1, Ordering::Relaxed);
        return HttpResponse::Created().finish();
    };
    let topic = req
        .headers()
        .get("topic")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut log = shared.log.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(what) = problem(&req, &body) {
        *log.malformed.entry(what).or_default() += 1;
    }
    let new = match &topic {
        Some(t) => log.seen.insert((subscription, t.clone())),
        None => true,
    };
    log.arrivals.push(Arrival {
        subscription,
        at,
        topic,
    });
    drop(log);
    shared.total.fetch_add(1, Ordering::Relaxed);
    if new {
        shared.distinct.fetch_add(1, Ordering::Relaxed);
    }
    HttpResponse::Created().finish()
}

impl Receiver {
    /// Listens on 127.0.0.1 (a free port) for `POST /push/<prefix><index>`.
    pub fn start(prefix: &str) -> Result<Receiver, String> {
        let shared = Arc::new(Shared {
            prefix: prefix.to_string(),
            total: AtomicU64::new(0),
            distinct: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            ceiling: AtomicU64::new(0),
            log: Mutex::new(Log::default()),
        });
        let data = web::Data::from(shared.clone());
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let bound = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/push/{name}", web::post().to(push))
                })
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0));
                let server = match bound {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(format!("the push receiver cannot listen: {e}")));
                        return;
                    }
                };
                let addr = server.addrs()[0];
                let running = server.run();
                let _ = tx.send(Ok((addr, running.handle())));
                let _ = running.await;
            })
        });
        let (addr, handle) = rx
            .recv()
            .map_err(|_| "the push receiver's thread died".to_string())??;
        Ok(Receiver {
            base: format!("http://{addr}"),
            shared,
            handle,
            thread: Some(thread),
        })
    }

    /// Pushes to this run's subscriptions so far, repeats included.
    pub fn total(&self) -> u64 {
        self.shared.total.load(Ordering::Relaxed)
    }

    /// Pushes so far, a repeated (subscription, Topic) counted once.
    pub fn distinct(&self) -> u64 {
        self.shared.distinct.load(Ordering::Relaxed)
    }

    /// Requests to names that are no subscription of this run.
    pub fn unknown(&self) -> u64 {
        self.shared.unknown.load(Ordering::Relaxed)
    }

    /// Requests to [`CEILING`] so far.
    pub fn ceiling(&self) -> u64 {
        self.shared.ceiling.load(Ordering::Relaxed)
    }

    /// The arrivals and the malformed requests by kind, taken out of the log.
    pub fn take(&self) -> (Vec<Arrival>, BTreeMap<&'static str, u64>) {
        let mut log = self.shared.log.lock().unwrap_or_else(|e| e.into_inner());
        let log = std::mem::take(&mut *log);
        (log.arrivals, log.malformed)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        crate::api::block(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
