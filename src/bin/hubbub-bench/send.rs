//! `send` and `ceiling`: N concurrent clients in a loop (as fast as they can, or at a fixed
//! total rate) posting as distinct users (half signed in with a session cookie, half bots with a
//! bearer token) to their rooms, with a fresh `Idempotency-Key` each unless told not to, as the
//! web client and the bot guide send; or calling `GET /healthz` (the do-nothing endpoint). The
//! first seconds are reported apart from the rest: a fresh database is where plans go wrong.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::api::{self, Auth, Sender, Sent};
use crate::server::Server;
use crate::stats::{us, Latency, Row};

/// What each loop iteration does.
#[derive(Clone)]
pub enum Op {
    /// Post a message as one of the senders to their room (with a fresh `Idempotency-Key` if
    /// `keyed`, as a careful client sends). Client `i` is sender `i % senders.len()`.
    Send {
        senders: Arc<Vec<(Sender, String)>>,
        keyed: bool,
    },
    /// `GET /healthz`.
    Healthz,
    /// Post `m.room.message` to a Matrix homeserver at `url` with a fresh transaction id, as
    /// one of the (access token, room) pairs (`matrix.rs`).
    Matrix {
        url: String,
        senders: Arc<Vec<(String, String)>>,
    },
}

/// How hard to push.
#[derive(Clone, Copy)]
pub struct Load {
    pub clients: usize,
    pub duration: Duration,
    /// Fixed total rate (per second) instead of as-fast-as-possible.
    pub rate: Option<f64>,
    pub threads: usize,
}

/// Who sends where.
#[derive(Debug, Clone, Copy)]
pub struct Senders {
    /// Distinct users: bots with bearer tokens, half of them instead signed in with a session
    /// cookie if `sessions`.
    pub users: usize,
    pub sessions: bool,
    /// Rooms they are spread over (user `i` sends to room `i % rooms`, whose members are its
    /// senders).
    pub rooms: usize,
    /// A fresh `Idempotency-Key` on every send.
    pub keyed: bool,
}

/// `clients` bots in one room (the scenarios that measure beside sends: `typing`, `hostile`).
pub fn setup(base: &str, prefix: &str, clients: usize, keyed: bool) -> Result<Op, String> {
    setup_senders(
        base,
        prefix,
        Senders {
            users: clients,
            sessions: false,
            rooms: 1,
            keyed,
        },
    )
}

/// The users and their rooms. Each room is made by a bot (a bot of the same owner may add any
/// user), with the room's senders as members.
pub fn setup_senders(base: &str, prefix: &str, plan: Senders) -> Result<Op, String> {
    let users = plan.users.max(1);
    let rooms = plan.rooms.clamp(1, users);
    api::block(async move {
        let c = api::client(None);
        let cookies = if plan.sessions { users / 2 } else { 0 };
        let bots = api::bots(base, &format!("{prefix}s"), users - cookies + rooms, 32).await?;
        let mut senders: Vec<Sender> = bots[rooms..].iter().map(Sender::from).collect();
        let registered: Vec<Result<Sender, String>> = futures_util::stream::iter(0..cookies)
            .map(|i| {
                let c = c.clone();
                async move {
                    let cookie = api::register(&c, base, &format!("{prefix}u{i}")).await?;
                    let id = api::me(&c, base, &cookie).await?;
                    Ok(Sender {
                        id,
                        auth: Auth::Cookie(cookie),
                    })
                }
            })
            .buffered(16)
            .collect()
            .await;
        for sender in registered {
            senders.push(sender?);
        }
        let mut placed = Vec::with_capacity(senders.len());
        for (r, maker) in bots[..rooms].iter().enumerate() {
            let members: Vec<&Sender> = senders.iter().skip(r).step_by(rooms).collect();
            let ids: Vec<String> = members.iter().map(|s| s.id.clone()).collect();
            let room = api::create_room(base, maker, &format!("send bench {r}"), &ids).await?;
            placed.extend(members.into_iter().map(|s| (s.clone(), room.clone())));
        }
        Ok(Op::Send {
            senders: Arc::new(placed),
            keyed: plan.keyed,
        })
    })
}

/// The seconds at the start that are reported apart (`first`).
pub const FIRST: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Outcome {
    latencies: Vec<u64>,
    /// Successes within [`FIRST`] of the start.
    early: u64,
    errors: BTreeMap<String, u64>,
    last: Option<Instant>,
    max_event: i64,
}

/// The clients' common start: set by the last client to connect, 100 ms ahead.
#[derive(Default)]
struct StartLine {
    connected: AtomicUsize,
    at: OnceLock<Instant>,
}

impl StartLine {
    /// Counts this client in and waits for the others; returns the start.
    async fn ready(&self, clients: usize) -> Instant {
        if self.connected.fetch_add(1, Ordering::SeqCst) + 1 == clients {
            let _ = self.at.set(Instant::now() + Duration::from_millis(100));
        }
        loop {
            if let Some(&at) = self.at.get() {
                actix_rt::time::sleep_until(at.into()).await;
                return at;
            }
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn client_loop(
    base: String,
    op: Op,
    idx: usize,
    load: Load,
    line: Arc<StartLine>,
) -> Outcome {
    let c = api::client(None);
    // A connection made before the clock starts, as a client that has been up a while has one:
    // 64 clients connecting at once stall for seconds (some connects wait for a SYN to be sent
    // again; some met the server's 5 s request timeout, 408), which is the client's start-up,
    // not the server's, and would spoil the first seconds (reported apart).
    let warm = match &op {
        Op::Matrix { url, .. } => format!("{url}/_matrix/client/versions"),
        _ => format!("{base}/healthz"),
    };
    if let Ok(mut r) = c.get(warm).send().await {
        let _ = r.body().await;
    }
    let start = line.ready(load.clients).await;
    let deadline = start + load.duration;
    let interval = load
        .rate
        .map(|r| Duration::from_secs_f64(load.clients as f64 / r.max(0.001)));
    // Stagger the fixed-rate clients over one interval so the total rate is even.
    let mut next =
        start + interval.map_or(Duration::ZERO, |i| i * idx as u32 / load.clients as u32);
    let mut out = Outcome::default();
    let mut n = 0u64;
    loop {
        let t0 = match interval {
            Some(step) => {
                if next >= deadline {
                    break;
                }
                actix_rt::time::sleep_until(next.into()).await;
                let intended = next;
                next += step;
                // Latency from the intended start: a late request counts its wait.
                intended
            }
            None => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                now
            }
        };
        n += 1;
        let failure = match &op {
            Op::Send { senders, keyed } => {
                let (sender, room) = &senders[idx % senders.len()];
                let key = keyed.then(|| uuid::Uuid::new_v4().to_string());
                let body = format!("bench {idx}-{n}");
                match api::send_as(&c, &base, &sender.auth, room, &body, key.as_deref()).await {
                    Sent::Acked { event_id, .. } => {
                        out.max_event = out.max_event.max(event_id);
                        None
                    }
                    Sent::Failed(status, why) => Some(format!("{status} {why}")),
                }
            }
            Op::Matrix { url, senders } => {
                let (token, room) = &senders[idx % senders.len()];
                let txn = uuid::Uuid::new_v4().simple().to_string();
                let path =
                    format!("{url}/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");
                let body = json!({"msgtype": "m.text", "body": format!("bench {idx}-{n}")});
                match c.put(path).bearer_auth(token).send_json(&body).await {
                    Ok(mut r) if r.status().as_u16() == 200 => {
                        r.body().await.err().map(|e| e.to_string())
                    }
                    Ok(r) => Some(r.status().as_u16().to_string()),
                    Err(e) => Some(format!("0 {e}")),
                }
            }
            Op::Healthz => match c.get(format!("{base}/healthz")).send().await {
                Ok(mut r) if r.status().as_u16() == 200 => {
                    r.body().await.err().map(|e| e.to_string())
                }
                Ok(r) => Some(r.status().as_u16().to_string()),
                Err(e) => Some(format!("0 {e}")),
            },
        };
        let end = Instant::now();
        match failure {
            None => {
                out.latencies.push(us(end - t0));
                out.early += u64::from(end < start + FIRST);
            }
            Some(kind) => *out.errors.entry(kind).or_default() += 1,
        }
        out.last = Some(end);
    }
    out
}

/// Runs the loop and summarises it as one row; also returns the highest event id acked.
pub fn run(server: &Server, name: &str, op: &Op, load: Load) -> (Row, i64) {
    let threads = load.threads.clamp(1, load.clients.max(1));
    let cpu0 = server.cpu_seconds();
    // Time for every client to connect first (`client_loop`).
    let line = Arc::new(StartLine::default());
    let base = server.base.clone();
    let op2 = op.clone();
    let line2 = line.clone();
    let parts = api::on_threads(threads, move |t| {
        let (base, op, line) = (base.clone(), op2.clone(), line2.clone());
        async move {
            let mut set = Vec::new();
            for idx in (t..load.clients).step_by(threads) {
                set.push(actix_rt::spawn(client_loop(
                    base.clone(),
                    op.clone(),
                    idx,
                    load,
                    line.clone(),
                )));
            }
            let mut outs = Vec::new();
            for h in set {
                outs.push(h.await.unwrap_or_default());
            }
            outs
        }
    });
    let start = line.at.get().copied().unwrap_or_else(Instant::now);
    let (mut lat, mut errors, mut last, mut max_event) = (Vec::new(), BTreeMap::new(), start, 0);
    let mut early = 0;
    for o in parts.into_iter().flatten() {
        lat.extend(o.latencies);
        early += o.early;
        for (k, v) in o.errors {
            *errors.entry(k).or_insert(0u64) += v;
        }
        last = last.max(o.last.unwrap_or(start));
        max_event = max_event.max(o.max_event);
    }
    let elapsed = (last - start).as_secs_f64().max(1e-6);
    let cpu = match (cpu0, server.cpu_seconds(), op) {
        // hubbub's CPU says nothing of another server's run.
        (_, _, Op::Matrix { .. }) => None,
        (Some(a), Some(b), _) => Some((b - a) / elapsed * 100.0),
        _ => None,
    };
    let ok = lat.len();
    let mut row = Row::new(name);
    row.rate = Some(ok as f64 / elapsed);
    row.latency = Some(Latency::of(lat));
    row.errors = errors.values().sum();
    let mut note = format!("{} clients, {:.1} s", load.clients, elapsed);
    // The first seconds apart from the rest, when the run is long enough to have both.
    let first = FIRST.as_secs_f64();
    let (first_rate, later_rate) = if elapsed > 2.0 * first {
        let later = (ok as u64 - early) as f64 / (elapsed - first);
        (Some(early as f64 / first), Some(later))
    } else {
        (None, None)
    };
    if let (Some(a), Some(b)) = (first_rate, later_rate) {
        note += &format!(", first {first:.0} s {a:.0}/s then {b:.0}/s");
    }
    if let Op::Send { senders, keyed } = op {
        let rooms = senders
            .iter()
            .map(|(_, r)| r)
            .collect::<std::collections::BTreeSet<_>>();
        note += &format!(
            ", {} users in {} rooms, {}",
            senders.len(),
            rooms.len(),
            if *keyed { "keyed" } else { "no keys" }
        );
    }
    if let Some(r) = load.rate {
        note += &format!(", target {r:.0}/s");
    }
    if let Some(c) = cpu {
        note += &format!(", server cpu {c:.0}%");
    }
    if !errors.is_empty() {
        note += &format!(", errors {errors:?}");
    }
    row.note = note;
    row.extra = json!({
        "clients": load.clients, "seconds": elapsed, "ok": ok, "target_rate": load.rate,
        "first_seconds_rate": first_rate, "after_first_seconds_rate": later_rate,
        "server_cpu_percent": cpu, "errors": errors,
    });
    (row, max_event)
}
