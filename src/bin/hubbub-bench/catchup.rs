//! `catchup`: a member misses N events (sent by other bots while it has no socket), then
//! reconnects with `since=` its last cursor → time until the last replayed frame, events/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::{self, Frame, Sent};
use crate::server::Server;
use crate::stats::Row;

/// Runs the scenario with `events` missed events, posted by `senders` bots.
pub fn run(
    server: &Server,
    prefix: &str,
    events: usize,
    senders: usize,
    threads: usize,
) -> Result<Row, String> {
    let base = server.base.clone();
    let (bots, room, since) = api::block(async {
        let bots = api::bots(&base, &format!("{prefix}k"), senders + 1, 32).await?;
        let ids: Vec<String> = bots[1..].iter().map(|b| b.id.clone()).collect();
        let room = api::create_room(&base, &bots[0], "catch-up", &ids).await?;
        // The reader's last cursor: the event of its own marker message.
        let c = api::client(None);
        match api::send(&c, &base, &bots[0].token, &room, "marker").await {
            Sent::Acked { event_id, .. } => Ok::<_, String>((bots, room, event_id)),
            Sent::Failed(s, why) => Err(format!("marker send: {s} {why}")),
        }
    })?;
    let bots = Arc::new(bots);
    let threads = threads.clamp(1, senders);
    let t_fill = Instant::now();
    let (b2, r2, base2) = (bots.clone(), room.clone(), base.clone());
    let filled = api::on_threads(threads, move |t| {
        let (bots, room, base) = (b2.clone(), r2.clone(), base2.clone());
        async move {
            let mut tasks = Vec::new();
            for s in (t..senders).step_by(threads) {
                let (bots, room, base) = (bots.clone(), room.clone(), base.clone());
                // Sender s posts the messages k ≡ s (mod senders).
                let count = (events + senders - 1 - s) / senders;
                tasks.push(actix_rt::spawn(async move {
                    let c = api::client(None);
                    let (mut max, mut failed) = (0i64, 0usize);
                    for k in 0..count {
                        match api::send(
                            &c,
                            &base,
                            &bots[s + 1].token,
                            &room,
                            &format!("missed {s}-{k}"),
                        )
                        .await
                        {
                            Sent::Acked { event_id, .. } => max = max.max(event_id),
                            Sent::Failed(..) => failed += 1,
                        }
                    }
                    (max, failed)
                }));
            }
            let mut out = (0i64, 0usize);
            for t in tasks {
                let (m, f) = t.await.unwrap_or((0, 1));
                out = (out.0.max(m), out.1 + f);
            }
            out
        }
    });
    let fill_s = t_fill.elapsed().as_secs_f64();
    let last = filled.iter().map(|f| f.0).max().unwrap_or(0);
    let failed: usize = filled.iter().map(|f| f.1).sum();
    let expected = events - failed;
    let ws_base = server.ws_base();
    let token = bots[0].token.clone();
    let (received, hello_s, total_s, ended) = api::block(async move {
        let c = api::client(None);
        let _ = c.get(format!("{base}/healthz")).send().await;
        let t0 = Instant::now();
        let mut s = api::connect(&c, &ws_base, &token, Some(since)).await?;
        let (mut received, mut hello_s, mut ended) = (0usize, 0.0, None);
        loop {
            let frame =
                actix_rt::time::timeout(Duration::from_secs(30), api::next_frame(&mut s)).await;
            match frame {
                Ok(Some(Frame::Hello)) => hello_s = t0.elapsed().as_secs_f64(),
                Ok(Some(Frame::Message(id, _))) => {
                    received += 1;
                    if id >= last {
                        break;
                    }
                }
                Ok(Some(Frame::Other(id))) if id >= last => break,
                Ok(Some(Frame::Other(_))) => {}
                Ok(Some(Frame::Closed(why))) => {
                    ended = Some(why);
                    break;
                }
                Ok(None) => {
                    ended = Some("stream ended".into());
                    break;
                }
                Err(_) => {
                    ended = Some("no frame for 30 s".into());
                    break;
                }
            }
        }
        Ok::<_, String>((received, hello_s, t0.elapsed().as_secs_f64(), ended))
    })?;
    let mut row = Row::new(format!("catchup {events}"));
    row.rate = Some(received as f64 / total_s);
    row.errors = (expected.saturating_sub(received) + failed) as u64;
    row.note = format!(
        "{received}/{expected} replayed in {:.1} ms (hello after {:.1} ms); filled in {fill_s:.1} s \
         by {senders} senders ({:.0} sends/s)",
        total_s * 1000.0,
        hello_s * 1000.0,
        events as f64 / fill_s
    );
    if let Some(why) = &ended {
        row.note += &format!(", stopped early: {why}");
    }
    row.extra = json!({
        "events": events, "expected": expected, "received": received, "seconds": total_s,
        "hello_seconds": hello_s, "fill_seconds": fill_s, "send_failures": failed, "ended": ended,
    });
    Ok(row)
}
