//! `typing`: what typists cost the send path. The `send` clients run as fast as they can, once
//! alone and once beside `--typers` members each saying `typing: true` in their rooms (of ten)
//! once per throttle window, so that every call appends a `typing.updated` through the same
//! group-commit writer. Reports both send rates, the typing calls' own latency, and the ratio.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::{self, Bot};
use crate::send::{self, Load, Op};
use crate::server::Server;
use crate::stats::{us, Latency, Row};

/// Typers per room.
const PER_ROOM: usize = 10;
/// A little over the server's default throttle window (3 s), so that every call appends.
const PERIOD: Duration = Duration::from_millis(3100);

/// The typers and their rooms.
pub struct Typers {
    pub typers: Vec<(Bot, String)>,
}

/// Makes `n` bots in rooms of [`PER_ROOM`].
pub fn setup(base: &str, prefix: &str, n: usize) -> Result<Typers, String> {
    api::block(async {
        let bots = api::bots(base, &format!("{prefix}t"), n, 32).await?;
        let mut typers = Vec::with_capacity(n);
        for (i, group) in bots.chunks(PER_ROOM).enumerate() {
            let members: Vec<String> = group[1..].iter().map(|b| b.id.clone()).collect();
            let room = api::create_room(base, &group[0], &format!("typing {i}"), &members).await?;
            typers.extend(group.iter().map(|b| (b.clone(), room.clone())));
        }
        Ok(Typers { typers })
    })
}

#[derive(Default)]
struct Outcome {
    latencies: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

async fn typer_loop(
    c: awc::Client,
    base: String,
    typer: (Bot, String),
    idx: usize,
    n: usize,
    until: Instant,
) -> Outcome {
    let (bot, room) = typer;
    // Spread over one period so that the total rate is even.
    let mut next = Instant::now() + PERIOD.mul_f64(idx as f64 / n.max(1) as f64);
    let mut out = Outcome::default();
    while next < until {
        actix_rt::time::sleep_until(next.into()).await;
        let t0 = next;
        next += PERIOD;
        let answer = c
            .post(format!("{base}/api/v1/rooms/{room}/typing"))
            .insert_header(("Authorization", format!("Bearer {}", bot.token)))
            .send_json(&json!({"typing": true}))
            .await;
        match answer {
            Ok(r) if r.status().as_u16() == 204 => out.latencies.push(us(Instant::now() - t0)),
            Ok(r) => {
                *out.errors
                    .entry(r.status().as_u16().to_string())
                    .or_default() += 1
            }
            Err(e) => *out.errors.entry(format!("0 {e}")).or_default() += 1,
        }
    }
    out
}

/// The typers for `duration`, on one thread of their own; a row of their calls.
fn type_for(base: String, typers: Vec<(Bot, String)>, duration: Duration) -> Row {
    let n = typers.len();
    let until = Instant::now() + duration;
    let started = Instant::now();
    let parts = api::on_threads(1, move |_| {
        let (base, typers) = (base.clone(), typers.clone());
        async move {
            // One client (one connector, its TLS set-up done once) shared by every typer.
            let c = api::client(None);
            let handles: Vec<_> = typers
                .into_iter()
                .enumerate()
                .map(|(i, t)| actix_rt::spawn(typer_loop(c.clone(), base.clone(), t, i, n, until)))
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
    let mut row = Row::new(format!("typing ({n} typers)"));
    row.rate = Some(lat.len() as f64 / elapsed);
    row.errors = errors.values().sum();
    row.note = format!("one true per typer every {:.1} s", PERIOD.as_secs_f64());
    if !errors.is_empty() {
        row.note += &format!(", errors {errors:?}");
    }
    row.extra = json!({"typers": n, "ok": lat.len(), "errors": errors});
    row.latency = Some(Latency::of(lat));
    row
}

/// Sends alone, then beside the typers; the rows and the ratio line.
pub fn run(server: &Server, op: &Op, typers: &Typers, load: Load) -> (Vec<Row>, String) {
    let (alone, _) = send::run(server, "send max (alone)", op, load);
    let base = server.base.clone();
    let list = typers.typers.clone();
    // The typers start first and run a little longer, so the sends meet them all the way.
    let lead = Duration::from_millis(500);
    let beside = std::thread::spawn(move || type_for(base, list, lead + load.duration + lead));
    std::thread::sleep(lead);
    let name = format!("send max + {} typers", typers.typers.len());
    let (with, _) = send::run(server, &name, op, load);
    let typing = beside.join().unwrap_or_else(|_| {
        let mut row = Row::new("typing");
        row.errors = 1;
        row.note = "the typers' thread panicked".into();
        row
    });
    let line = match (alone.rate, with.rate) {
        (Some(a), Some(w)) if a > 0.0 => format!(
            "send rate beside {} typers / alone = {:.1} % ({w:.0} / {a:.0} per s)",
            typers.typers.len(),
            w / a * 100.0
        ),
        _ => "send rate beside typers: not measured".into(),
    };
    (vec![alone, with, typing], line)
}
