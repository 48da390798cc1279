//! Hostile clients: each attack that once exhausted a node (a frame that never ends, image
//! bombs, argon2 floods, tokens and sockets without limit, abandoned long polls) is refused
//! or absorbed, the server's memory stays under a stated bound (read from /proc of the server
//! under test), and an honest client's send still answers 201 in time.

mod images;
mod passwords;
mod streams;
mod writes;

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{TestApp, TestUser};

/// KiB in a MiB (`/proc` reports KiB).
const MIB: u64 = 1024;

/// How long an honest send may take while an attack runs (a debug build on two shared cores).
const HONEST_SEND: Duration = Duration::from_secs(3);

/// An honest user in a room of their own, to send through an attack.
pub struct Honest {
    user: TestUser,
    room: String,
}

impl Honest {
    pub async fn join(app: &TestApp) -> Honest {
        let user = app.register("honest").await;
        let room = user.create_room(app, "quiet", &[]).await;
        Honest {
            room: room["id"].as_str().expect("room id").to_owned(),
            user,
        }
    }

    /// Sends a keyed message; asserts 201 within [`HONEST_SEND`].
    pub async fn sends(&self, app: &TestApp, body: &str) {
        let started = Instant::now();
        let key = uuid::Uuid::new_v4().to_string();
        let resp = self
            .user
            .post_with(
                app,
                &format!("/api/v1/rooms/{}/messages", self.room),
                &json!({ "body": body }),
                &[("Idempotency-Key", &key)],
            )
            .await;
        let took = started.elapsed();
        resp.expect(201);
        assert!(
            took < HONEST_SEND,
            "an honest send took {took:?} during the attack"
        );
    }

    /// Every message this user was told was stored is in the room's history.
    pub async fn history_has(&self, app: &TestApp, bodies: &[&str]) {
        let page = self.user.history(app, &self.room, "limit=100").await;
        let stored: Vec<&str> = page["messages"]
            .as_array()
            .expect("history messages")
            .iter()
            .filter_map(|m| m["body"].as_str())
            .collect();
        for body in bodies {
            assert!(stored.contains(body), "{body:?} is in the history");
        }
    }
}
