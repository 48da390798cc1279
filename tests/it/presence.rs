//! Presence (#19): a user is online while they hold a socket, SSE stream or long poll, offline a
//! grace period after the last one ends; `presence.updated` reaches friends and direct-room
//! partners only, at most once per flap window; `share_presence` hides it. The grace, the
//! window and the node timeout are shortened here. Runs on PostgreSQL when
//! HUBBUB_TEST_POSTGRES_URL is set; the two-node test needs PostgreSQL and Redis.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{Recv, Socket, TestApp, TestUser};

/// Presence on, with a 1 s grace and a 1.5 s flap window.
fn fast() -> Vec<(&'static str, &'static str)> {
    vec![
        ("HUBBUB_PRESENCE", "true"),
        ("HUBBUB_PRESENCE_GRACE_MS", "1000"),
        ("HUBBUB_PRESENCE_WINDOW_MS", "1500"),
        ("HUBBUB_PRESENCE_TICK_MS", "100"),
        ("HUBBUB_PRESENCE_NODE_TIMEOUT_MS", "1500"),
    ]
}

async fn spawn(envs: &[(&str, &str)]) -> TestApp {
    envs.iter()
        .fold(TestApp::builder(), |b, (k, v)| b.env(k, v))
        .spawn()
        .await
}

async fn befriend(app: &TestApp, a: &TestUser, b: &TestUser) {
    let request = a
        .post(app, "/api/v1/friends/requests", &json!({ "user_id": b.id }))
        .await
        .expect(201);
    let accept = format!(
        "/api/v1/friends/requests/{}/accept",
        request["id"].as_str().unwrap()
    );
    b.post(app, &accept, &json!({})).await.expect(200);
}

/// The next `presence.updated` on `ws` within `within` (other events are skipped).
async fn presence_within(ws: &mut Socket, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.recv(left).await {
            Recv::Frame(f) if f["event"] == "presence.updated" => return f,
            Recv::Frame(_) => continue,
            Recv::Closed(r) => panic!("socket closed while waiting for presence: {r:?}"),
            Recv::Timeout => panic!("no presence.updated within {within:?}"),
        }
    }
}

/// Asserts no `presence.updated` arrives on `ws` for `ms`.
async fn no_presence(ws: &mut Socket, ms: u64) {
    let deadline = Instant::now() + Duration::from_millis(ms);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.recv(left).await {
            Recv::Timeout => return,
            Recv::Frame(f) if f["event"] == "presence.updated" => panic!("unexpected {f}"),
            Recv::Frame(_) => continue,
            Recv::Closed(r) => panic!("socket closed: {r:?}"),
        }
    }
}

fn assert_presence(frame: &Value, user: &TestUser, online: bool) {
    assert_eq!(frame["event"], "presence.updated", "{frame}");
    assert_eq!(frame["room_id"], Value::Null, "{frame}");
    assert_eq!(frame["data"]["user_id"], user.id.as_str(), "{frame}");
    assert_eq!(frame["data"]["online"], online, "{frame}");
}

async fn profile(app: &TestApp, viewer: &TestUser, of: &TestUser) -> Value {
    viewer
        .get(app, &format!("/api/v1/users/{}", of.id))
        .await
        .expect(200)
}

#[actix_web::test]
async fn presence_reaches_friends_and_dm_partners_and_never_someone_sharing_only_a_group() {
    // Arrange: bob is alice's friend, carol shares a direct room with her, dave only a group;
    // erin shared a direct room with her too, but alice blocked her.
    let app = spawn(&fast()).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let erin = app.register("erin").await;
    befriend(&app, &alice, &bob).await;
    for partner in [&carol, &erin] {
        partner
            .post(&app, "/api/v1/dms", &json!({ "user_id": alice.id }))
            .await
            .expect(201);
    }
    alice
        .put(&app, &format!("/api/v1/blocks/{}", erin.id))
        .await
        .expect(204);
    alice.create_room(&app, "big", &[&bob, &carol, &dave]).await;
    let mut bob_ws = bob.socket(&app, None).await;
    let mut carol_ws = carol.socket(&app, None).await;
    let mut dave_ws = dave.socket(&app, None).await;
    let mut erin_ws = erin.socket(&app, None).await;
    // Their own sockets announced bob, carol and dave to each other's friends: let it settle.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Act: alice opens an SSE stream.
    let opened = Instant::now();
    let alice_sse = app.sse("", &[("Cookie", alice.cookie.as_str())]).await;

    // Assert: her friend and her DM partner hear it within a few seconds; dave doesn't.
    let frame = presence_within(&mut bob_ws, Duration::from_secs(3)).await;
    assert_presence(&frame, &alice, true);
    assert!(opened.elapsed() < Duration::from_secs(3));
    assert!(frame["data"]["last_seen_at"].is_string(), "{frame}");
    assert_presence(
        &presence_within(&mut carol_ws, Duration::from_secs(3)).await,
        &alice,
        true,
    );
    no_presence(&mut dave_ws, 500).await;
    no_presence(&mut erin_ws, 100).await;
    assert_eq!(profile(&app, &erin, &alice).await["online"], Value::Null);
    let seen = profile(&app, &bob, &alice).await;
    assert_eq!(seen["online"], true, "{seen}");
    assert_eq!(seen["username"], "alice");
    let hidden = profile(&app, &dave, &alice).await;
    assert_eq!(
        hidden["online"],
        Value::Null,
        "a stranger sees nothing: {hidden}"
    );
    assert_eq!(hidden["last_seen_at"], Value::Null);
    let friends = bob.get(&app, "/api/v1/friends").await.expect(200);
    assert_eq!(friends["friends"][0]["user"]["id"], alice.id.as_str());
    assert_eq!(friends["friends"][0]["online"], true, "{friends}");

    // Act: she closes it; the grace (1 s) passes.
    let closed = Instant::now();
    drop(alice_sse);

    // Assert: offline, with when she left, within the grace plus a few ticks.
    let frame = presence_within(&mut bob_ws, Duration::from_secs(5)).await;
    assert_presence(&frame, &alice, false);
    let after = closed.elapsed();
    assert!(
        after >= Duration::from_millis(900),
        "not before the grace: {after:?}"
    );
    assert!(frame["data"]["last_seen_at"].is_string(), "{frame}");
    assert_presence(
        &presence_within(&mut carol_ws, Duration::from_secs(3)).await,
        &alice,
        false,
    );
    no_presence(&mut dave_ws, 300).await;
    let seen = profile(&app, &bob, &alice).await;
    assert_eq!(seen["online"], false, "{seen}");
    assert_eq!(seen["last_seen_at"], frame["data"]["last_seen_at"]);
}

#[actix_web::test]
async fn long_polls_and_reconnects_inside_the_grace_keep_a_user_online_without_events() {
    // Arrange
    let app = spawn(&fast()).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    befriend(&app, &alice, &bob).await;
    let mut bob_ws = bob.socket(&app, None).await;
    // Bob's own `online` (to alice) is appended; count from after it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = app.count_events("presence.updated");

    // Act: alice long polls back to back (1 s each) for about 3 s, then reconnects a socket
    // ten times, each inside the grace of the one before.
    for _ in 0..3 {
        alice
            .get(&app, "/api/v1/events?timeout=1")
            .await
            .expect(200);
    }
    for _ in 0..10 {
        let ws = alice.socket(&app, None).await;
        drop(ws);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert: one `online`, then (after the last end and the grace) one `offline`: two events
    // for thirteen connections.
    assert_presence(
        &presence_within(&mut bob_ws, Duration::from_secs(3)).await,
        &alice,
        true,
    );
    assert_presence(
        &presence_within(&mut bob_ws, Duration::from_secs(5)).await,
        &alice,
        false,
    );
    no_presence(&mut bob_ws, 1500).await;
    assert_eq!(app.count_events("presence.updated") - before, 2);
}

#[actix_web::test]
async fn a_user_flapping_past_the_grace_costs_at_most_one_event_per_window() {
    // Arrange: a 200 ms grace and a 2 s window, so that every reconnect below is a change.
    let envs = [
        ("HUBBUB_PRESENCE", "true"),
        ("HUBBUB_PRESENCE_GRACE_MS", "200"),
        ("HUBBUB_PRESENCE_WINDOW_MS", "2000"),
        ("HUBBUB_PRESENCE_TICK_MS", "50"),
    ];
    let app = spawn(&envs).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    befriend(&app, &alice, &bob).await;
    let _bob_ws = bob.socket(&app, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = app.count_events("presence.updated");

    // Act: for about 6 s, alice connects, leaves, and stays away past the grace.
    let start = Instant::now();
    let mut connects = 0;
    while start.elapsed() < Duration::from_secs(6) {
        let ws = alice.socket(&app, None).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(ws);
        connects += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let elapsed = start.elapsed();
    // Let the last held change come out.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Assert: at most one event per 2 s window (plus the first), far fewer than connects, and
    // the last one says offline.
    let events = app.count_events("presence.updated") - before;
    let bound = 1 + (elapsed.as_millis() as i64 + 2500) / 2000 + 1;
    assert!(connects >= 8, "the loop reconnected {connects} times");
    assert!(
        events <= bound,
        "{events} events for {connects} connects in {elapsed:?}, bound {bound}"
    );
    assert!(events < connects, "{events} events for {connects} connects");
    let seen = profile(&app, &bob, &alice).await;
    assert_eq!(seen["online"], false, "the state at the end: {seen}");
}

#[actix_web::test]
async fn turning_share_presence_off_announces_offline_at_once_and_hides_it() {
    // Arrange: a 3 s window, so that only the setting can explain a quick second event.
    let envs = [
        ("HUBBUB_PRESENCE", "true"),
        ("HUBBUB_PRESENCE_GRACE_MS", "1000"),
        ("HUBBUB_PRESENCE_WINDOW_MS", "3000"),
        ("HUBBUB_PRESENCE_TICK_MS", "100"),
    ];
    let app = spawn(&envs).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    befriend(&app, &alice, &bob).await;
    let mut bob_ws = bob.socket(&app, None).await;
    let _alice_ws = alice.socket(&app, None).await;
    assert_presence(
        &presence_within(&mut bob_ws, Duration::from_secs(3)).await,
        &alice,
        true,
    );
    let me = alice.get(&app, "/api/v1/me").await.expect(200);
    assert_eq!(me["share_presence"], true, "on by default: {me}");

    // Act
    let off = Instant::now();
    alice
        .patch(&app, "/api/v1/me", &json!({ "share_presence": false }))
        .await
        .expect(200);

    // Assert: offline and never seen, at once (inside the window), though still connected.
    let frame = presence_within(&mut bob_ws, Duration::from_secs(1)).await;
    assert_presence(&frame, &alice, false);
    assert_eq!(frame["data"]["last_seen_at"], Value::Null, "{frame}");
    let seen = profile(&app, &bob, &alice).await;
    assert_eq!(seen["online"], false, "{seen}");
    assert_eq!(seen["last_seen_at"], Value::Null);
    let me = alice.get(&app, "/api/v1/me").await.expect(200);
    assert_eq!(me["share_presence"], false);
    let bad = alice
        .patch(&app, "/api/v1/me", &json!({ "share_presence": "no" }))
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);

    // Turned back on (and off and on again) while connected: online again once, when the
    // window since the last event ends; toggling costs no more than that.
    for share in [true, false, true] {
        alice
            .patch(&app, "/api/v1/me", &json!({ "share_presence": share }))
            .await
            .expect(200);
    }
    let frame = presence_within(&mut bob_ws, Duration::from_secs(5)).await;
    assert_presence(&frame, &alice, true);
    let waited = off.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "held for the window: {waited:?}"
    );
    no_presence(&mut bob_ws, 500).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set HUBBUB_TEST_POSTGRES_URL and HUBBUB_TEST_REDIS_URL"]
async fn presence_holds_across_two_nodes_and_a_dead_node_s_users_go_offline() {
    // Arrange: a 500 ms grace, a 500 ms window, nodes taken for dead after 1.5 s.
    let envs = [
        ("HUBBUB_PRESENCE", "true"),
        ("HUBBUB_PRESENCE_GRACE_MS", "500"),
        ("HUBBUB_PRESENCE_WINDOW_MS", "500"),
        ("HUBBUB_PRESENCE_TICK_MS", "100"),
        ("HUBBUB_PRESENCE_NODE_TIMEOUT_MS", "1500"),
    ];
    let (a, mut b) = crate::cluster::two_nodes(None, &envs).await;
    let alice = a.register("alice").await;
    let bob = a.register("bob").await;
    let dave = a.register("dave").await;
    befriend(&a, &alice, &bob).await;
    alice.create_room(&a, "big", &[&bob, &dave]).await;
    let mut bob_ws = bob.socket(&a, None).await;
    let mut dave_ws = dave.socket(&a, None).await;

    // Act: alice holds a socket on each node; then closes the one on a.
    let on_a = alice.socket(&a, None).await;
    let _on_b = alice.socket(&b, None).await;
    assert_presence(
        &presence_within(&mut bob_ws, Duration::from_secs(3)).await,
        &alice,
        true,
    );
    drop(on_a);

    // Assert: still online (her socket on b counts), well past the grace; the stranger heard
    // nothing; both nodes answer the same.
    no_presence(&mut bob_ws, 2000).await;
    no_presence(&mut dave_ws, 100).await;
    assert_eq!(profile(&a, &bob, &alice).await["online"], true);
    assert_eq!(profile(&b, &bob, &alice).await["online"], true);

    // Act: node b dies without a word.
    let killed = Instant::now();
    b.kill9();

    // Assert: offline within the node timeout plus a few ticks (and the grace).
    let frame = presence_within(&mut bob_ws, Duration::from_secs(6)).await;
    assert_presence(&frame, &alice, false);
    let took = killed.elapsed();
    eprintln!("presence: offline {took:?} after the node died (timeout 1.5 s, tick 100 ms)");
    assert!(
        took < Duration::from_millis(1500 + 500 + 1500),
        "offline {took:?} after the node died"
    );
    assert_eq!(profile(&a, &bob, &alice).await["online"], false);
    no_presence(&mut dave_ws, 100).await;
}
