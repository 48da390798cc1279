//! `push`: how fast the push worker turns events into Web Push requests. `users` bots in one
//! room, each with one Web Push subscription whose endpoint is this process's own receiver on
//! loopback ([`receiver`]); `senders` of them post `events` messages as fast as they can, and
//! each message should reach the other `users − 1` members as a push. Nobody marks the room
//! read (a member who read it isn't pushed).
//!
//! The figures run from the first send to the arrival of the last expected push (or to a
//! timeout): events/s and pushes/s, send→push latency (from the send's 201 to the push's
//! arrival, matched by the push's `Topic`, the event id), the worker's lag behind the log
//! (`hubbub_push_lag_events`, sampled every 200 ms) and `hubbub_push_sent_total` over the run.
//! A same-run ceiling row: one thread with as many requests in flight as the worker's
//! `HUBBUB_PUSH_CONCURRENCY` posting push-sized requests to the same receiver.
//!
//! A server without the subscription API (404) gives a skipped row, not a failure.

mod receiver;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::StreamExt;
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::nid::Nid;
use serde_json::json;

use crate::api::{self, Bot, Sent};
use crate::server::{self, Server};
use crate::stats::{us, Latency, Row};
use receiver::{Arrival, Receiver};

/// The scale and the waits.
#[derive(Clone, Copy)]
pub struct Plan {
    /// Members of the room, each with one subscription.
    pub users: usize,
    /// How many of them send (each as fast as the server answers).
    pub senders: usize,
    /// Messages in all.
    pub events: usize,
    /// Their total rate, per second; `None`: as fast as the server answers.
    pub rate: Option<f64>,
    pub threads: usize,
    /// The worker's deliveries in flight (`HUBBUB_PUSH_CONCURRENCY`): the ceiling's too.
    pub concurrency: usize,
    /// How long the ceiling row runs.
    pub ceiling: Duration,
    /// The longest wait for the pushes after the last send.
    pub timeout: Duration,
    /// Give up sooner if no push arrives for this long.
    pub stall: Duration,
}

/// A subscription's keys, as a browser makes them: `p256dh` the uncompressed P-256 public key
/// (65 bytes), `auth` 16 random bytes, both base64url without padding. The private key is
/// dropped: the receiver doesn't decrypt.
fn keys() -> Result<(String, String), String> {
    let made = || -> Result<_, openssl::error::ErrorStack> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = EcKey::generate(&group)?;
        let mut ctx = BigNumContext::new()?;
        let public =
            key.public_key()
                .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)?;
        let mut auth = [0u8; 16];
        openssl::rand::rand_bytes(&mut auth)?;
        Ok((URL_SAFE_NO_PAD.encode(public), URL_SAFE_NO_PAD.encode(auth)))
    };
    made().map_err(|e| format!("making a P-256 key: {e}"))
}

/// The value of one `/metrics` line (0 if absent).
fn metric(m: &[(String, f64)], name: &str) -> f64 {
    m.iter().find(|(n, _)| n == name).map_or(0.0, |v| v.1)
}

/// `hubbub_push_sent_total{kind="webpush",outcome=…}` by outcome.
fn sent_by_outcome(m: &[(String, f64)]) -> BTreeMap<String, f64> {
    m.iter()
        .filter(|(n, _)| n.starts_with("hubbub_push_sent_total{") && n.contains("\"webpush\""))
        .filter_map(|(n, v)| {
            let outcome = n.split("outcome=\"").nth(1)?.split('"').next()?;
            Some((outcome.to_string(), *v))
        })
        .collect()
}

/// The worker's gauges, sampled every 200 ms on a thread of their own until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, u64)>,
}

impl Sampler {
    fn start(base: String) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            api::block(async move {
                let (mut lag, mut queue) = (0u64, 0u64);
                while !flag.load(Ordering::Relaxed) {
                    let m = server::metrics(&base, "hubbub_push_").await;
                    lag = lag.max(metric(&m, "hubbub_push_lag_events") as u64);
                    queue = queue.max(metric(&m, "hubbub_push_queue") as u64);
                    actix_rt::time::sleep(Duration::from_millis(200)).await;
                }
                (lag, queue)
            })
        });
        Sampler { stop, thread }
    }

    /// The highest lag and queue seen.
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or((0, 0))
    }
}

/// The receiver's ceiling: one thread, `concurrency` requests in flight, each the size of a
/// push (a VAPID header, a 300-byte body), for `secs`.
fn ceiling(receiver: &Receiver, concurrency: usize, secs: Duration) -> Row {
    let url = format!("{}/push/{}", receiver.base, receiver::CEILING);
    let before = receiver.ceiling();
    let auth = format!("vapid t={}, k={}", "t".repeat(250), "k".repeat(87));
    let (lat, errors, elapsed) = api::block(async move {
        let c = api::client(None);
        let start = Instant::now();
        let deadline = start + secs;
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (c, url, auth) = (c.clone(), url.clone(), auth.clone());
                actix_rt::spawn(async move {
                    let (mut lat, mut errors) = (Vec::new(), 0u64);
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        let resp = c
                            .post(&url)
                            .insert_header(("Content-Encoding", "aes128gcm"))
                            .insert_header(("TTL", "86400"))
                            .insert_header(("Topic", "123456"))
                            .insert_header(("Authorization", auth.as_str()))
                            .send_body(vec![0u8; 300])
                            .await;
                        match resp {
                            Ok(r) if r.status().as_u16() == 201 => lat.push(us(t0.elapsed())),
                            _ => errors += 1,
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        let (mut lat, mut errors) = (Vec::new(), 0u64);
        for t in tasks {
            let (l, e) = t.await.unwrap_or_default();
            lat.extend(l);
            errors += e;
        }
        (lat, errors, start.elapsed().as_secs_f64())
    });
    let mut row = Row::new("push ceiling");
    row.rate = Some(lat.len() as f64 / elapsed);
    row.errors = errors;
    row.note = format!(
        "the receiver: 1 thread, {concurrency} push-sized POSTs in flight, {elapsed:.1} s \
         ({} counted by the receiver)",
        receiver.ceiling() - before
    );
    row.latency = Some(Latency::of(lat));
    row.extra = json!({ "concurrency": concurrency, "seconds": elapsed });
    row
}

/// A row saying why the scenario didn't run.
fn skipped(why: String) -> Row {
    let mut row = Row::new("push");
    row.note = format!("skipped: {why}");
    row.extra = json!({ "skipped": why });
    row
}

/// The event id a `Topic` carries: its trailing digits.
fn event_of(topic: &str) -> Option<i64> {
    let digits = topic.len() - topic.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    topic[topic.len() - digits..].parse().ok()
}

/// One acknowledged send: its event, its author (a member's index) and when its 201 came.
#[derive(Clone, Copy)]
struct Acked {
    event: i64,
    author: usize,
    at: Instant,
}

/// Failed sends by status and error code.
type Failures = BTreeMap<String, u64>;

/// Adds `part`'s sends and failures to `out`.
fn merge(out: &mut (Vec<Acked>, Failures), part: (Vec<Acked>, Failures)) {
    out.0.extend(part.0);
    for (k, v) in part.1 {
        *out.1.entry(k).or_default() += v;
    }
}

/// Posts `events` messages from the first `senders` bots, as fast as the server answers or at
/// `plan.rate` from `start`: sender `s` posts messages `j ≡ s (mod senders)`. The sends and the
/// failures.
fn send_all(
    base: &str,
    bots: &Arc<Vec<Bot>>,
    room: &str,
    plan: Plan,
    start: Instant,
) -> (Vec<Acked>, Failures) {
    let threads = plan.threads.clamp(1, plan.senders);
    let (bots, room, base) = (bots.clone(), room.to_string(), base.to_string());
    let (events, senders, rate) = (plan.events, plan.senders, plan.rate);
    let parts = api::on_threads(threads, move |t| {
        let (bots, room, base) = (bots.clone(), room.clone(), base.clone());
        async move {
            let mut tasks = Vec::new();
            for s in (t..senders).step_by(threads) {
                let (bots, room, base) = (bots.clone(), room.clone(), base.clone());
                let count = (events + senders - 1 - s) / senders;
                tasks.push(actix_rt::spawn(async move {
                    let c = api::client(None);
                    let (mut acked, mut failed) = (Vec::new(), Failures::new());
                    for k in 0..count {
                        if let Some(rate) = rate {
                            let j = (k * senders + s) as f64;
                            let at = start + Duration::from_secs_f64(j / rate);
                            actix_rt::time::sleep_until(at.into()).await;
                        }
                        let body = format!("push bench {s}-{k}");
                        match api::send(&c, &base, &bots[s].token, &room, &body).await {
                            Sent::Acked { event_id, .. } => acked.push(Acked {
                                event: event_id,
                                author: s,
                                at: Instant::now(),
                            }),
                            Sent::Failed(status, why) => {
                                *failed.entry(format!("{status} {why}")).or_default() += 1
                            }
                        }
                    }
                    (acked, failed)
                }));
            }
            let mut out = (Vec::new(), Failures::new());
            for t in tasks {
                merge(&mut out, t.await.unwrap_or_default());
            }
            out
        }
    });
    let mut out = (Vec::new(), Failures::new());
    for part in parts {
        merge(&mut out, part);
    }
    out
}

/// What the arrivals say against the sends.
#[derive(Default)]
struct Matched {
    /// Send→push latencies, microseconds.
    latencies: Vec<u64>,
    /// Distinct (subscription, event) pairs that were expected.
    delivered: usize,
    /// A (subscription, event) pair that came again.
    repeats: usize,
    /// Pushes to the message's own author, or for an event this run didn't send.
    unexpected: usize,
    /// Pushes that arrived before their send's 201.
    early: usize,
    /// Whether the pairs came from `Topic` (else by arrival order per subscription).
    by_topic: bool,
}

/// Matches each push to its send by the event id in its `Topic`; if no `Topic` names a sent
/// event, pairs each subscription's arrivals with the messages it should get, in order.
fn match_up(arrivals: &[Arrival], acked: &[Acked], users: usize) -> Matched {
    let sends: HashMap<i64, Acked> = acked.iter().map(|a| (a.event, *a)).collect();
    let mut m = Matched::default();
    let mut seen = HashSet::new();
    for a in arrivals {
        let send = a
            .topic
            .as_deref()
            .and_then(event_of)
            .and_then(|e| sends.get(&e));
        match send {
            Some(send) if send.author == a.subscription => m.unexpected += 1,
            Some(send) => {
                if !seen.insert((a.subscription, send.event)) {
                    m.repeats += 1;
                    continue;
                }
                m.delivered += 1;
                m.early += usize::from(a.at < send.at);
                m.latencies
                    .push(us(a.at.saturating_duration_since(send.at)));
            }
            None => m.unexpected += 1,
        }
    }
    if m.delivered > 0 || arrivals.is_empty() {
        m.by_topic = true;
        return m;
    }
    // No Topic names an event: pair by order.
    let mut m = Matched::default();
    let mut by_time: Vec<Acked> = acked.to_vec();
    by_time.sort_by_key(|a| a.at);
    let mut mine: Vec<Vec<Instant>> = vec![Vec::new(); users];
    for a in arrivals {
        if let Some(v) = mine.get_mut(a.subscription) {
            v.push(a.at);
        }
    }
    for (sub, mut times) in mine.into_iter().enumerate() {
        times.sort();
        let due = by_time.iter().filter(|s| s.author != sub);
        let mut paired = 0;
        for (at, send) in times.iter().zip(due) {
            paired += 1;
            m.early += usize::from(*at < send.at);
            m.latencies.push(us(at.saturating_duration_since(send.at)));
        }
        m.delivered += paired;
        m.unexpected += times.len() - paired;
    }
    m
}

/// Runs the scenario: the ceiling row and the push row, and the line saying what was measured
/// (or one skipped row and no line).
pub fn run(
    server: &Server,
    prefix: &str,
    plan: Plan,
) -> Result<(Vec<Row>, Option<String>), String> {
    let base = server.base.clone();
    let users = plan.users.max(2);
    let senders = plan.senders.clamp(1, users);
    let plan = Plan {
        users,
        senders,
        ..plan
    };
    let bots = api::block(api::bots(&base, &format!("{prefix}p"), users, 32))?;
    let name = |i: usize| format!("{prefix}-{i}");
    let receiver = Receiver::start(&format!("{prefix}-"))?;
    let endpoint = |i: usize| format!("{}/push/{}", receiver.base, name(i));
    let keys: Vec<(String, String)> = (0..users).map(|_| keys()).collect::<Result<_, _>>()?;

    // The first subscription tells whether the server has the API at all.
    let c = api::client(None);
    let probe = api::block(api::subscribe_webpush(
        &c,
        &base,
        &bots[0].token,
        &endpoint(0),
        &keys[0],
    ));
    match probe {
        (200 | 201, _) => {}
        (404, code) => {
            let why = format!(
                "POST /api/v1/push/subscriptions answered 404{} (this server has no \
                 subscription API)",
                if code.is_empty() {
                    String::new()
                } else {
                    format!(" {code}")
                }
            );
            return Ok((vec![skipped(why)], None));
        }
        (status, code) => {
            return Err(format!(
                "POST /api/v1/push/subscriptions: {status} {code} (a server started elsewhere \
                 needs HUBBUB_PUSH_ALLOW_INSECURE=true for the loopback receiver)"
            ))
        }
    }
    let refused: Vec<String> = api::block(
        futures_util::stream::iter(1..users)
            .map(|i| {
                let (c, base, token, url, key) = (
                    c.clone(),
                    base.clone(),
                    bots[i].token.clone(),
                    endpoint(i),
                    keys[i].clone(),
                );
                async move {
                    match api::subscribe_webpush(&c, &base, &token, &url, &key).await {
                        (200 | 201, _) => None,
                        (status, code) => Some(format!("{status} {code}")),
                    }
                }
            })
            .buffer_unordered(32)
            .filter_map(|r| async move { r })
            .collect(),
    );
    if let Some(first) = refused.first() {
        return Err(format!(
            "{} of {users} subscriptions refused: POST /api/v1/push/subscriptions {first}",
            refused.len()
        ));
    }
    let ids: Vec<String> = bots[1..].iter().map(|b| b.id.clone()).collect();
    let room = api::block(api::create_room(&base, &bots[0], "push bench", &ids))?;

    // The worker sets its cursor to the log's head when it starts: wait for it to run, so that
    // it doesn't start after the first sends and skip them.
    let t_leader = Instant::now();
    let before = loop {
        let m = api::block(server::metrics(&base, "hubbub_push_"));
        if metric(&m, "hubbub_push_leader") >= 1.0 || t_leader.elapsed() > Duration::from_secs(5) {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let leader = metric(&before, "hubbub_push_leader") >= 1.0;

    let ceiling_row = ceiling(&receiver, plan.concurrency, plan.ceiling);

    let sampler = Sampler::start(base.clone());
    let bots = Arc::new(bots);
    let cpu0 = server.cpu_seconds();
    let t0 = Instant::now();
    let (acked, send_errors) = send_all(&base, &bots, &room, plan, t0);
    let sent_s = t0.elapsed().as_secs_f64();
    let expected = (acked.len() * (users - 1)) as u64;

    // Wait for every expected push, a stall, or the timeout.
    let t_sent = Instant::now();
    let (mut last_count, mut last_change) = (receiver.total(), Instant::now());
    let ended = loop {
        if receiver.distinct() >= expected {
            break None;
        }
        let now = Instant::now();
        if receiver.total() != last_count {
            (last_count, last_change) = (receiver.total(), now);
        }
        if now - last_change >= plan.stall {
            break Some(format!("no push for {:.0} s", plan.stall.as_secs_f64()));
        }
        if now - t_sent >= plan.timeout {
            break Some(format!(
                "timed out {:.0} s after the last send",
                plan.timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let cpu = match (cpu0, server.cpu_seconds()) {
        (Some(a), Some(b)) => Some((b - a, t0.elapsed().as_secs_f64())),
        _ => None,
    };
    let (lag_max, queue_max) = sampler.stop();
    let after = api::block(server::metrics(&base, "hubbub_push_"));
    let (arrivals, malformed) = receiver.take();
    let unknown = receiver.unknown();
    drop(receiver);

    let last = arrivals.iter().map(|a| a.at).max().unwrap_or(t0);
    let seconds = (last - t0).as_secs_f64().max(1e-6);
    let m = match_up(&arrivals, &acked, users);
    let missing = (expected as usize).saturating_sub(m.delivered);
    // Events turned into all their pushes, per second: when every push arrived, the events over
    // the time; before that, the pushes' worth in events.
    let events_per_s = m.delivered as f64 / (users - 1) as f64 / seconds;
    let (before_sent, after_sent) = (sent_by_outcome(&before), sent_by_outcome(&after));
    let outcomes: BTreeMap<String, f64> = after_sent
        .iter()
        .map(|(k, v)| (k.clone(), v - before_sent.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect();
    let lag_end = metric(&after, "hubbub_push_lag_events") as u64;
    let mut per_sub = vec![0usize; users];
    for a in &arrivals {
        if let Some(n) = per_sub.get_mut(a.subscription) {
            *n += 1;
        }
    }
    let (fewest, most) = (
        per_sub.iter().min().copied().unwrap_or(0),
        per_sub.iter().max().copied().unwrap_or(0),
    );

    let pace = plan
        .rate
        .map_or("as fast as the server answered".into(), |r| {
            format!("at {r}/s")
        });
    let mut row = Row::new(match plan.rate {
        Some(r) => format!("push {users} users @{r}/s"),
        None => format!("push {users} users"),
    });
    row.rate = Some(m.delivered as f64 / seconds);
    row.latency = Some(Latency::of(m.latencies));
    let send_failures: u64 = send_errors.values().sum();
    row.errors = missing as u64 + send_failures;
    let outcome_text: Vec<String> = outcomes
        .iter()
        .map(|(k, v)| format!("{k} {v:.0}"))
        .collect();
    row.note = format!(
        "{events_per_s:.1} events/s over {seconds:.1} s; pushes {}/{expected} (per member \
         {fewest}–{most}); {} events sent by {senders} senders in {sent_s:.1} s ({:.0}/s); worker \
         lag max {lag_max} events, {lag_end} at the end, queue max {queue_max}; sent_total {}",
        m.delivered,
        acked.len(),
        acked.len() as f64 / sent_s.max(1e-6),
        if outcome_text.is_empty() {
            "none".to_string()
        } else {
            outcome_text.join(", ")
        },
    );
    if let Some((busy, wall)) = cpu {
        row.note += &format!(
            "; server cpu {:.0}%, {:.0} µs per push",
            busy / wall.max(1e-6) * 100.0,
            busy * 1e6 / (m.delivered.max(1) as f64)
        );
    }
    if let Some(why) = &ended {
        row.note += &format!(", stopped: {why}");
    }
    if !leader {
        row.note += ", this node is not the push leader";
    }
    if !m.by_topic {
        row.note += ", latency paired by arrival order (no Topic names an event)";
    }
    if m.early > 0 {
        row.note += &format!(", push before the send's 201 {}", m.early);
    }
    if m.repeats + m.unexpected > 0 || unknown > 0 {
        row.note += &format!(
            ", repeated {}, unexpected {}, to unknown names {unknown}",
            m.repeats, m.unexpected
        );
    }
    if !malformed.is_empty() {
        row.note += &format!(", not Web Push-shaped {malformed:?}");
    }
    if !send_errors.is_empty() {
        row.note += &format!(", send errors {send_errors:?}");
    }
    row.extra = json!({
        "users": users, "senders": senders, "events": acked.len(), "expected": expected,
        "rate": plan.rate,
        "delivered": m.delivered, "missing": missing, "repeats": m.repeats,
        "unexpected": m.unexpected, "unknown": unknown, "seconds": seconds,
        "send_seconds": sent_s, "events_per_s": events_per_s,
        "server_cpu_seconds": cpu.map(|c| c.0), "wall_seconds": cpu.map(|c| c.1),
        "lag_max": lag_max, "lag_end": lag_end, "queue_max": queue_max,
        "sent_total": outcomes, "leader": leader, "by_topic": m.by_topic,
        "per_member_min": fewest, "per_member_max": most, "send_errors": send_errors,
        "malformed": malformed, "ended": ended,
    });
    // At a fixed rate the pushes/s is the rate asked for, not what the worker can do.
    let ratio = (ceiling_row.rate)
        .filter(|r| *r > 0.0 && plan.rate.is_none())
        .map_or(String::new(), |c| {
            format!(
                "; pushes / receiver ceiling = {:.1} %",
                m.delivered as f64 / seconds / c * 100.0
            )
        });
    let line = format!(
        "push: one room of {users} members with a Web Push subscription each; {senders} of them \
         sent {} messages {pace}; from the first send to the last of the \
         {expected} expected pushes ({}), pushes/s in the rate column, latency from each send's \
         201 to its push at the in-process receiver{ratio}",
        acked.len(),
        ended.as_deref().unwrap_or("all arrived"),
    );
    Ok((vec![ceiling_row, row], Some(line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_answers_201_and_counts_each_subscriptions_pushes() {
        let r = Receiver::start("t-").unwrap();
        let base = r.base.clone();
        let statuses = api::block(async move {
            let c = api::client(None);
            let mut statuses = Vec::new();
            for (name, topic) in [
                ("t-0", "5"),
                ("t-1", "5"),
                ("t-1", "5"),
                ("t-1", "6"),
                ("x", "1"),
            ] {
                let resp = c
                    .post(format!("{base}/push/{name}"))
                    .insert_header(("Content-Encoding", "aes128gcm"))
                    .insert_header(("Authorization", "vapid t=a, k=b"))
                    .insert_header(("Topic", topic))
                    .insert_header(("TTL", "60"))
                    .send_body(vec![0u8; 120])
                    .await;
                statuses.push(resp.map_or(0, |r| r.status().as_u16()));
            }
            let plain = c.post(format!("{base}/push/t-2")).send_body("hi").await;
            statuses.push(plain.map_or(0, |r| r.status().as_u16()));
            statuses
        });
        assert_eq!(statuses, [201; 6]);
        assert_eq!((r.total(), r.distinct(), r.unknown()), (5, 4, 1));
        let (arrivals, malformed) = r.take();
        let to = |i| arrivals.iter().filter(|a| a.subscription == i).count();
        assert_eq!((to(0), to(1), to(2)), (1, 3, 1));
        assert_eq!(
            malformed,
            BTreeMap::from([("not Content-Encoding: aes128gcm", 1)])
        );

        let row = ceiling(&r, 4, Duration::from_millis(100));
        assert!(
            row.rate.unwrap_or(0.0) > 0.0 && row.errors == 0,
            "{}",
            row.note
        );
    }

    #[test]
    fn a_topic_names_its_event_by_its_trailing_digits() {
        assert_eq!(event_of("1234"), Some(1234));
        assert_eq!(event_of("e1234"), Some(1234));
        assert_eq!(event_of("abc"), None);
        assert_eq!(event_of(""), None);
    }

    #[test]
    fn keys_are_as_a_browser_makes_them() {
        let (p256dh, auth) = keys().unwrap();
        let public = URL_SAFE_NO_PAD.decode(p256dh).unwrap();
        assert_eq!((public.len(), public[0]), (65, 4), "uncompressed point");
        assert_eq!(URL_SAFE_NO_PAD.decode(auth).unwrap().len(), 16);
    }

    #[test]
    fn pushes_are_matched_to_sends_by_topic_and_counted_once() {
        let t = Instant::now();
        let ms = |n: u64| t + Duration::from_millis(n);
        let acked = [
            Acked {
                event: 10,
                author: 0,
                at: ms(0),
            },
            Acked {
                event: 11,
                author: 1,
                at: ms(1),
            },
        ];
        let at = |subscription, n, topic: &str| Arrival {
            subscription,
            at: ms(n),
            topic: Some(topic.into()),
        };
        let arrivals = [
            at(1, 5, "10"),
            at(1, 6, "10"), // again
            at(0, 7, "11"),
            at(0, 8, "10"), // its own message
            at(2, 9, "99"), // not this run's
        ];
        let m = match_up(&arrivals, &acked, 3);
        assert!(m.by_topic);
        assert_eq!((m.delivered, m.repeats, m.unexpected), (2, 1, 2));
        assert_eq!(m.latencies, [5_000, 6_000]);
    }

    #[test]
    fn without_topics_pushes_are_paired_in_order() {
        let t = Instant::now();
        let ms = |n: u64| t + Duration::from_millis(n);
        let acked = [
            Acked {
                event: 10,
                author: 0,
                at: ms(0),
            },
            Acked {
                event: 11,
                author: 1,
                at: ms(1),
            },
        ];
        let arrivals: Vec<Arrival> = [(1, 5), (0, 6), (2, 7), (2, 9)]
            .map(|(subscription, n)| Arrival {
                subscription,
                at: ms(n),
                topic: None,
            })
            .to_vec();
        let m = match_up(&arrivals, &acked, 3);
        assert!(!m.by_topic);
        assert_eq!((m.delivered, m.unexpected), (4, 0));
        assert_eq!(m.latencies, [5_000, 5_000, 7_000, 8_000]);
    }
}
