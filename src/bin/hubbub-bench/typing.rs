//! `typing`: what typists cost the send path. The `send` clients run as fast as they can, once
//! alone and once beside `--typers` members each saying `typing: true` in their rooms (of ten)
//! once per throttle window, so that every call appends a `typing.updated` through the same
//! group-commit writer. Reports both send rates, the typing calls' own latency, and the ratio.

use std::time::Duration;

use serde_json::json;

use crate::api::{self, Bot};
use crate::beside::{self, Actor, Background};
use crate::send::{Load, Op};
use crate::server::Server;
use crate::stats::Row;

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

/// One typer: `typing: true` in its room.
#[derive(Clone)]
struct Typer(Bot, String);

impl Actor for Typer {
    async fn call(&self, c: &awc::Client, base: &str) -> Result<(), String> {
        let Typer(bot, room) = self;
        let answer = c
            .post(format!("{base}/api/v1/rooms/{room}/typing"))
            .insert_header(("Authorization", format!("Bearer {}", bot.token)))
            .send_json(&json!({"typing": true}))
            .await;
        match answer {
            Ok(r) if r.status().as_u16() == 204 => Ok(()),
            Ok(r) => Err(r.status().as_u16().to_string()),
            Err(e) => Err(format!("0 {e}")),
        }
    }
}

/// Sends alone, then beside the typers; the rows and the ratio line.
pub fn run(server: &Server, op: &Op, typers: &Typers, load: Load) -> (Vec<Row>, String) {
    let background = Background {
        actors: typers
            .typers
            .iter()
            .map(|(bot, room)| Typer(bot.clone(), room.clone()))
            .collect(),
        period: PERIOD,
        lead: Duration::from_millis(500),
        noun: "typers",
        label: "typing",
        note: format!("one true per typer every {:.1} s", PERIOD.as_secs_f64()),
    };
    beside::run(server, op, &background, load)
}
