//! Server-Sent Events (`GET /api/v1/stream/sse`): the socket's frames as SSE messages, resume
//! with `Last-Event-ID` or `since`, authentication, close on revocation and shutdown, caps.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Bearer, SseMessage, SseRecv, TestApp, TestUser};

fn cookie(user: &TestUser) -> [(&'static str, &str); 1] {
    [("Cookie", user.cookie.as_str())]
}

fn message_ids(messages: &[SseMessage]) -> Vec<String> {
    messages.iter().map(|m| m.id.clone().unwrap()).collect()
}

/// Waits until the node holds no stream, or fails after `within`.
async fn no_streams_within(app: &TestApp, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while app.metric("hubbub_open_sockets").await > 0.0 {
        assert!(Instant::now() < deadline, "{what}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn hello_then_live_events_as_the_socket_sends_them() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_HEARTBEAT_SECS", "7")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut ws = alice.socket(&app, None).await;

    // Act
    let mut sse = app
        .sse(
            "",
            &[("Cookie", &alice.cookie), ("Accept-Encoding", "gzip")],
        )
        .await;
    let sent = alice.send_message(&app, room_id, "hello, stream").await;
    let event = sse.next_event().await;

    // Assert: the headers a proxy and a browser need.
    let header = |name: &str| {
        sse.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("content-type").as_deref(), Some("text/event-stream"));
    assert_eq!(header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(header("x-accel-buffering").as_deref(), Some("no"));
    assert_eq!(
        header("content-encoding"),
        None,
        "the stream is not compressed"
    );
    // hello: the socket's, named `hello`, its id the cursor it gives.
    let hello = &sse.hello;
    assert_eq!(hello.json["user_id"], alice.id.as_str());
    assert_eq!(hello.json["heartbeat_s"], 7);
    assert_eq!(hello.id.as_deref(), hello.json["cursor"].as_str());
    // The event: the very frame the socket got, named by its type, with its id.
    assert_eq!(event.id.as_deref(), sent["event_id"].as_str());
    assert_eq!(event.event, "message.created");
    assert_eq!(event.json["data"], sent["message"]);
    let frame = ws.next_event().await;
    assert_eq!(event.json, frame);
    assert!(!event.data.contains('\n'), "one data line: {}", event.data);
    sse.expect_silence(300).await;
}

#[actix_web::test]
async fn last_event_id_resumes_without_gap_or_duplicate_and_wins_over_since() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let room_event = room["event_id"].as_str().unwrap();
    let mut sse = app
        .sse(&format!("since={room_event}"), &cookie(&alice))
        .await;
    for i in 0..5 {
        alice
            .send_message(&app, room_id, &format!("seen {i}"))
            .await;
    }
    let seen = sse.events(5).await;
    let last = seen[4].id.clone().unwrap();
    drop(sse);
    let mut missed = Vec::new();
    for i in 0..20 {
        missed.push(
            alice
                .send_message(&app, room_id, &format!("missed {i}"))
                .await,
        );
    }

    // Act: as EventSource reconnects: the same URL (its stale `since`), and Last-Event-ID.
    let mut sse = app
        .sse(
            &format!("since={room_event}"),
            &[("Cookie", &alice.cookie), ("Last-Event-ID", &last)],
        )
        .await;
    let replayed = sse.events(20).await;
    let live = alice.send_message(&app, room_id, "live").await;
    let live_event = sse.next_event().await;

    // Assert
    assert_eq!(sse.hello.json["cursor"], last.as_str());
    let want: Vec<String> = missed
        .iter()
        .map(|m| m["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        message_ids(&replayed),
        want,
        "exactly the 20 missed, in order"
    );
    for (event, sent) in replayed.iter().zip(&missed) {
        assert_eq!(event.json["data"], sent["message"]);
    }
    assert_eq!(live_event.id.as_deref(), live["event_id"].as_str());
    sse.expect_silence(300).await;
}

#[actix_web::test]
async fn since_replays_what_was_missed_and_a_bad_cursor_is_400() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(alice.send_message(&app, room_id, &format!("m{i}")).await);
    }

    // Act
    let mut sse = app
        .sse(
            &format!("since={}", room["event_id"].as_str().unwrap()),
            &cookie(&alice),
        )
        .await;
    let replayed = sse.events(3).await;
    let bad_since = app.try_sse("since=abc", &cookie(&alice)).await.err();
    let bad_header = app
        .try_sse("", &[("Cookie", &alice.cookie), ("Last-Event-ID", "-4")])
        .await
        .err();

    // Assert
    let want: Vec<String> = sent
        .iter()
        .map(|m| m["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(message_ids(&replayed), want);
    sse.expect_silence(300).await;
    bad_since
        .expect("refused")
        .expect_error(400, "invalid_cursor");
    bad_header
        .expect("refused")
        .expect_error(400, "invalid_cursor");
}

#[actix_web::test]
async fn a_non_member_sees_nothing_of_a_room() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let private = alice.create_room(&app, "private", &[]).await;
    let shared = alice.create_room(&app, "shared", &[&bob]).await;
    let mut bobs = app.sse("", &cookie(&bob)).await;

    // Act
    alice
        .send_message(&app, private["id"].as_str().unwrap(), "secret")
        .await;
    let visible = alice
        .send_message(&app, shared["id"].as_str().unwrap(), "for bob")
        .await;

    // Assert: the next thing bob gets is the shared room's message.
    let event = bobs.next_event().await;
    assert_eq!(event.id.as_deref(), visible["event_id"].as_str());
    bobs.expect_silence(300).await;
    // Nor on a replay from before both.
    let mut replay = app
        .sse(
            &format!("since={}", private["event_id"].as_str().unwrap()),
            &cookie(&bob),
        )
        .await;
    let first = replay.next_event().await;
    assert_eq!(first.json["room_id"], shared["id"]);
    let second = replay.next_event().await;
    assert_eq!(second.id.as_deref(), visible["event_id"].as_str());
    replay.expect_silence(300).await;
}

#[actix_web::test]
async fn logout_ends_the_stream_with_a_close_4100_and_the_cookie_cannot_reopen_it() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let other = alice.second_session(&app).await;
    let mut sse = app.sse("", &cookie(&alice)).await;
    let mut others = app.sse("", &cookie(&other)).await;

    // Act
    let started = Instant::now();
    assert_eq!(
        alice.delete(&app, "/api/v1/sessions/current").await.status,
        204
    );
    let close = sse.expect_close(Duration::from_secs(2)).await;

    // Assert
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(close["code"], 4100, "{close}");
    assert_eq!(close["reason"], "credential revoked");
    let again = app.try_sse("", &cookie(&alice)).await.err();
    again.expect("refused").expect_error(401, "unauthenticated");
    others.expect_silence(300).await;
}

#[actix_web::test]
async fn a_shutdown_ends_the_stream_with_a_close_1001() {
    // Arrange
    let mut app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let mut sse = app.sse("", &cookie(&alice)).await;

    // Act
    app.send_sigterm();
    let close = sse.expect_close(Duration::from_secs(5)).await;

    // Assert
    assert_eq!(close["code"], 1001, "{close}");
    assert!(app.wait_exit(Duration::from_secs(10)).await.success());
}

#[actix_web::test]
async fn a_token_or_a_ticket_opens_the_stream_with_the_read_scope() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let reader = Bearer::create_token(&app, &alice, json!(["read"])).await;
    let sender = Bearer::create_token(&app, &alice, json!(["send"])).await;
    let ticket = reader.ticket(&app).await;

    // Act
    let mut by_token = app
        .sse("", &[("Authorization", &reader.authorization())])
        .await;
    let mut by_ticket = app.sse(&format!("ticket={ticket}"), &[]).await;
    let reused = app.try_sse(&format!("ticket={ticket}"), &[]).await.err();
    let no_read = app
        .try_sse("", &[("Authorization", &sender.authorization())])
        .await
        .err();
    let sent = alice
        .send_message(&app, room["id"].as_str().unwrap(), "to both")
        .await;

    // Assert
    for sse in [&mut by_token, &mut by_ticket] {
        assert_eq!(sse.hello.json["user_id"], alice.id.as_str());
        let event = sse.next_event().await;
        assert_eq!(event.id.as_deref(), sent["event_id"].as_str());
    }
    reused.expect("refused").expect_error(401, "invalid_ticket");
    no_read
        .expect("refused")
        .expect_error(403, "insufficient_scope");
    // Deleting the token ends its stream, and the ticket's (bound to the token), with 4100.
    assert_eq!(alice.delete(&app, &reader.token_path()).await.status, 204);
    for sse in [&mut by_token, &mut by_ticket] {
        let close = sse.expect_close(Duration::from_secs(2)).await;
        assert_eq!(close["code"], 4100, "{close}");
    }
}

#[actix_web::test]
async fn a_cookie_from_another_origin_is_refused_like_the_socket() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let token = Bearer::create_token(&app, &alice, json!(["read"])).await;
    let evil = "https://evil.example";

    // Act
    let refused = app
        .try_sse("", &[("Cookie", &alice.cookie), ("Origin", evil)])
        .await
        .err();
    let own = app
        .try_sse("", &[("Cookie", &alice.cookie), ("Origin", &app.origin())])
        .await;
    let bearer = app
        .try_sse(
            "",
            &[("Authorization", &token.authorization()), ("Origin", evil)],
        )
        .await;
    let nobody = app.try_sse("", &[]).await.err();

    // Assert
    refused
        .expect("refused")
        .expect_error(403, "origin_not_allowed");
    assert!(own.is_ok(), "the server's own origin may");
    assert!(bearer.is_ok(), "a bearer token has no Origin check");
    nobody
        .expect("refused")
        .expect_error(401, "unauthenticated");
}

#[actix_web::test]
async fn sse_streams_count_with_sockets_against_the_per_user_and_node_caps() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_MAX_STREAMS_PER_USER", "2")
        .env("HUBBUB_MAX_SOCKETS", "3")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let _socket = alice.socket(&app, None).await;
    let _sse = app.sse("", &cookie(&alice)).await;

    // Act
    let third_sse = app.try_sse("", &cookie(&alice)).await.err();
    let third_socket = app
        .try_socket(None, &[("Cookie", alice.cookie.as_str())])
        .await
        .err();
    let _bobs = app.sse("", &cookie(&bob)).await;
    let node_full = app.try_sse("", &cookie(&carol)).await.err();

    // Assert
    let third_sse = third_sse.expect("refused");
    third_sse.expect_error(429, "too_many_streams");
    assert_eq!(third_sse.header("retry-after").as_deref(), Some("5"));
    assert_eq!(third_socket, Some(429));
    let node_full = node_full.expect("refused");
    node_full.expect_error(503, "too_many_connections");
    assert!(node_full.header("retry-after").is_some());
}

#[actix_web::test]
async fn a_dropped_sse_connection_gives_its_slot_back() {
    // Arrange: one stream per user, a heartbeat far away (the drop must be seen by itself).
    let app = TestApp::builder()
        .env("HUBBUB_MAX_STREAMS_PER_USER", "1")
        .env("HUBBUB_HEARTBEAT_SECS", "60")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let token = Bearer::create_token(&app, &alice, json!(["read"])).await;

    for round in 0..3 {
        let sse = app
            .sse("", &[("Authorization", &token.authorization())])
            .await;
        assert_eq!(app.metric("hubbub_open_sockets").await, 1.0);

        // Act: the client goes away without a word.
        drop(sse);

        // Assert
        no_streams_within(
            &app,
            Duration::from_secs(3),
            &format!("round {round}: the dropped stream still holds its slot"),
        )
        .await;
    }
    let socket = app
        .try_socket(None, &[("Authorization", &token.authorization())])
        .await;
    assert!(socket.is_ok(), "her slot is free: {:?}", socket.err());
}

#[actix_web::test]
async fn heartbeats_are_comments_at_the_socket_interval() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_HEARTBEAT_SECS", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let mut sse = app.sse("", &cookie(&alice)).await;

    // Act
    let started = Instant::now();
    let first = sse.recv(Duration::from_secs(3)).await;
    let second = sse.recv(Duration::from_secs(3)).await;

    // Assert
    for beat in [&first, &second] {
        assert!(
            matches!(beat, SseRecv::Comment(c) if c == "ping"),
            "a heartbeat comment: {beat:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_millis(2600));
    // Still streaming after them.
    let sent = alice
        .send_message(&app, room["id"].as_str().unwrap(), "after the beats")
        .await;
    assert_eq!(
        sse.next_event().await.id.as_deref(),
        sent["event_id"].as_str()
    );
}

#[actix_web::test]
async fn a_client_that_stops_reading_has_its_connection_cut_and_its_slot_given_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Arrange: a 1 s heartbeat (the write timeout is two), a small queue.
    let app = TestApp::builder()
        .env("HUBBUB_HEARTBEAT_SECS", "1")
        .env("HUBBUB_STREAM_QUEUE", "8")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let token = Bearer::create_token(&app, &alice, json!(["read"])).await;
    // A receive buffer as small as the kernel allows, so that the server's writes back up soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let mut stream = socket
        .connect(([127, 0, 0, 1], app.port).into())
        .await
        .expect("connect");
    let request = format!(
        "GET /api/v1/stream/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\r\n",
        token.authorization()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert_eq!(app.metric("hubbub_open_sockets").await, 1.0);

    // Act: messages the client never reads.
    let body = "x".repeat(3000);
    let started = Instant::now();
    while app.metric("hubbub_open_sockets").await > 0.0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stream of a client that reads nothing still holds its slot"
        );
        for _ in 0..20 {
            alice.send_message(&app, room_id, &body).await;
        }
    }

    // Assert: what the server had written is there to read, then the connection ends (read
    // with a larger window now: through the tiny one it would take minutes).
    let std = stream.into_std().unwrap();
    socket2_recv_buffer(&std, 1 << 20);
    let mut stream = tokio::net::TcpStream::from_std(std).unwrap();
    // Read to the end while bytes keep coming (a busy machine drains megabytes of kernel
    // buffers slowly); 4 s with nothing at all, sooner than the server's 5 s keep-alive would end
    // a connection whose response completed, means the connection was left open.
    let mut rest = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(4), stream.read(&mut chunk)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => rest.extend_from_slice(&chunk[..n]),
            Err(_) => panic!(
                "the connection was cut, not left open (read {} bytes, then 4 s of nothing)",
                rest.len()
            ),
        }
    }
    assert!(
        !rest.ends_with(b"0\r\n\r\n"),
        "cut mid-response: the response did not end in good order"
    );
}

/// SO_RCVBUF on a connected socket.
fn socket2_recv_buffer(stream: &std::net::TcpStream, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor and an int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUF");
}
