//! `fanout`: a room of `size` bots, every member with an open socket; one member posts at a
//! fixed rate. Delivery latency runs from the POST's response arriving to each member's frame
//! arriving (matched by message id); deliveries that never arrive are counted as missing.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::watch;

use crate::api::{self, Bot, Frame, Sent};
use crate::server::Server;
use crate::stats::{us, Latency, Row};

/// The fixed send rate and how long to keep it.
#[derive(Clone, Copy)]
pub struct Pace {
    pub per_s: f64,
    pub seconds: f64,
    pub threads: usize,
}

type Arrivals = Vec<(String, Instant)>;

/// Opens one socket per bot on this thread, reports how many opened, and collects the
/// `message.created` frames each one sees until `stop`.
async fn listen(
    ws_base: String,
    bots: Vec<Bot>,
    ready: mpsc::Sender<Result<usize, String>>,
    stop: watch::Receiver<bool>,
) -> (Vec<Arrivals>, Vec<String>) {
    let c = api::client(None);
    let opened: Vec<Result<_, String>> = futures_util::stream::iter(bots)
        .map(|bot| {
            let (c, ws_base) = (c.clone(), ws_base.clone());
            async move {
                let mut s = api::connect(&c, &ws_base, &bot.token, None).await?;
                match api::next_frame(&mut s).await {
                    Some(Frame::Hello) => Ok(s),
                    _ => Err("no hello frame".to_string()),
                }
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let (mut sockets, mut failures) = (Vec::new(), Vec::new());
    for o in opened {
        match o {
            Ok(s) => sockets.push(s),
            Err(e) => failures.push(e),
        }
    }
    let _ = ready.send(if failures.is_empty() {
        Ok(sockets.len())
    } else {
        Err(failures[0].clone())
    });
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut s| {
            let mut stop = stop.clone();
            actix_rt::spawn(async move {
                let (mut seen, mut closed) = (Vec::new(), None);
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        frame = api::next_frame(&mut s) => match frame {
                            Some(Frame::Message(_, mid)) => seen.push((mid, Instant::now())),
                            Some(Frame::Closed(why)) => {
                                closed = Some(why);
                                break;
                            }
                            None => {
                                closed = Some("stream ended".into());
                                break;
                            }
                            Some(_) => {}
                        },
                    }
                }
                (seen, closed)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        if let Ok((seen, closed)) = t.await {
            all.push(seen);
            failures.extend(closed);
        }
    }
    (all, failures)
}

/// One room size: set up, listen, send, match.
pub fn run(server: &Server, prefix: &str, size: usize, pace: Pace) -> Result<Row, String> {
    let base = server.base.clone();
    let (bots, room) = api::block(async {
        let bots = api::bots(&base, &format!("{prefix}f{size}-"), size, 32).await?;
        let ids: Vec<String> = bots[1..].iter().map(|b| b.id.clone()).collect();
        let room = api::create_room(&base, &bots[0], &format!("fanout {size}"), &ids).await?;
        Ok::<_, String>((bots, room))
    })?;
    let sender = bots[0].clone();
    let threads = pace.threads.clamp(1, size);
    let (stop_tx, stop) = watch::channel(false);
    let (ready_tx, ready_rx) = mpsc::channel();
    let t_open = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let share: Vec<Bot> = bots.iter().skip(t).step_by(threads).cloned().collect();
            let (ws_base, ready, stop) = (server.ws_base(), ready_tx.clone(), stop.clone());
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(listen(ws_base, share, ready, stop))
            })
        })
        .collect();
    let mut open = 0;
    for _ in 0..threads {
        match ready_rx.recv() {
            Ok(Ok(n)) => open += n,
            Ok(Err(e)) => {
                let _ = stop_tx.send(true);
                return Err(format!("fanout {size}: a socket did not open: {e}"));
            }
            Err(_) => return Err("a listening thread died".into()),
        }
    }
    let open_s = t_open.elapsed().as_secs_f64();
    let count = (pace.per_s * pace.seconds).round().max(1.0) as usize;
    let step = Duration::from_secs_f64(1.0 / pace.per_s);
    let (posted, send_errors) = api::block(async {
        let c = api::client(None);
        let (mut posted, mut errors) = (HashMap::new(), 0u64);
        // Warm the connection, so the first timed send doesn't pay for the TCP handshake.
        let _ = c.get(format!("{base}/healthz")).send().await;
        let start = Instant::now();
        for k in 0..count {
            actix_rt::time::sleep_until((start + step * k as u32).into()).await;
            match api::send(&c, &base, &sender.token, &room, &format!("fanout {k}")).await {
                Sent::Acked { message_id, .. } => {
                    posted.insert(message_id, Instant::now());
                }
                Sent::Failed(..) => errors += 1,
            }
        }
        actix_rt::time::sleep(Duration::from_secs(2)).await;
        (posted, errors)
    });
    let _ = stop_tx.send(true);
    let (mut lat, mut matched, mut early, mut closed) = (Vec::new(), 0usize, 0u64, Vec::new());
    for h in handles {
        let (sockets, failures) = h.join().map_err(|_| "a listening thread panicked")?;
        closed.extend(failures);
        for seen in sockets {
            let mut uniq = std::collections::HashSet::new();
            for (mid, at) in seen {
                if let Some(sent) = posted.get(&mid) {
                    if uniq.insert(mid) {
                        matched += 1;
                        early += u64::from(at < *sent);
                        lat.push(us(at.saturating_duration_since(*sent)));
                    }
                }
            }
        }
    }
    let expected = posted.len() * size;
    let missing = expected - matched;
    let mut row = Row::new(format!("fanout {size} members"));
    row.rate = Some(matched as f64 / pace.seconds);
    row.latency = Some(Latency::of(lat));
    row.errors = missing as u64 + send_errors;
    row.note = format!(
        "{} msgs at {:.0}/s, {open} sockets opened in {open_s:.1} s, missing {missing}/{expected}, \
         send errors {send_errors}, frame before response {early}",
        posted.len(),
        pace.per_s
    );
    if !closed.is_empty() {
        row.note += &format!(", {} sockets closed early ({})", closed.len(), closed[0]);
    }
    row.extra = json!({
        "members": size, "messages": posted.len(), "expected": expected, "missing": missing,
        "send_errors": send_errors, "frames_before_response": early, "open_seconds": open_s,
        "closed_early": closed.len(),
    });
    Ok(row)
}
