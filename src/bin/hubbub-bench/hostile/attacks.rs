//! The attacks, one function each: what the attacker does until `end`, and what it got back.

use std::time::{Duration, Instant};

use futures_util::future::{join, join_all};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api::{self, Bot, Frame, Sent};
use crate::server;

use super::{create_token, Answers, Attacked, Cast, Limits};

/// How long from now until `end` (zero if past).
pub(super) fn left(end: Instant) -> Duration {
    end.saturating_duration_since(Instant::now())
}

// --- 1: a data frame announcing 2^62 bytes -------------------------------------------------

/// Each bot, until `end`: opens the stream on a raw connection, sends a binary frame header
/// announcing 2^62 bytes and then payload for as long as the connection takes it; again at
/// most every 250 ms (the frame is the attack here, not connection churn).
pub(super) async fn frame_attack(base: &str, bots: &[Bot], end: Instant) -> Attacked {
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
pub(super) async fn one_frame(addr: &str, token: &str, end: Instant) -> (String, u64) {
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
pub(super) async fn close_code(rd: &mut (impl AsyncRead + Unpin), wait: Duration) -> Option<u16> {
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
pub(super) async fn upload_flood(
    base: &str,
    bots: &[Bot],
    payloads: &[Vec<u8>],
    end: Instant,
) -> Attacked {
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
pub(super) async fn sign_in_flood(
    base: &str,
    username: &str,
    per_round: usize,
    end: Instant,
) -> Attacked {
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
pub(super) async fn token_writes(
    base: &str,
    cast: &Cast,
    limits: Limits,
    end: Instant,
) -> Attacked {
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
pub(super) async fn try_open(
    c: &awc::Client,
    ws: &str,
    token: &str,
) -> Result<impl api::Socket, String> {
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
pub(super) async fn honest_socket(ws: &str, token: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let c = api::client(None);
    let mut socket = try_open(&c, ws, token).await?;
    match api::next_frame(&mut socket).await {
        Some(Frame::Hello) => Ok(started.elapsed()),
        _ => Err("no hello frame".into()),
    }
}

/// `GET /api/v1/events?timeout=0` with `token`.
pub(super) async fn poll_now(base: &str, token: &str) -> (u16, String) {
    let c = api::client(None);
    let req = c
        .get(format!("{base}/api/v1/events?timeout=0"))
        .insert_header(("Authorization", format!("Bearer {token}")));
    api::answer(req.send().await).await
}

/// One token opens sockets until refused and holds them; an honest user connects; the
/// attacker's long poll is refused too; then the attacker keeps knocking until `end`.
pub(super) async fn socket_hoard(
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
pub(super) async fn open_sockets(base: &str) -> f64 {
    server::metrics(base, "hubbub_open_sockets ")
        .await
        .first()
        .map_or(-1.0, |m| m.1)
}

/// Rounds until `end`: `polls` long polls (`timeout=30`) spread over the bots, five each, all
/// given up after half a second; then how long until the node counts their slots free again,
/// and how long an honest user's socket and poll take.
pub(super) async fn abandoned_polls(
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
