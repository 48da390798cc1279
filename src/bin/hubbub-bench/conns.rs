//! `connections`: K idle sockets, spread over source addresses 127.0.0.2, .3, … (one per
//! `per_ip` sockets, so the client never runs out of ephemeral ports). Measures the time to
//! open them and the server's RSS before and after: memory per idle socket.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::watch;

use crate::api::{self, Bot, Frame};
use crate::server::Server;
use crate::stats::Row;

/// How many sockets, and how.
#[derive(Clone, Copy)]
pub struct Plan {
    pub sockets: usize,
    /// The server's cap on one user's sockets: the sockets are spread over as many bots as
    /// that takes (at least 10), as many users' sockets would be.
    pub per_user: usize,
    pub per_ip: usize,
    pub threads: usize,
    pub hold: Duration,
}

fn source(i: usize, per_ip: usize) -> IpAddr {
    let n = 2 + i / per_ip.max(1);
    IpAddr::V4(Ipv4Addr::new(127, 0, (n / 250) as u8, (n % 250) as u8))
}

struct Opened {
    count: usize,
    failures: usize,
    first_error: Option<String>,
}

async fn hold(
    ws_base: String,
    bots: Vec<Bot>,
    indexes: Vec<usize>,
    plan: Plan,
    ready: mpsc::Sender<Opened>,
    stop: watch::Receiver<bool>,
) -> Vec<String> {
    let mut clients: HashMap<IpAddr, awc::Client> = HashMap::new();
    let jobs: Vec<_> = indexes
        .into_iter()
        .map(|i| {
            let ip = source(i, plan.per_ip);
            let c = clients
                .entry(ip)
                .or_insert_with(|| api::client(Some(ip)))
                .clone();
            (c, bots[i % bots.len()].token.clone())
        })
        .collect();
    let ws = &ws_base;
    let opened: Vec<Result<_, String>> = futures_util::stream::iter(jobs)
        .map(|(c, token)| async move {
            let mut s = api::connect(&c, ws, &token, None).await?;
            match api::next_frame(&mut s).await {
                Some(Frame::Hello) => Ok(s),
                _ => Err("no hello frame".to_string()),
            }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    let (mut sockets, mut failures, mut first_error) = (Vec::new(), 0, None);
    for o in opened {
        match o {
            Ok(s) => sockets.push(s),
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let _ = ready.send(Opened {
        count: sockets.len(),
        failures,
        first_error,
    });
    // Each idle socket answers the server's pings until told to stop.
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut s| {
            let mut stop = stop.clone();
            actix_rt::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => return None,
                        frame = api::next_frame(&mut s) => match frame {
                            Some(Frame::Closed(why)) => return Some(why),
                            None => return Some("stream ended".to_string()),
                            Some(_) => {}
                        },
                    }
                }
            })
        })
        .collect();
    let mut closed = Vec::new();
    for t in tasks {
        if let Ok(Some(why)) = t.await {
            closed.push(why);
        }
    }
    closed
}

/// Opens the sockets, measures, holds them for `plan.hold`, closes them.
pub fn run(server: &Server, prefix: &str, plan: Plan) -> Result<Row, String> {
    let base = server.base.clone();
    let users = plan.sockets.div_ceil(plan.per_user.max(1)).max(10);
    let bots = api::block(api::bots(&base, &format!("{prefix}c"), users, 10))?;
    std::thread::sleep(Duration::from_secs(1));
    let rss0 = server.rss_kib();
    let threads = plan.threads.max(1);
    let (stop_tx, stop) = watch::channel(false);
    let (ready_tx, ready_rx) = mpsc::channel();
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let idx: Vec<usize> = (t..plan.sockets).step_by(threads).collect();
            let (ws, bots, ready, stop) = (
                server.ws_base(),
                bots.clone(),
                ready_tx.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(hold(ws, bots, idx, plan, ready, stop))
            })
        })
        .collect();
    let (mut open, mut failed, mut first_error) = (0, 0, None);
    for _ in 0..threads {
        let o = ready_rx.recv().map_err(|_| "a socket thread died")?;
        open += o.count;
        failed += o.failures;
        if first_error.is_none() {
            first_error = o.first_error;
        }
    }
    let open_s = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let rss1 = server.rss_kib();
    std::thread::sleep(plan.hold);
    let rss2 = server.rss_kib();
    let _ = stop_tx.send(true);
    let mut closed = Vec::new();
    for h in handles {
        closed.extend(h.join().map_err(|_| "a socket thread panicked")?);
    }
    // The higher of the two readings: right after opening, and after the hold (by then every
    // socket has answered a heartbeat, which is when a socket's read path has run).
    let per_socket = match (rss0, rss1.max(rss2)) {
        (Some(a), Some(b)) if open > 0 => Some((b.saturating_sub(a) * 1024) as f64 / open as f64),
        _ => None,
    };
    let mut row = Row::new(format!("connections {}", plan.sockets));
    row.rate = Some(open as f64 / open_s);
    row.errors = (failed + closed.len()) as u64;
    row.note = format!(
        "{open} open in {open_s:.1} s, server RSS {} -> {} KiB ({} after {:.0} s), {} per idle socket",
        rss0.map_or("?".into(), |v| v.to_string()),
        rss1.map_or("?".into(), |v| v.to_string()),
        rss2.map_or("?".into(), |v| v.to_string()),
        plan.hold.as_secs_f64(),
        per_socket.map_or("?".into(), |b| format!("{:.1} KB", b / 1000.0)),
    );
    if let Some(e) = &first_error {
        row.note += &format!(", {failed} failed (first: {e})");
    }
    if let Some(why) = closed.first() {
        row.note += &format!(", {} closed while idle ({why})", closed.len());
    }
    row.extra = json!({
        "sockets": plan.sockets, "opened": open, "failed": failed, "open_seconds": open_s,
        "rss_before_kib": rss0, "rss_after_kib": rss1, "rss_held_kib": rss2,
        "bytes_per_socket": per_socket, "closed_while_idle": closed.len(), "first_error": first_error,
    });
    Ok(row)
}
