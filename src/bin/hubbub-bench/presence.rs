//! `presence`: what presence costs the send path. The `send` clients run as fast as they can,
//! once alone and once beside `--flappers` users (in direct rooms of two, so each has someone
//! to tell) who each open a long poll (`timeout=0`) every 3.1 s: with the server's grace and
//! flap window set below that (`--env HUBBUB_PRESENCE_GRACE_MS=1000 --env
//! HUBBUB_PRESENCE_WINDOW_MS=3000`), every flapper comes online and goes offline again each
//! window, the most presence can cost: a row insert and delete and a `presence.updated` per
//! user per window, through the same group-commit writer. Run it once more with
//! `--env HUBBUB_PRESENCE=false` to tell the long polls' own cost from presence's.

use std::time::Duration;

use serde_json::json;

use crate::api::{self, Bot};
use crate::beside::{self, Actor, Background};
use crate::send::{Load, Op};
use crate::server::Server;
use crate::stats::Row;

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

/// One flapper: a long poll that answers at once (`timeout=0`).
#[derive(Clone)]
struct Flapper(Bot);

impl Actor for Flapper {
    async fn call(&self, c: &awc::Client, base: &str) -> Result<(), String> {
        let answer = c
            .get(format!("{base}/api/v1/events?timeout=0"))
            .insert_header(("Authorization", format!("Bearer {}", self.0.token)))
            .send()
            .await;
        match answer {
            Ok(mut r) if r.status().as_u16() == 200 => {
                let _ = r.body().limit(1 << 20).await;
                Ok(())
            }
            Ok(r) => Err(r.status().as_u16().to_string()),
            Err(e) => Err(format!("0 {e}")),
        }
    }
}

/// Sends alone, then beside the flappers; the rows and the ratio line. The flappers start a
/// full period ahead, so that all of them are flapping when the sends start.
pub fn run(server: &Server, op: &Op, flappers: &Flappers, load: Load) -> (Vec<Row>, String) {
    let background = Background {
        actors: flappers.bots.iter().cloned().map(Flapper).collect(),
        period: PERIOD,
        lead: PERIOD,
        noun: "flappers",
        label: "presence",
        note: format!("one long poll per user every {:.1} s", PERIOD.as_secs_f64()),
    };
    beside::run(server, op, &background, load)
}
