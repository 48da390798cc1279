//! `presence`: what presence costs the send path. The `send` clients run as fast as they can,
//! once alone and once beside `--flappers` users (in direct rooms of two, so each has someone
//! to tell) who each open a long poll (`timeout=0`) every 3.1 s: with the server's grace and
//! flap window set below that (`--env HUBBUB_PRESENCE_GRACE_MS=1000 --env
//! HUBBUB_PRESENCE_WINDOW_MS=3000`), every flapper comes online and goes offline again each
//! window, the most presence can cost: a row insert and delete and a `presence.updated` per
//! user per window, through the same group-commit writer. Run it once more with
//! `--env HUBBUB_PRESENCE=false` to tell the long polls' own cost from presence's.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::{self, Bot};
use crate::send::{self, Load, Op};
use crate::server::Server;
use crate::stats::{us, Latency, Row};

/// A little over the window the command line sets (3 s).
const PERIOD: Duration = Duration::from_millis(3100);

/// The flappers.
pub struct Flappers {
    pub bots: Vec<Bot>,
}

/// Makes `n` bots, each pair sharing a direct room.
pub fn setup(base: &str, prefix: &str, n: usize) -> Result<Flappers, String> {
    api::block(async {
        let bots = api::bots(base, &format!("{prefix}p"), n, 32).await?;
        let c = api::client(None);
        for pair in bots.chunks(2) {
            if let [a, b] = pair {
                let mut resp = c
                    .post(format!("{base}/api/v1/dms"))
                    .insert_header(("Authorization", format!("Bearer {}", a.token)))
                    .send_json(&json!({"user_id": b.id}))
                    .await
                    .map_err(|e| format!("POST /api/v1/dms: {e}"))?;
                let status = resp.status().as_u16();
                if status != 201 && status != 200 {
                    let body = resp.body().await.unwrap_or_default();
                    return Err(format!(
                        "POST /api/v1/dms: {status} {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
            }
        }
        Ok(Flappers { bots })
    })
}

#[derive(Default)]
struct Outcome {
    latencies: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

async fn flapper_loop(
    c: awc::Client,
    base: String,
    bot: Bot,
    idx: usize,
    n: usize,
    until: Instant,
) -> Outcome {
    // Spread over one period so that the total rate is even.
    let mut next = Instant::now() + PERIOD.mul_f64(idx as f64 / n.max(1) as f64);
    let mut out = Outcome::default();
    while next < until {
        actix_rt::time::sleep_until(next.into()).await;
        let t0 = next;
        next += PERIOD;
        let answer = c
            .get(format!("{base}/api/v1/events?timeout=0"))
            .insert_header(("Authorization", format!("Bearer {}", bot.token)))
            .send()
            .await;
        match answer {
            Ok(mut r) if r.status().as_u16() == 200 => {
                let _ = r.body().limit(1 << 20).await;
                out.latencies.push(us(Instant::now() - t0))
            }
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

/// The flappers for `duration`, on one thread of their own; a row of their polls.
fn flap_for(base: String, bots: Vec<Bot>, duration: Duration) -> Row {
    let n = bots.len();
    let until = Instant::now() + duration;
    let started = Instant::now();
    let parts = api::on_threads(1, move |_| {
        let (base, bots) = (base.clone(), bots.clone());
        async move {
            let c = api::client(None);
            let handles: Vec<_> = bots
                .into_iter()
                .enumerate()
                .map(|(i, b)| {
                    actix_rt::spawn(flapper_loop(c.clone(), base.clone(), b, i, n, until))
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
    let mut row = Row::new(format!("presence ({n} flappers)"));
    row.rate = Some(lat.len() as f64 / elapsed);
    row.errors = errors.values().sum();
    row.note = format!("one long poll per user every {:.1} s", PERIOD.as_secs_f64());
    if !errors.is_empty() {
        row.note += &format!(", errors {errors:?}");
    }
    row.extra = json!({"flappers": n, "ok": lat.len(), "errors": errors});
    row.latency = Some(Latency::of(lat));
    row
}

/// Sends alone, then beside the flappers; the rows and the ratio line.
pub fn run(server: &Server, op: &Op, flappers: &Flappers, load: Load) -> (Vec<Row>, String) {
    let (alone, _) = send::run(server, "send max (alone)", op, load);
    let base = server.base.clone();
    let list = flappers.bots.clone();
    // The flappers start first (a full period, so that all of them are flapping) and run a
    // little longer, so the sends meet them all the way.
    let lead = PERIOD;
    let beside = std::thread::spawn(move || flap_for(base, list, lead + load.duration + lead));
    std::thread::sleep(lead);
    let name = format!("send max + {} flappers", flappers.bots.len());
    let (with, _) = send::run(server, &name, op, load);
    let flapping = beside.join().unwrap_or_else(|_| {
        let mut row = Row::new("presence");
        row.errors = 1;
        row.note = "the flappers' thread panicked".into();
        row
    });
    let line = match (alone.rate, with.rate) {
        (Some(a), Some(w)) if a > 0.0 => format!(
            "send rate beside {} flappers / alone = {:.1} % ({w:.0} / {a:.0} per s)",
            flappers.bots.len(),
            w / a * 100.0
        ),
        _ => "send rate beside flappers: not measured".into(),
    };
    (vec![alone, with, flapping], line)
}
