//! The WebSocket stream: frame shapes, ordering under concurrency, resume with `since`, and close codes.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;

use crate::harness::{cursor_key, Recv, TestApp, TestUser};

fn assert_strictly_increasing(frames: &[Value]) {
    for pair in frames.windows(2) {
        let (a, b) = (
            pair[0]["id"].as_str().unwrap(),
            pair[1]["id"].as_str().unwrap(),
        );
        assert!(
            cursor_key(a) < cursor_key(b),
            "ids not strictly increasing: {a} then {b}"
        );
    }
}

fn frame_ids(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["id"].as_str().expect("frame id").to_owned())
        .collect()
}

#[actix_web::test]
async fn hello_is_the_first_frame_with_cursor_user_and_heartbeat() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_HEARTBEAT_SECS", "7")
        .spawn()
        .await;
    let alice = app.register("alice").await;

    // Act
    let mut ws = alice.socket(&app, None).await;

    // Assert
    let hello = &ws.hello;
    assert!(
        hello["cursor"].as_str().is_some_and(|c| !c.is_empty()),
        "{hello}"
    );
    assert_eq!(hello["user_id"], alice.id.as_str());
    assert_eq!(hello["heartbeat_s"], 7);
    ws.expect_silence(300).await;
}

#[actix_web::test]
async fn a_client_answering_heartbeats_stays_connected() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_HEARTBEAT_SECS", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let mut ws = alice.socket(&app, room["event_id"].as_str()).await;

    // Act: several heartbeat intervals pass; the harness answers pings.
    ws.expect_silence(2800).await;
    let sent = alice
        .send_message(&app, room["id"].as_str().unwrap(), "still there?")
        .await;

    // Assert
    assert_eq!(ws.next_event().await["id"], sent["event_id"]);
}

#[actix_web::test]
async fn a_message_event_frame_carries_the_write_response() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut ws = alice.socket(&app, room["event_id"].as_str()).await;

    // Act
    let sent = alice.send_message(&app, room_id, "hello").await;

    // Assert
    let frame = ws.next_event().await;
    assert_eq!(frame["id"], sent["event_id"]);
    assert_eq!(frame["event"], "message.created");
    assert_eq!(frame["room_id"], room_id);
    assert!(chrono::DateTime::parse_from_rfc3339(frame["created_at"].as_str().unwrap()).is_ok());
    assert_eq!(frame["data"], sent["message"]);
    let room_event = room["event_id"].as_str().unwrap();
    assert!(cursor_key(room_event) < cursor_key(frame["id"].as_str().unwrap()));
    ws.expect_silence(300).await;
}

#[actix_web::test]
async fn a_socket_opened_after_an_ack_starts_after_that_event() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();

    for i in 0..20 {
        // Act: connect without `since` right after a 201.
        let sent = alice
            .send_message(&app, room_id, &format!("before {i}"))
            .await;
        let mut ws = alice.socket(&app, None).await;

        // Assert: hello is the current position, so the acknowledged event is not "live".
        let (hello, acked) = (
            ws.hello["cursor"].as_str().unwrap(),
            sent["event_id"].as_str().unwrap(),
        );
        assert!(
            cursor_key(hello) >= cursor_key(acked),
            "round {i}: hello cursor {hello} < acked event {acked}"
        );
        ws.expect_silence(if i == 19 { 300 } else { 20 }).await;
    }
}

#[actix_web::test]
async fn concurrent_senders_are_delivered_once_in_order_and_replayed_identically() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let mut senders: Vec<TestUser> = Vec::new();
    for n in 0..8 {
        senders.push(app.register(&format!("sender{n}")).await);
    }
    let refs: Vec<&TestUser> = senders.iter().collect();
    let room = alice.create_room(&app, "busy", &refs).await;
    let room_id = room["id"].as_str().unwrap();
    let mut ws = alice.socket(&app, room["event_id"].as_str()).await;
    let start = ws.hello["cursor"].as_str().unwrap().to_owned();

    // Act
    let lanes = senders.iter().enumerate().map(|(n, user)| {
        let app = &app;
        async move {
            let mut sent = Vec::new();
            for i in 0..25 {
                sent.push(
                    user.send_message(app, room_id, &format!("s{n}-{i:02}"))
                        .await,
                );
            }
            sent
        }
    });
    let responses: Vec<Value> = join_all(lanes).await.into_iter().flatten().collect();
    let frames = ws.events(200).await;

    // Assert
    ws.expect_silence(500).await;
    assert!(frames.iter().all(|f| f["event"] == "message.created"));
    assert_strictly_increasing(&frames);
    let mut got = frame_ids(&frames);
    let mut want: Vec<String> = responses
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "frame ids == event_ids of the 201s");
    for n in 0..8 {
        let mine: Vec<&str> = frames
            .iter()
            .filter_map(|f| f["data"]["body"].as_str())
            .filter(|b| b.starts_with(&format!("s{n}-")))
            .collect();
        let expected: Vec<String> = (0..25).map(|i| format!("s{n}-{i:02}")).collect();
        assert_eq!(mine, expected, "sender {n}'s messages in send order");
    }
    let mut replay_ws = alice.socket(&app, Some(&start)).await;
    assert_eq!(replay_ws.hello["cursor"], start.as_str());
    let replayed = replay_ws.events(200).await;
    assert_eq!(replayed, frames, "replay equals what was delivered live");
    replay_ws.expect_silence(500).await;
}

#[actix_web::test]
async fn reconnecting_with_since_delivers_exactly_the_missed_messages_then_live() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut ws = alice.socket(&app, room["event_id"].as_str()).await;
    for i in 0..5 {
        alice
            .send_message(&app, room_id, &format!("seen {i}"))
            .await;
    }
    let seen = ws.events(5).await;
    let cursor = seen[4]["id"].as_str().unwrap().to_owned();
    drop(ws);
    let mut missed = Vec::new();
    for i in 0..20 {
        missed.push(
            alice
                .send_message(&app, room_id, &format!("missed {i}"))
                .await,
        );
    }

    // Act
    let mut ws = alice.socket(&app, Some(&cursor)).await;
    let replayed = ws.events(20).await;
    let live = alice.send_message(&app, room_id, "live").await;
    let live_frame = ws.next_event().await;

    // Assert
    assert_eq!(ws.hello["cursor"], cursor.as_str());
    let want: Vec<&Value> = missed.iter().map(|m| &m["event_id"]).collect();
    let got: Vec<&Value> = replayed.iter().map(|f| &f["id"]).collect();
    assert_eq!(got, want, "exactly the 20 missed, in order");
    for (frame, sent) in replayed.iter().zip(&missed) {
        assert_eq!(frame["data"], sent["message"]);
    }
    assert_eq!(live_frame["id"], live["event_id"]);
    ws.expect_silence(300).await;
}

#[actix_web::test]
async fn a_client_data_frame_closes_the_socket_with_1008() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let mut ws = alice.socket(&app, None).await;

    // Act
    ws.send_text("{\"type\":\"subscribe\"}").await;

    // Assert
    let (code, reason) = ws.expect_close(Duration::from_secs(3)).await;
    assert_eq!(code, 1008);
    assert!(!reason.is_empty(), "1008 comes with a reason");
}

#[actix_web::test]
async fn logout_closes_that_sessions_sockets_with_4100_and_keeps_the_others() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let mut other = alice.clone();
    other.cookie = app
        .login("alice", &alice.password)
        .await
        .session_cookie()
        .unwrap();
    let mut ws = alice.socket(&app, room["event_id"].as_str()).await;
    let mut other_ws = other.socket(&app, room["event_id"].as_str()).await;

    // Act
    let started = Instant::now();
    assert_eq!(
        alice.delete(&app, "/api/v1/sessions/current").await.status,
        204
    );
    let (code, _) = ws.expect_close(Duration::from_secs(2)).await;

    // Assert
    assert_eq!(code, 4100);
    assert!(started.elapsed() < Duration::from_secs(2));
    let retry = app
        .try_socket(None, &[("Cookie", alice.cookie.as_str())])
        .await;
    assert_eq!(
        retry.err(),
        Some(401),
        "the revoked cookie cannot reconnect"
    );
    let sent = other
        .send_message(&app, room["id"].as_str().unwrap(), "still here")
        .await;
    assert_eq!(other_ws.next_event().await["id"], sent["event_id"]);
}

#[actix_web::test]
async fn a_cursor_older_than_retention_gets_resync_required_then_live() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_EVENT_RETENTION_SECS", "1")
        .env("HUBBUB_PRUNE_INTERVAL_SECS", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut last = Value::Null;
    for i in 0..3 {
        last = alice.send_message(&app, room_id, &format!("old {i}")).await["event_id"].clone();
    }
    actix_rt::time::sleep(Duration::from_millis(2500)).await;

    // Act: poll a little in case pruning lags behind its interval.
    let deadline = Instant::now() + Duration::from_secs(6);
    let (mut ws, frame) = loop {
        let mut ws = alice.socket(&app, Some("0")).await;
        let frame = match ws.recv(Duration::from_secs(1)).await {
            Recv::Frame(f) => f,
            Recv::Closed(r) => panic!("closed after hello: {r:?}"),
            Recv::Timeout => Value::Null,
        };
        if frame["type"] == "resync_required" || Instant::now() > deadline {
            break (ws, frame);
        }
        actix_rt::time::sleep(Duration::from_millis(500)).await;
    };

    // Assert
    assert_eq!(ws.hello["cursor"], "0");
    assert_eq!(frame["type"], "resync_required", "got {frame} instead");
    assert_eq!(frame["cursor"], last, "resync to the current position");
    let live = alice.send_message(&app, room_id, "new").await;
    let next = ws.next_event().await;
    assert_eq!(next["id"], live["event_id"], "no partial replay, then live");
    let mut current = alice.socket(&app, last.as_str()).await;
    assert_eq!(
        current.next_event().await["id"],
        live["event_id"],
        "a fresh cursor needs no resync"
    );
}

#[actix_web::test]
async fn a_slow_consumer_is_closed_with_4000_and_resumes_without_loss() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_STREAM_QUEUE", "4")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "firehose", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut ws = alice.socket(&app, room["event_id"].as_str()).await;
    let filler = "€".repeat(3990);

    // Act: ~10 MB of frames while the socket is not read, more than kernel buffers hold.
    let lanes = (0..8).map(|lane| {
        let (app, alice, filler) = (&app, &alice, &filler);
        async move {
            let mut ids = Vec::new();
            for i in 0..100 {
                let sent = alice
                    .send_message(app, room_id, &format!("{lane}-{i:03}{filler}"))
                    .await;
                ids.push(sent["event_id"].as_str().unwrap().to_owned());
            }
            ids
        }
    });
    let mut all: Vec<String> = join_all(lanes).await.into_iter().flatten().collect();
    all.sort_by(|a, b| cursor_key(a).cmp(&cursor_key(b)));
    let mut first = Vec::new();
    let close = loop {
        match ws.recv(Duration::from_secs(5)).await {
            Recv::Frame(f) => first.push(f),
            Recv::Closed(reason) => break reason,
            Recv::Timeout => panic!(
                "never cut off: {} of {} frames delivered, no close",
                first.len(),
                all.len()
            ),
        }
    };

    // Assert
    let (code, reason) = close.expect("close frame with a code");
    assert_eq!(code, 4000, "reason {reason:?}");
    let cursor = reason
        .strip_prefix("resume from ")
        .expect("reason `resume from <cursor>`")
        .to_owned();
    let delivered_up_to = first
        .last()
        .map_or(ws.hello["cursor"].clone(), |f| f["id"].clone());
    assert_eq!(
        delivered_up_to,
        cursor.as_str(),
        "cursor = last delivered id"
    );
    let mut resumed = alice.socket(&app, Some(&cursor)).await;
    let rest = resumed.events(all.len() - first.len()).await;
    first.extend(rest);
    assert_strictly_increasing(&first);
    assert_eq!(frame_ids(&first), all, "nothing missing, nothing twice");
    resumed.expect_silence(300).await;
}

#[actix_web::test]
async fn bad_upgrades_are_refused_before_the_socket_opens() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let cookie = ("Cookie", alice.cookie.as_str());

    // Act
    let anonymous = app.try_socket(None, &[]).await.err();
    let bad_since = app.try_socket(Some("abc"), &[cookie]).await.err();
    let evil = app
        .try_socket(None, &[cookie, ("Origin", "http://evil.example")])
        .await
        .err();

    // Assert
    assert_eq!(anonymous, Some(401));
    assert_eq!(bad_since, Some(400));
    assert_eq!(evil, Some(403));
}

#[actix_web::test]
async fn past_the_socket_cap_upgrades_get_503_and_http_keeps_working() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_MAX_SOCKETS", "2")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let _first = alice.socket(&app, None).await;
    let _second = alice.socket(&app, None).await;

    // Act
    let third = app
        .try_socket(None, &[("Cookie", alice.cookie.as_str())])
        .await;

    // Assert
    assert_eq!(third.err(), Some(503), "the third socket is refused");
    alice.get(&app, "/api/v1/me").await.expect(200);
}
