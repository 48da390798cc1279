//! `send` and `ceiling`: N concurrent clients in a loop (as fast as they can, or at a fixed
//! total rate) posting to one room, or calling `GET /healthz` (the do-nothing endpoint).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::{self, Bot, Sent};
use crate::server::Server;
use crate::stats::{us, Latency, Row};

/// What each loop iteration does.
#[derive(Clone)]
pub enum Op {
    /// Post a message to `room` as one of the bots (with a fresh `Idempotency-Key` if
    /// `keyed`, as a careful client sends).
    Send {
        room: String,
        bots: Arc<Vec<Bot>>,
        keyed: bool,
    },
    /// `GET /healthz`.
    Healthz,
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

/// The room and the sending bots (one per client).
pub fn setup(base: &str, prefix: &str, clients: usize, keyed: bool) -> Result<Op, String> {
    api::block(async {
        let bots = api::bots(base, &format!("{prefix}s"), clients, 32).await?;
        let ids: Vec<String> = bots[1..].iter().map(|b| b.id.clone()).collect();
        let room = api::create_room(base, &bots[0], "send bench", &ids).await?;
        Ok(Op::Send {
            room,
            bots: Arc::new(bots),
            keyed,
        })
    })
}

#[derive(Default)]
struct Outcome {
    latencies: Vec<u64>,
    errors: BTreeMap<String, u64>,
    last: Option<Instant>,
    max_event: i64,
}

async fn client_loop(base: String, op: Op, idx: usize, load: Load, start: Instant) -> Outcome {
    let c = api::client(None);
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
            Op::Send { room, bots, keyed } => {
                let bot = &bots[idx % bots.len()];
                let key = keyed.then(|| uuid::Uuid::new_v4().to_string());
                let body = format!("bench {idx}-{n}");
                match api::send_keyed(&c, &base, &bot.token, room, &body, key.as_deref()).await {
                    Sent::Acked { event_id, .. } => {
                        out.max_event = out.max_event.max(event_id);
                        None
                    }
                    Sent::Failed(status, why) => Some(format!("{status} {why}")),
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
            None => out.latencies.push(us(end - t0)),
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
    let start = Instant::now() + Duration::from_millis(200);
    let base = server.base.clone();
    let op2 = op.clone();
    let parts = api::on_threads(threads, move |t| {
        let (base, op) = (base.clone(), op2.clone());
        async move {
            let mut set = Vec::new();
            for idx in (t..load.clients).step_by(threads) {
                set.push(actix_rt::spawn(client_loop(
                    base.clone(),
                    op.clone(),
                    idx,
                    load,
                    start,
                )));
            }
            let mut outs = Vec::new();
            for h in set {
                outs.push(h.await.unwrap_or_default());
            }
            outs
        }
    });
    let (mut lat, mut errors, mut last, mut max_event) = (Vec::new(), BTreeMap::new(), start, 0);
    for o in parts.into_iter().flatten() {
        lat.extend(o.latencies);
        for (k, v) in o.errors {
            *errors.entry(k).or_insert(0u64) += v;
        }
        last = last.max(o.last.unwrap_or(start));
        max_event = max_event.max(o.max_event);
    }
    let elapsed = (last - start).as_secs_f64().max(1e-6);
    let cpu = match (cpu0, server.cpu_seconds()) {
        (Some(a), Some(b)) => Some((b - a) / elapsed * 100.0),
        _ => None,
    };
    let ok = lat.len();
    let mut row = Row::new(name);
    row.rate = Some(ok as f64 / elapsed);
    row.latency = Some(Latency::of(lat));
    row.errors = errors.values().sum();
    let mut note = format!("{} clients, {:.1} s", load.clients, elapsed);
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
        "server_cpu_percent": cpu, "errors": errors,
    });
    (row, max_event)
}
