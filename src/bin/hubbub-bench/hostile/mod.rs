//! `hostile`: the attacks of issue #14 against a live server, one at a time, while an honest
//! client (users of their own, each under its write limit) sends keyed messages at a fixed
//! rate. Each attack gives one row: what the server answered the attacker, the server's peak
//! RSS during the attack and its RSS a moment after, and the honest sends' outcome and latency
//! against a baseline row of the honest client alone.
//!
//! The attacks: a socket frame announcing 2^62 bytes; image bombs (small pictures declaring
//! 81 and 60 megapixels) and truncated JPEGs claiming 9999 × 9999, uploaded by many clients at
//! once; a flood of failed sign-ins (argon2 hashes); one user's writes through several tokens,
//! and tokens created until refused; one token opening sockets until refused; long polls
//! abandoned after half a second.

mod attacks;
mod payloads;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::{self, Bot};
use crate::send::{self, Op};
use crate::server::Server;
use crate::stats::Row;

use attacks::*;
use payloads::Payloads;

/// The server's limits the attacks run into, as configured (for the expected figures).
#[derive(Clone, Copy)]
pub struct Limits {
    /// `HUBBUB_RATE_WRITES_PER_SEC` (0: off); the burst is five seconds' worth.
    pub writes_per_s: u32,
    /// `HUBBUB_MAX_TOKENS_PER_USER`.
    pub tokens: usize,
    /// `HUBBUB_MAX_STREAMS_PER_USER`.
    pub streams: usize,
}

/// How long and how hard.
#[derive(Clone, Copy)]
pub struct Plan {
    /// Each attack's length; the honest client sends throughout.
    pub window: Duration,
    /// When the "after" RSS is read, from the attack's end.
    pub after: Duration,
    /// The pause before each attack (the last one's work settling), then the idle RSS.
    pub settle: Duration,
    /// The honest client's total rate (per second), spread over `honest_users`.
    pub honest_rate: f64,
    pub honest_users: usize,
    /// Concurrent attacking clients (uploaders; a quarter of them send 2^62 frames; four times
    /// as many sign-ins per round).
    pub attackers: usize,
    /// Long polls opened and abandoned per round.
    pub polls: usize,
    pub limits: Limits,
}

/// Answers counted by kind: `"422 image_too_large"`, `"close 1008"`, …
#[derive(Default)]
struct Answers(BTreeMap<String, u64>);

impl Answers {
    fn add(&mut self, kind: impl Into<String>) {
        *self.0.entry(kind.into()).or_default() += 1;
    }

    /// An HTTP answer: status and error code; a missing answer by its (shortened) error.
    fn status(&mut self, (status, code): (u16, String)) {
        match status {
            0 => self.add(format!(
                "no answer ({})",
                code.chars().take(40).collect::<String>()
            )),
            _ if code.is_empty() => self.add(status.to_string()),
            _ => self.add(format!("{status} {code}")),
        }
    }

    fn merge(&mut self, other: Answers) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }

    fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

impl fmt::Display for Answers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// What an attack did: the server's answers to the attacker, a line of what they mean, and
/// what went wrong for honest users other than their sends (a socket that didn't open).
#[derive(Default)]
struct Attacked {
    answers: Answers,
    detail: String,
    honest_failures: Vec<String>,
    extra: serde_json::Value,
}

/// The attackers' credentials, made before the baseline.
struct Cast {
    /// Bots (each a user with its own write bucket and stream share).
    bots: Vec<Bot>,
    /// A person with a password, whose failed sign-ins are the flood.
    victim: String,
    /// A person writing through several tokens of theirs: the tokens and their room.
    writer_tokens: Vec<String>,
    writer_room: String,
    /// A person who creates tokens until refused (their session cookie).
    collector: String,
}

async fn cast(base: &str, prefix: &str, plan: &Plan) -> Result<Cast, String> {
    let bots = api::bots(base, &format!("{prefix}x"), plan.attackers.max(5), 16).await?;
    let c = api::client(None);
    let victim = format!("{prefix}victim");
    api::register(&c, base, &victim).await?;
    let writer = api::register(&c, base, &format!("{prefix}writer")).await?;
    let room = c
        .post(format!("{base}/api/v1/rooms"))
        .insert_header(("Cookie", writer.as_str()))
        .send_json(&json!({"name": "spam", "member_ids": []}))
        .await;
    let writer_room = match room {
        Ok(mut r) if r.status().as_u16() == 201 => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .ok_or("POST /api/v1/rooms: no id")?,
        _ => return Err("POST /api/v1/rooms as the writer failed".into()),
    };
    let mut writer_tokens = Vec::new();
    for _ in 0..5 {
        writer_tokens.push(
            create_token(&c, base, &writer)
                .await
                .map_err(|(s, code)| format!("POST /api/v1/tokens: {s} {code}"))?,
        );
    }
    let collector = api::register(&c, base, &format!("{prefix}collector")).await?;
    Ok(Cast {
        bots,
        victim,
        writer_tokens,
        writer_room,
        collector,
    })
}

/// `POST /api/v1/tokens` with a session cookie: the new token's secret, or the refusal.
async fn create_token(c: &awc::Client, base: &str, cookie: &str) -> Result<String, (u16, String)> {
    let resp = c
        .post(format!("{base}/api/v1/tokens"))
        .insert_header(("Cookie", cookie))
        .send_json(&json!({"name": "hostile", "scopes": ["read", "send"]}))
        .await;
    match resp {
        Ok(mut r) if r.status().as_u16() == 201 => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["token_secret"].as_str().map(str::to_string))
            .ok_or((201, "no token_secret".into())),
        other => Err(api::answer(other).await),
    }
}

/// Runs the baseline and the seven attacks; one row each.
pub fn run(server: &Server, prefix: &str, plan: Plan) -> Result<Vec<Row>, String> {
    let base = server.base.clone();
    let payloads = Payloads::build();
    if payloads.bombs.len() < 2 || payloads.liar.is_empty() {
        return Err("could not encode the attack pictures".into());
    }
    let honest = send::setup(&base, &format!("{prefix}h"), plan.honest_users, true)?;
    let listener = match &honest {
        Op::Send { senders, .. } => senders.iter().find_map(|(s, _)| match &s.auth {
            api::Auth::Bearer(token) => Some(token.clone()),
            api::Auth::Cookie(_) => None,
        }),
        Op::Healthz | Op::Matrix { .. } => None,
    };
    let Some(listener) = listener else {
        return Err("no honest users".into());
    };
    let cast = api::block(cast(&base, prefix, &plan))?;
    let ws = server.ws_base();

    let mut rows = Vec::new();
    let baseline = measure(server, &plan, &honest, |_| async { Attacked::default() });
    let base_p99 = baseline.honest.latency.map(|l| l.p99_us);
    rows.push(baseline.row("hostile baseline", plan.after, None));
    let mut attack = |name: &str, m: Measured| rows.push(m.row(name, plan.after, base_p99));

    let frames = (plan.attackers / 4).max(1);
    attack(
        "hostile 2^62 frame",
        measure(server, &plan, &honest, |end| {
            frame_attack(&base, &cast.bots[..frames], end)
        }),
    );
    attack(
        "hostile image bombs",
        measure(server, &plan, &honest, |end| {
            upload_flood(&base, &cast.bots, &payloads.bombs, end)
        }),
    );
    attack(
        "hostile truncated jpeg",
        measure(server, &plan, &honest, |end| {
            upload_flood(&base, &cast.bots, std::slice::from_ref(&payloads.liar), end)
        }),
    );
    attack(
        "hostile sign-in flood",
        measure(server, &plan, &honest, |end| {
            sign_in_flood(&base, &cast.victim, plan.attackers * 4, end)
        }),
    );
    attack(
        "hostile token writes",
        measure(server, &plan, &honest, |end| {
            token_writes(&base, &cast, plan.limits, end)
        }),
    );
    attack(
        "hostile socket hoard",
        measure(server, &plan, &honest, |end| {
            socket_hoard(&base, &ws, &cast.bots[0].token, &listener, plan.limits, end)
        }),
    );
    attack(
        "hostile long polls",
        measure(server, &plan, &honest, |end| {
            abandoned_polls(&base, &ws, &cast.bots, plan.polls, &listener, end)
        }),
    );
    Ok(rows)
}

/// One attack's figures.
struct Measured {
    honest: Row,
    attacked: Attacked,
    idle_kib: Option<u64>,
    peak_kib: Option<u64>,
    after_kib: Option<u64>,
    alive: bool,
    /// How the server ended, if it did.
    exit: Option<String>,
}

/// Runs `attack` (given its deadline) on this thread while the honest client sends on another
/// and a third samples the server's RSS every 50 ms; then waits `plan.after` and checks that
/// the server still answers.
fn measure<F, Fut>(server: &Server, plan: &Plan, honest: &Op, attack: F) -> Measured
where
    F: FnOnce(Instant) -> Fut,
    Fut: Future<Output = Attacked>,
{
    std::thread::sleep(plan.settle);
    let idle_kib = server.rss_kib();
    let hwm = server.reset_peak();
    let stop = AtomicBool::new(false);
    let load = send::Load {
        clients: plan.honest_users,
        duration: plan.window,
        rate: Some(plan.honest_rate),
        threads: 1,
    };
    let (honest, attacked, sampled) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(server.rss_kib().unwrap_or(0));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        });
        let sender = s.spawn(|| send::run(server, "honest", honest, load).0);
        // send::run starts its clock 200 ms from now.
        let end = Instant::now() + Duration::from_millis(200) + plan.window;
        let attacked = api::block(attack(end));
        let honest = sender.join().unwrap_or_else(|_| {
            let mut row = Row::new("honest");
            row.errors = 1;
            row.note = "the honest sender panicked".into();
            row
        });
        stop.store(true, Ordering::Relaxed);
        (honest, attacked, sampler.join().unwrap_or(0))
    });
    let peak_kib = match (hwm, server.peak_kib()) {
        (true, Some(hwm)) => Some(hwm.max(sampled)),
        _ => Some(sampled).filter(|&p| p > 0),
    };
    std::thread::sleep(plan.after);
    let after_kib = server.rss_kib();
    let alive = api::block(async {
        let c = api::client(None);
        matches!(c.get(format!("{}/healthz", server.base)).send().await,
                 Ok(r) if r.status().as_u16() == 200)
    });
    Measured {
        honest,
        attacked,
        idle_kib,
        peak_kib,
        after_kib,
        alive,
        exit: server.exit_status(),
    }
}

impl Measured {
    fn row(self, name: &str, after: Duration, base_p99: Option<u64>) -> Row {
        let Measured {
            honest,
            attacked,
            idle_kib,
            peak_kib,
            after_kib,
            alive,
            exit,
        } = self;
        let lat = honest.latency.unwrap_or_default();
        let (ok, failed) = (lat.count as u64, honest.errors);
        let mib = |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0));
        let ratio = base_p99
            .filter(|&b| b > 0 && lat.count > 0)
            .map(|b| lat.p99_us as f64 / b as f64);
        let mut row = Row::new(name);
        row.rate = honest.rate;
        row.latency = honest.latency;
        row.errors = failed + attacked.honest_failures.len() as u64 + u64::from(!alive);
        let mut note = String::new();
        if attacked.answers.total() > 0 {
            note += &format!("attacker got {}; ", attacked.answers);
        }
        if !attacked.detail.is_empty() {
            note += &format!("{}; ", attacked.detail);
        }
        note += &format!(
            "server RSS {} -> peak {} -> {} MiB {:.1} s after; honest sends {ok}/{}",
            mib(idle_kib),
            mib(peak_kib),
            mib(after_kib),
            after.as_secs_f64(),
            ok + failed,
        );
        if let Some(r) = ratio {
            note += &format!(", p99 {r:.1}x baseline");
        }
        if failed > 0 {
            note += &format!(" ({})", honest.note);
        }
        if let Some(f) = attacked.honest_failures.first() {
            let n = attacked.honest_failures.len();
            note += &format!("; HONEST USER FAILED {n} times (first: {f})");
        }
        if !alive {
            note += "; THE SERVER DID NOT ANSWER /healthz AFTERWARDS";
        }
        if let Some(exit) = &exit {
            note += &format!(" (it {exit})");
        }
        row.note = note;
        row.extra = json!({
            "attacker_answers": attacked.answers.0,
            "attack": attacked.extra,
            "rss_idle_kib": idle_kib, "rss_peak_kib": peak_kib, "rss_after_kib": after_kib,
            "honest_ok": ok, "honest_failed": failed, "honest_p99_vs_baseline": ratio,
            "honest_failures": attacked.honest_failures, "server_alive": alive,
            "server_exit": exit,
        });
        row
    }
}
