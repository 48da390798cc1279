//! What a background of periodic calls costs the send path (`typing`, `presence`): the `send`
//! clients as fast as they can, once alone and once beside actors that each make one call per
//! period, spread evenly over it. Reports both send rates, the background calls' own rate and
//! latency, and the ratio.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api;
use crate::send::{self, Load, Op};
use crate::server::Server;
use crate::stats::{us, Latency, Row};

/// One actor of the background: what its call is.
pub trait Actor: Clone + Send + 'static {
    /// One call to `base`; `Err` says what went wrong (a status, or `0` and the error).
    fn call(&self, c: &awc::Client, base: &str) -> impl Future<Output = Result<(), String>>;
}

/// The background: its actors, their period, and how the rows name them.
pub struct Background<A> {
    pub actors: Vec<A>,
    pub period: Duration,
    /// How long the background runs before the sends (and after them).
    pub lead: Duration,
    /// The actors, in the rows (`typers`).
    pub noun: &'static str,
    /// The background's row (`typing`).
    pub label: &'static str,
    /// What each actor does, for the row's note.
    pub note: String,
}

#[derive(Default)]
struct Outcome {
    latencies: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

async fn actor_loop<A: Actor>(
    c: awc::Client,
    base: String,
    actor: A,
    spread: f64,
    period: Duration,
    until: Instant,
) -> Outcome {
    let mut next = Instant::now() + period.mul_f64(spread);
    let mut out = Outcome::default();
    while next < until {
        actix_rt::time::sleep_until(next.into()).await;
        let t0 = next;
        next += period;
        match actor.call(&c, &base).await {
            Ok(()) => out.latencies.push(us(Instant::now() - t0)),
            Err(kind) => *out.errors.entry(kind).or_default() += 1,
        }
    }
    out
}

/// The actors for `duration`, on one thread of their own; a row of their calls.
fn background_for<A: Actor>(
    base: String,
    actors: Vec<A>,
    period: Duration,
    duration: Duration,
    label: &str,
    noun: &str,
    note: String,
) -> Row {
    let n = actors.len();
    let until = Instant::now() + duration;
    let started = Instant::now();
    let parts = api::on_threads(1, move |_| {
        let (base, actors) = (base.clone(), actors.clone());
        async move {
            // One client (one connector) shared by every actor.
            let c = api::client(None);
            let handles: Vec<_> = actors
                .into_iter()
                .enumerate()
                .map(|(i, actor)| {
                    // Spread over one period so that the total rate is even.
                    let spread = i as f64 / n.max(1) as f64;
                    actix_rt::spawn(actor_loop(
                        c.clone(),
                        base.clone(),
                        actor,
                        spread,
                        period,
                        until,
                    ))
                })
                .collect();
            let mut outs = Vec::new();
            for h in handles {
                outs.push(h.await.unwrap_or_default());
            }
            outs
        }
    });
    let elapsed = started.elapsed().as_secs_f64().max(1e-6);
    let (mut lat, mut errors) = (Vec::new(), BTreeMap::new());
    for o in parts.into_iter().flatten() {
        lat.extend(o.latencies);
        for (k, v) in o.errors {
            *errors.entry(k).or_insert(0u64) += v;
        }
    }
    let mut row = Row::new(format!("{label} ({n} {noun})"));
    row.rate = Some(lat.len() as f64 / elapsed);
    row.errors = errors.values().sum();
    row.note = note;
    if !errors.is_empty() {
        row.note += &format!(", errors {errors:?}");
    }
    row.extra = json!({ noun: n, "ok": lat.len(), "errors": errors });
    row.latency = Some(Latency::of(lat));
    row
}

/// Sends alone, then beside the background; the rows and the ratio line.
pub fn run<A: Actor>(
    server: &Server,
    op: &Op,
    background: &Background<A>,
    load: Load,
) -> (Vec<Row>, String) {
    let (alone, _) = send::run(server, "send max (alone)", op, load);
    let (n, noun, label) = (background.actors.len(), background.noun, background.label);
    let (base, actors) = (server.base.clone(), background.actors.clone());
    let (period, lead, note) = (background.period, background.lead, background.note.clone());
    // The background starts first and runs a little longer, so the sends meet it all the way.
    let beside = std::thread::spawn(move || {
        background_for(
            base,
            actors,
            period,
            lead + load.duration + lead,
            label,
            noun,
            note,
        )
    });
    std::thread::sleep(lead);
    let (with, _) = send::run(server, &format!("send max + {n} {noun}"), op, load);
    let calls = beside.join().unwrap_or_else(|_| {
        let mut row = Row::new(label);
        row.errors = 1;
        row.note = format!("the {noun}' thread panicked");
        row
    });
    let line = match (alone.rate, with.rate) {
        (Some(a), Some(w)) if a > 0.0 => format!(
            "send rate beside {n} {noun} / alone = {:.1} % ({w:.0} / {a:.0} per s)",
            w / a * 100.0
        ),
        _ => format!("send rate beside {noun}: not measured"),
    };
    (vec![alone, with, calls], line)
}
