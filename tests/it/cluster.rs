//! Several nodes on one PostgreSQL database and one Redis: the doorbell, revocation, failover.
//!
//! These need PostgreSQL and Redis, so they are `#[ignore]`d in the default run (which reports
//! them as ignored, not passed). `.ci/run` runs them with `--include-ignored` when both services
//! answer; run that way without `HUBBUB_TEST_POSTGRES_URL` and `HUBBUB_TEST_REDIS_URL`, they fail.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::harness::{
    cursor_key, ids, Bearer, PrivateRedis, Recv, SharedDb, Socket, TestApp, TestUser,
};

/// Why every test here is ignored by default.
const NEEDS: &str =
    "needs PostgreSQL and Redis: set HUBBUB_TEST_POSTGRES_URL and HUBBUB_TEST_REDIS_URL";

/// The test Redis's URL; a test that was asked to run without it fails rather than pass untested.
fn test_redis() -> String {
    match std::env::var("HUBBUB_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("{NEEDS}"),
    }
}

/// Two nodes started at the same time on one fresh database and `redis` (default: the test
/// Redis), both with `envs`.
pub(crate) async fn two_nodes(redis: Option<&str>, envs: &[(&str, &str)]) -> (TestApp, TestApp) {
    let test_redis = test_redis();
    let db = SharedDb::create().unwrap_or_else(|| panic!("{NEEDS}"));
    let redis = redis.unwrap_or(&test_redis);
    let node = || {
        let builder = TestApp::builder()
            .shared_db(&db)
            .env("HUBBUB_REDIS_URL", redis);
        envs.iter().fold(builder, |b, (k, v)| b.env(k, v)).create()
    };
    let (mut a, mut b) = (node(), node());
    futures_util::join!(a.start(), b.start()); // migrations must take turns
    for app in [&a, &b] {
        let ready = app.wait_doorbell("up", Duration::from_secs(10)).await;
        assert_eq!(ready["doorbell"], "up", "{ready}");
    }
    (a, b)
}

/// The next event frame, which must arrive within `within`.
async fn event_within(ws: &mut Socket, within: Duration) -> Value {
    match ws.recv(within).await {
        Recv::Frame(f) if f["type"] == "event" => f,
        Recv::Frame(f) => panic!("expected an event, got {f}"),
        Recv::Closed(r) => panic!("socket closed while waiting for an event: {r:?}"),
        Recv::Timeout => panic!("no event within {within:?}"),
    }
}

fn event_ids(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["id"].as_str().expect("frame id").to_owned())
        .collect()
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set HUBBUB_TEST_POSTGRES_URL and HUBBUB_TEST_REDIS_URL"]
async fn a_message_sent_on_node_a_reaches_a_socket_on_node_b_through_the_doorbell() {
    // Arrange: the slow poll can't explain a fast delivery; only the Redis doorbell can.
    let slow = [("HUBBUB_POLL_INTERVAL_MS", "60000")];
    let (a, b) = two_nodes(None, &slow).await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let room = alice.create_room(&a, "bridge", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut ws = bob.socket(&b, room["event_id"].as_str()).await;

    for i in 0..5 {
        // Act
        let sent = alice
            .send_message(&a, room_id, &format!("over the bridge {i}"))
            .await;
        let acked = Instant::now();

        // Assert: in order, exactly once, within a second of the ack.
        let frame = event_within(&mut ws, Duration::from_secs(1)).await;
        assert_eq!(frame["id"], sent["event_id"], "message {i}");
        assert_eq!(frame["data"], sent["message"]);
        assert!(
            acked.elapsed() < Duration::from_secs(1),
            "{:?}",
            acked.elapsed()
        );
    }
    ws.expect_silence(300).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set HUBBUB_TEST_POSTGRES_URL and HUBBUB_TEST_REDIS_URL"]
async fn a_message_sent_on_node_a_reaches_an_sse_stream_on_node_b_and_logout_there_closes_it() {
    // Arrange: the slow poll can't explain a fast delivery; only the Redis doorbell can.
    let slow = [("HUBBUB_POLL_INTERVAL_MS", "60000")];
    let (a, b) = two_nodes(None, &slow).await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let room = alice.create_room(&a, "bridge", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut sse = b
        .sse(
            &format!("since={}", room["event_id"].as_str().unwrap()),
            &[("Cookie", &bob.cookie)],
        )
        .await;

    // Act
    let sent = alice.send_message(&a, room_id, "over the bridge").await;
    let acked = Instant::now();
    let event = sse.next_event().await;
    let took = acked.elapsed();
    send_delete(&a, &bob, "/api/v1/sessions/current").await;
    let close = sse.expect_close(Duration::from_secs(2)).await;

    // Assert
    assert_eq!(event.id.as_deref(), sent["event_id"].as_str());
    assert_eq!(event.json["data"], sent["message"]);
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(close["code"], 4100, "{close}");
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set HUBBUB_TEST_POSTGRES_URL and HUBBUB_TEST_REDIS_URL"]
async fn senders_on_both_nodes_are_seen_by_listeners_on_both_once_in_the_same_order() {
    // Arrange
    let (a, b) = two_nodes(None, &[]).await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let mut senders: Vec<(TestUser, &TestApp)> = Vec::new();
    for n in 0..4 {
        let node = if n % 2 == 0 { &a } else { &b };
        senders.push((node.register(&format!("sender{n}")).await, node));
    }
    let mut members: Vec<&TestUser> = senders.iter().map(|(u, _)| u).collect();
    members.push(&bob);
    let room = alice.create_room(&a, "busy", &members).await;
    let (room_id, since) = (room["id"].as_str().unwrap(), room["event_id"].as_str());
    let mut on_a = alice.socket(&a, since).await;
    let mut on_b = bob.socket(&b, since).await;

    // Act: 4 senders × 50 messages, two lanes on each node.
    let lanes = senders
        .iter()
        .enumerate()
        .map(|(n, (user, node))| async move {
            let mut sent = Vec::new();
            for i in 0..50 {
                let body = format!("s{n}-{i:02}");
                sent.push(user.send_message(node, room_id, &body).await["event_id"].clone());
            }
            sent
        });
    let per_sender: Vec<Vec<Value>> = join_all(lanes).await;

    // Assert
    let seen_a = event_ids(&on_a.events(200).await);
    let seen_b = event_ids(&on_b.events(200).await);
    assert_eq!(seen_a, seen_b, "both nodes deliver the same sequence");
    let mut all: Vec<String> = per_sender
        .iter()
        .flatten()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    all.sort_by(|x, y| cursor_key(x).cmp(&cursor_key(y)));
    assert_eq!(
        seen_a, all,
        "every acknowledged message once, in commit order"
    );
    for lane in &per_sender {
        let pos: Vec<usize> = lane
            .iter()
            .map(|id| seen_a.iter().position(|s| id == s.as_str()).unwrap())
            .collect();
        assert!(
            pos.windows(2).all(|w| w[0] < w[1]),
            "a sender's order is kept"
        );
    }
    on_a.expect_silence(300).await;
    on_b.expect_silence(300).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set HUBBUB_TEST_POSTGRES_URL and HUBBUB_TEST_REDIS_URL"]
async fn an_idempotent_retry_on_the_other_node_returns_the_original_message() {
    // Arrange
    let (a, b) = two_nodes(None, &[]).await;
    let alice = a.register("alice").await;
    let room = alice.create_room(&a, "once", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let path = format!("/api/v1/rooms/{room_id}/messages");
    let body = json!({ "body": "exactly once" });
    let key = ("Idempotency-Key", "retry-1");
    let twin = [("Idempotency-Key", "twin-1")];

    // Act
    let first = alice.post_with(&a, &path, &body, &[key]).await;
    let retry = alice.post_with(&b, &path, &body, &[key]).await;
    let reused = alice
        .post_with(&b, &path, &json!({ "body": "other" }), &[key])
        .await;
    let (twin_a, twin_b) = futures_util::join!(
        alice.post_with(&a, &path, &body, &twin),
        alice.post_with(&b, &path, &body, &twin)
    );

    // Assert
    let first = first.expect(201);
    assert_eq!(retry.status, 201);
    assert_eq!(retry.body, first, "the retry returns the original response");
    reused.expect_error(409, "idempotency_key_reused");
    assert_eq!(twin_a.status, 201, "{}", twin_a.body);
    assert_eq!(twin_b.status, 201, "{}", twin_b.body);
    assert_eq!(
        twin_a.body, twin_b.body,
        "simultaneous retries on two nodes: one message"
    );
    let history = alice.history(&b, room_id, "limit=10").await;
    let want = [&first["message"]["id"], &twin_a.body["message"]["id"]];
    assert_eq!(ids(&history), want.map(|id| id.as_str().unwrap()));
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set HUBBUB_TEST_POSTGRES_URL and HUBBUB_TEST_REDIS_URL"]
async fn logout_or_token_deletion_on_node_a_closes_the_socket_on_node_b() {
    // Arrange
    let slow = [("HUBBUB_POLL_INTERVAL_MS", "60000")];
    let (a, b) = two_nodes(None, &slow).await;
    let alice = a.register("alice").await;
    let token = Bearer::create_token(&a, &alice, json!(["read", "send"])).await;
    let mut cookie_ws = alice.socket(&b, None).await;
    let mut token_ws = token.socket(&b, None).await;

    // Act
    let started = Instant::now();
    send_delete(&a, &alice, &token.token_path()).await;
    let (token_code, _) = token_ws.expect_close(Duration::from_secs(2)).await;
    let token_took = started.elapsed();
    let started = Instant::now();
    send_delete(&a, &alice, "/api/v1/sessions/current").await;
    let (cookie_code, _) = cookie_ws.expect_close(Duration::from_secs(2)).await;
    let cookie_took = started.elapsed();

    // Assert
    assert_eq!(token_code, 4100);
    assert!(token_took < Duration::from_millis(1500), "{token_took:?}");
    assert_eq!(cookie_code, 4100);
    assert!(cookie_took < Duration::from_millis(1500), "{cookie_took:?}");
    alice
        .get(&b, "/api/v1/me")
        .await
        .expect_error(401, "unauthenticated");
    token
        .get(&b, "/api/v1/me")
        .await
        .expect_error(401, "invalid_token");
}

async fn send_delete(app: &TestApp, user: &TestUser, path: &str) {
    user.delete(app, path).await.expect(204);
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set HUBBUB_TEST_POSTGRES_URL and HUBBUB_TEST_REDIS_URL"]
async fn a_node_whose_redis_goes_away_still_delivers_by_polling_and_says_so() {
    // Arrange
    test_redis();
    let mut redis = PrivateRedis::start();
    let fast = [("HUBBUB_POLL_INTERVAL_MS", "300")];
    let (a, b) = two_nodes(Some(&redis.url()), &fast).await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let room = alice.create_room(&a, "weather", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut ws = bob.socket(&b, room["event_id"].as_str()).await;
    let before = alice.send_message(&a, room_id, "sunny").await;
    assert_eq!(
        event_within(&mut ws, Duration::from_secs(1)).await["id"],
        before["event_id"]
    );

    // Act
    redis.stop();
    let ready_b = b.wait_doorbell("down", Duration::from_secs(5)).await;
    let during = alice.send_message(&a, room_id, "stormy").await;

    // Assert
    assert_eq!(ready_b["status"], "ready", "{ready_b}");
    assert_eq!(ready_b["doorbell"], "down", "{ready_b}");
    let frame = event_within(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(frame["id"], during["event_id"], "delivered by polling");
    let ready_a = a.wait_doorbell("down", Duration::from_secs(5)).await;
    assert_eq!(ready_a["doorbell"], "down", "{ready_a}");

    // Act: Redis comes back on the same port.
    let _redis = PrivateRedis::start_on(redis.port);

    // Assert: both nodes reconnect by themselves.
    for node in [&a, &b] {
        let ready = node.wait_doorbell("up", Duration::from_secs(10)).await;
        assert_eq!(ready["doorbell"], "up", "{ready}");
    }
    let after = alice.send_message(&a, room_id, "clear").await;
    assert_eq!(
        event_within(&mut ws, Duration::from_secs(2)).await["id"],
        after["event_id"]
    );
    ws.expect_silence(300).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set HUBBUB_TEST_POSTGRES_URL and HUBBUB_TEST_REDIS_URL"]
async fn a_client_of_a_killed_node_resumes_on_the_other_with_since_and_misses_nothing() {
    // Arrange
    let (mut a, b) = two_nodes(None, &[]).await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let room = bob.create_room(&b, "failover", &[&alice]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut ws = alice.socket(&a, room["event_id"].as_str()).await;
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(bob.send_message(&b, room_id, &format!("m{i}")).await);
    }
    let mut seen = ws.events(5).await;
    for i in 5..10 {
        sent.push(bob.send_message(&b, room_id, &format!("m{i}")).await);
    }

    // Act: node A dies mid-stream; more is sent while alice is away.
    a.kill9();
    let (frames, _) = ws.read_until_close(Duration::from_secs(5)).await;
    seen.extend(frames);
    for i in 10..15 {
        sent.push(bob.send_message(&b, room_id, &format!("m{i}")).await);
    }
    let since = seen.last().unwrap()["id"].as_str().unwrap().to_owned();
    let mut resumed = alice.socket(&b, Some(&since)).await;
    let rest = resumed.events(15 - seen.len()).await;
    seen.extend(rest);

    // Assert
    let want: Vec<String> = sent
        .iter()
        .map(|s| s["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(event_ids(&seen), want, "nothing missed, nothing repeated");
    resumed.expect_silence(300).await;
}
