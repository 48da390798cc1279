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

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::{join, join_all};
use image::{GrayImage, ImageFormat, RgbImage};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api::{self, Bot, Frame, Sent};
use crate::send::{self, Op};
use crate::server::{self, Server};
use crate::stats::Row;

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

/// The pictures uploaded, built before any attack: image bombs (81 MP, 60 MP) and a lie.
struct Payloads {
    bombs: Vec<Vec<u8>>,
    liar: Vec<u8>,
}

impl Payloads {
    fn build() -> Payloads {
        Payloads {
            bombs: [png_bomb(), webp_claiming(10_000, 6000)]
                .into_iter()
                .flatten()
                .collect(),
            liar: truncated_jpeg_claiming_9999_square(),
        }
    }
}

/// A real 9000 × 9000 single-colour PNG: a few hundred KiB, 81 megapixels once decoded.
fn png_bomb() -> Option<Vec<u8>> {
    // From a filled buffer: filling it pixel by pixel is slow unoptimized (`--smoke`).
    let img = GrayImage::from_raw(9000, 9000, vec![200u8; 9000 * 9000])?;
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).ok()?;
    Some(out.into_inner())
}

/// A tiny lossless WebP whose header declares `w` × `h`: a 16 × 16 picture with its VP8L
/// header rewritten (encoding a real 60 MP WebP takes seconds unoptimized). The pixel cap
/// must refuse it by that header; a decoder that believed it would allocate w × h × 4 bytes.
fn webp_claiming(w: u32, h: u32) -> Option<Vec<u8>> {
    let img = GrayImage::from_raw(16, 16, vec![200u8; 256])?;
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::WebP).ok()?;
    let mut bytes = out.into_inner();
    // "VP8L", chunk size (4), signature 0x2f, then 32 bits (little-endian): width − 1 (14),
    // height − 1 (14), alpha (1), version (3).
    let at = bytes.windows(4).position(|c| c == b"VP8L")? + 9;
    let old = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
    let dims = (w - 1) | (h - 1) << 14 | old & 0xf000_0000;
    bytes[at..at + 4].copy_from_slice(&dims.to_le_bytes());
    // An extended file also states the canvas (24 bits each, minus one) in its VP8X chunk.
    if let Some(x) = bytes.windows(4).position(|c| c == b"VP8X") {
        bytes[x + 12..x + 15].copy_from_slice(&(w - 1).to_le_bytes()[..3]);
        bytes[x + 15..x + 18].copy_from_slice(&(h - 1).to_le_bytes()[..3]);
    }
    Some(bytes)
}

/// A 64 × 64 JPEG whose frame header is patched to 9999 × 9999, cut off 40 bytes into its
/// scan: what once decoded into a 300 MB grey picture from a few hundred bytes.
fn truncated_jpeg_claiming_9999_square() -> Vec<u8> {
    let img = RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 3) as u8, ((x ^ y) % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    if img.write_to(&mut out, ImageFormat::Jpeg).is_err() {
        return Vec::new();
    }
    let mut bytes = out.into_inner();
    let find = |bytes: &[u8], marker: [u8; 2]| bytes.windows(2).position(|w| w == marker);
    // FFC0, length (2), precision (1), height (2), width (2).
    if let Some(sof) = find(&bytes, [0xFF, 0xC0]) {
        bytes[sof + 5..sof + 7].copy_from_slice(&9999u16.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&9999u16.to_be_bytes());
    }
    if let Some(sos) = find(&bytes, [0xFF, 0xDA]) {
        bytes.truncate(sos + 40);
    }
    bytes
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
    let Op::Send {
        bots: honest_bots, ..
    } = &honest
    else {
        return Err("no honest users".into());
    };
    let listener = honest_bots[0].token.clone();
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

/// How long from now until `end` (zero if past).
fn left(end: Instant) -> Duration {
    end.saturating_duration_since(Instant::now())
}

// --- 1: a data frame announcing 2^62 bytes -------------------------------------------------

/// Each bot, until `end`: opens the stream on a raw connection, sends a binary frame header
/// announcing 2^62 bytes and then payload for as long as the connection takes it; again at
/// most every 250 ms (the frame is the attack here, not connection churn).
async fn frame_attack(base: &str, bots: &[Bot], end: Instant) -> Attacked {
    let addr = base.trim_start_matches("http://").to_string();
    let loops = bots.iter().map(|bot| {
        let addr = addr.clone();
        async move {
            let (mut answers, mut sent) = (Answers::default(), Vec::new());
            while Instant::now() < end {
                let next = Instant::now() + Duration::from_millis(250);
                let (kind, bytes) = one_frame(&addr, &bot.token, end).await;
                answers.add(kind);
                sent.push(bytes);
                actix_rt::time::sleep_until(next.min(end).into()).await;
            }
            (answers, sent)
        }
    });
    let mut out = Attacked::default();
    let mut sent = Vec::new();
    for (answers, s) in join_all(loops).await {
        out.answers.merge(answers);
        sent.extend(s);
    }
    let (total, most) = (sent.iter().sum::<u64>(), sent.iter().max().copied());
    out.detail = format!(
        "{} frames; at most {} KiB of payload written on one connection before it was cut off \
         (socket buffers included)",
        sent.len(),
        most.unwrap_or(0) / 1024
    );
    out.extra = json!({"frames": sent.len(), "payload_bytes_written": total, "most_on_one": most});
    out
}

/// One connection: the upgrade, the header, payload until the server stops taking it.
/// Returns how the server ended it and how many payload bytes it took.
async fn one_frame(addr: &str, token: &str, end: Instant) -> (String, u64) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return ("no connection".into(), 0);
    };
    let upgrade = format!(
        "GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    if stream.write_all(upgrade.as_bytes()).await.is_err() {
        return ("upgrade not sent".into(), 0);
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return ("closed before the upgrade".into(), 0),
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        let status = String::from_utf8_lossy(&head[..head.len().min(12)]).to_string();
        return (format!("upgrade refused ({status})"), 0);
    }
    let (mut rd, mut wr) = stream.into_split();
    let writer = actix_rt::spawn(async move {
        // FIN + binary, masked, 127: a 64-bit length of 2^62; the mask key.
        let mut header = vec![0x82, 0xff];
        header.extend((1u64 << 62).to_be_bytes());
        header.extend([0x11, 0x22, 0x33, 0x44]);
        if wr.write_all(&header).await.is_err() {
            return 0;
        }
        let chunk = vec![0x5a; 64 * 1024];
        let mut sent = 0u64;
        while Instant::now() < end {
            match tokio::time::timeout(Duration::from_secs(1), wr.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len() as u64,
                _ => break,
            }
        }
        sent
    });
    let code = close_code(&mut rd, left(end) + Duration::from_secs(2)).await;
    let sent = writer.await.unwrap_or(0);
    let kind = code.map_or("no close frame".into(), |c| format!("close {c}"));
    (kind, sent)
}

/// Reads server frames until a close frame and returns its code; `None` if the connection
/// ended (or `wait` passed) without one.
async fn close_code(rd: &mut (impl AsyncRead + Unpin), wait: Duration) -> Option<u16> {
    let deadline = Instant::now() + wait;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while buf.len() >= 2 {
            let (len, at) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
                126 => break,
                127 => return None, // the server never sends 64 KiB frames
                n => (usize::from(n), 2),
            };
            if buf.len() < at + len {
                break;
            }
            if buf[0] & 0x0f == 0x8 {
                return (len >= 2).then(|| u16::from_be_bytes([buf[at], buf[at + 1]]));
            }
            buf.drain(..at + len);
        }
        match tokio::time::timeout(left(deadline), rd.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

// --- 2, 3: image bombs and truncated JPEGs -------------------------------------------------

/// Every bot uploads the payloads in turn until `end`, all at once. On 429 a bot waits its
/// `Retry-After` (1 s): an attacker with enough accounts to stay under the write limit, so
/// that what answers is the image pool, not the limiter.
async fn upload_flood(base: &str, bots: &[Bot], payloads: &[Vec<u8>], end: Instant) -> Attacked {
    let loops = bots.iter().enumerate().map(|(i, bot)| async move {
        let c = api::client(None);
        let mut answers = Answers::default();
        let mut n = i;
        while Instant::now() < end {
            let answer = api::upload(&c, base, &bot.token, &payloads[n % payloads.len()]).await;
            n += 1;
            let limited = answer.0 == 429;
            answers.status(answer);
            if limited {
                actix_rt::time::sleep(left(end).min(Duration::from_secs(1))).await;
            }
        }
        answers
    });
    let mut out = Attacked::default();
    for answers in join_all(loops).await {
        out.answers.merge(answers);
    }
    let sizes: Vec<String> = payloads.iter().map(|p| p.len().to_string()).collect();
    out.detail = format!(
        "{} uploaders, pictures of {} bytes",
        bots.len(),
        sizes.join(" and ")
    );
    out
}

// --- 4: failed sign-ins ---------------------------------------------------------------------

/// Rounds of `per_round` sign-ins at once with a wrong password, until `end`.
async fn sign_in_flood(base: &str, username: &str, per_round: usize, end: Instant) -> Attacked {
    let c = api::client(None);
    let body = json!({"username": username, "password": "not the password"});
    let mut out = Attacked::default();
    let mut rounds = 0;
    while Instant::now() < end {
        let round = (0..per_round).map(|_| {
            let req = c.post(format!("{base}/api/v1/sessions")).send_json(&body);
            async move { api::answer(req.await).await }
        });
        for answer in join_all(round).await {
            out.answers.status(answer);
        }
        rounds += 1;
    }
    out.detail = format!("{rounds} rounds of {per_round} at once");
    out
}

// --- 5: one user's writes through several tokens, and tokens until refused -----------------

/// The writer's burst: 20 sends through each of their five tokens at once (their bucket is
/// full: setup was long ago); then sends through all five, each as soon as the last was
/// answered, until `end`. Meanwhile the collector creates tokens until refused (waiting out
/// 429s, since token creations are writes too).
async fn token_writes(base: &str, cast: &Cast, limits: Limits, end: Instant) -> Attacked {
    let c = api::client(None);
    let (room, tokens) = (&cast.writer_room, &cast.writer_tokens);
    let write = |token: &str, body: String| {
        let c = &c;
        let token = token.to_string();
        async move {
            match api::send(c, base, &token, room, &body).await {
                Sent::Acked { .. } => (201, String::new()),
                Sent::Failed(status, code) => (status, code),
            }
        }
    };
    let writes = async {
        let started = Instant::now();
        let burst =
            (0..20 * tokens.len()).map(|i| write(&tokens[i % tokens.len()], format!("b{i}")));
        let burst = join_all(burst).await;
        let took = started.elapsed();
        let flood_started = Instant::now();
        let floods = tokens.iter().map(|token| async {
            let mut answers = Answers::default();
            while Instant::now() < end {
                answers.status(write(token, "flood".into()).await);
            }
            answers
        });
        let flood = join_all(floods).await;
        (burst, took, flood, flood_started.elapsed())
    };
    let collect = async {
        let (mut created, mut waits) = (0usize, 0u32);
        let refusal = loop {
            if created > 10 * limits.tokens.max(10) {
                break "no refusal".to_string();
            }
            match create_token(&c, base, &cast.collector).await {
                Ok(_) => created += 1,
                Err((429, _)) if Instant::now() < end + Duration::from_secs(10) => {
                    waits += 1;
                    actix_rt::time::sleep(Duration::from_secs(1)).await;
                }
                Err((status, code)) => break format!("{status} {code}"),
            }
        };
        (created, waits, refusal)
    };
    let ((burst, took, flood, flood_s), (created, waits, refusal)) = join(writes, collect).await;
    let mut out = Attacked::default();
    let through = burst.iter().filter(|a| a.0 == 201).count();
    for answer in burst {
        out.answers.status(answer);
    }
    let mut flooded = Answers::default();
    for answers in flood {
        flooded.merge(answers);
    }
    let flood_ok = flooded.0.get("201").copied().unwrap_or(0);
    let flood_n = flooded.total();
    out.answers.merge(flooded);
    let burst_size = 5 * limits.writes_per_s;
    let expected = match limits.writes_per_s {
        0 => "the write limit is off: hostile runs with other scenarios".into(),
        r => format!(
            "one user's burst {burst_size} + {:.0} refilled",
            (took.as_secs_f64() * f64::from(r)).ceil()
        ),
    };
    out.detail = format!(
        "burst: {through}/{} through {} tokens in {:.2} s ({expected}), then {flood_ok}/{flood_n} \
         in {:.1} s; tokens: {created} created (cap {}), then {refusal}{}",
        20 * tokens.len(),
        tokens.len(),
        took.as_secs_f64(),
        flood_s.as_secs_f64(),
        limits.tokens,
        if waits > 0 {
            format!(" ({waits} waits on 429)")
        } else {
            String::new()
        }
    );
    out.extra = json!({
        "burst_sent": 20 * tokens.len(), "burst_through": through,
        "burst_seconds": took.as_secs_f64(), "expected_burst": burst_size,
        "flood_requests": flood_n, "flood_through": flood_ok, "flood_seconds": flood_s.as_secs_f64(),
        "tokens_created": created, "token_cap": limits.tokens, "token_refusal": refusal,
    });
    out
}

// --- 6: one token opening sockets until refused --------------------------------------------

/// Opens the stream with `token`: the socket, or the refusal's status.
async fn try_open(c: &awc::Client, ws: &str, token: &str) -> Result<impl api::Socket, String> {
    let attempt = c
        .ws(format!("{ws}/api/v1/stream"))
        .header("Authorization", format!("Bearer {token}"))
        .connect()
        .await;
    match attempt {
        Ok((resp, socket)) if resp.status().as_u16() == 101 => Ok(socket),
        Ok((resp, _)) => Err(format!("{} (upgrade)", resp.status().as_u16())),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
            Err(format!("{} (upgrade)", status.as_u16()))
        }
        Err(e) => Err(format!("no answer ({e})")),
    }
}

/// An honest user's socket: opened and greeted, timed. Err says what went wrong.
async fn honest_socket(ws: &str, token: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let c = api::client(None);
    let mut socket = try_open(&c, ws, token).await?;
    match api::next_frame(&mut socket).await {
        Some(Frame::Hello) => Ok(started.elapsed()),
        _ => Err("no hello frame".into()),
    }
}

/// `GET /api/v1/events?timeout=0` with `token`.
async fn poll_now(base: &str, token: &str) -> (u16, String) {
    let c = api::client(None);
    let req = c
        .get(format!("{base}/api/v1/events?timeout=0"))
        .insert_header(("Authorization", format!("Bearer {token}")));
    api::answer(req.send().await).await
}

/// One token opens sockets until refused and holds them; an honest user connects; the
/// attacker's long poll is refused too; then the attacker keeps knocking until `end`.
async fn socket_hoard(
    base: &str,
    ws: &str,
    token: &str,
    honest: &str,
    limits: Limits,
    end: Instant,
) -> Attacked {
    let c = api::client(None);
    let mut out = Attacked::default();
    let mut held = Vec::new();
    let refusal = loop {
        if held.len() > 10 * limits.streams.max(10) {
            break "no refusal".to_string();
        }
        match try_open(&c, ws, token).await {
            Ok(socket) => {
                held.push(socket);
                out.answers.add("101");
            }
            Err(kind) => {
                out.answers.add(kind.clone());
                break kind;
            }
        }
    };
    let honest_ms = match honest_socket(ws, honest).await {
        Ok(took) => Some(took.as_secs_f64() * 1e3),
        Err(e) => {
            out.honest_failures.push(format!("socket: {e}"));
            None
        }
    };
    let (status, code) = poll_now(base, token).await;
    let poll = format!("{status} {code}");
    out.answers.status((status, code));
    let mut knocks = 0;
    while Instant::now() < end {
        match try_open(&c, ws, token).await {
            Ok(socket) => {
                held.push(socket);
                out.answers.add("101");
            }
            Err(kind) => out.answers.add(kind),
        }
        knocks += 1;
    }
    out.detail = format!(
        "{} sockets on one token (cap {}), then {refusal}; its long poll {poll}; {knocks} more \
         upgrades; an honest user's socket opened in {}",
        held.len(),
        limits.streams,
        honest_ms.map_or("-".into(), |ms| format!("{ms:.1} ms"))
    );
    out.extra = json!({
        "held": held.len(), "stream_cap": limits.streams, "refusal": refusal,
        "poll": poll, "knocks": knocks, "honest_socket_ms": honest_ms,
    });
    out
}

// --- 7: abandoned long polls ----------------------------------------------------------------

/// The node's `hubbub_open_sockets`.
async fn open_sockets(base: &str) -> f64 {
    server::metrics(base, "hubbub_open_sockets ")
        .await
        .first()
        .map_or(-1.0, |m| m.1)
}

/// Rounds until `end`: `polls` long polls (`timeout=30`) spread over the bots, five each, all
/// given up after half a second; then how long until the node counts their slots free again,
/// and how long an honest user's socket and poll take.
async fn abandoned_polls(
    base: &str,
    ws: &str,
    bots: &[Bot],
    polls: usize,
    honest: &str,
    end: Instant,
) -> Attacked {
    let mut out = Attacked::default();
    let (mut rounds, mut back_ms, mut honest_ms) = (0, 0f64, 0f64);
    loop {
        let before = open_sockets(base).await;
        let round = (0..polls).map(|i| {
            let token = &bots[(i / 5) % bots.len()].token;
            async move {
                let c = awc::Client::builder()
                    .timeout(Duration::from_millis(500))
                    .finish();
                let req = c
                    .get(format!("{base}/api/v1/events?timeout=30"))
                    .insert_header(("Authorization", format!("Bearer {token}")));
                match req.send().await {
                    Err(awc::error::SendRequestError::Timeout) => (0, "abandoned".to_string()),
                    other => api::answer(other).await,
                }
            }
        });
        for answer in join_all(round).await {
            match answer {
                (0, kind) if kind == "abandoned" => out.answers.add("abandoned after 0.5 s"),
                other => out.answers.status(other),
            }
        }
        let dropped = Instant::now();
        while open_sockets(base).await > before {
            if dropped.elapsed() > Duration::from_secs(5) {
                out.honest_failures
                    .push("the abandoned polls held their slots for 5 s".into());
                break;
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        back_ms = back_ms.max(dropped.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        match honest_socket(ws, honest).await {
            Ok(_) => {}
            Err(e) => out.honest_failures.push(format!("socket: {e}")),
        }
        match poll_now(base, honest).await {
            (200, _) => {}
            (status, code) => out.honest_failures.push(format!("poll: {status} {code}")),
        }
        honest_ms = honest_ms.max(started.elapsed().as_secs_f64() * 1e3);
        rounds += 1;
        if Instant::now() >= end {
            break;
        }
    }
    out.detail = format!(
        "{rounds} rounds of {polls} polls; their slots free again within {back_ms:.0} ms; \
         an honest socket + poll then took at most {honest_ms:.1} ms"
    );
    out.extra = json!({
        "rounds": rounds, "polls_per_round": polls, "slots_back_ms": back_ms,
        "honest_socket_and_poll_ms": honest_ms,
    });
    out
}
