//! Sockets and long polls: frames that never end, control frames out of bounds, abandoned
//! polls, reset connections, and caps per user and per node.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Honest, MIB};
use crate::harness::{send, upgrade_request, Bearer, TestApp, TestUser};

/// Opens the stream on a raw connection with `user`'s cookie; reads the `101` head.
async fn raw_stream(app: &TestApp, user: &TestUser) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    stream
        .write_all(&upgrade_request(
            "/api/v1/stream",
            &[("Cookie", &user.cookie)],
        ))
        .await
        .expect("write the upgrade request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read the head");
        assert!(n == 1, "the server closed before answering the upgrade");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// Reads server frames until a close frame; returns its code, or `None` if the connection
/// ended without one.
async fn close_code(rd: &mut (impl AsyncReadExt + Unpin)) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while buf.len() >= 2 {
            let len = usize::from(buf[1] & 0x7f);
            let (len, at) = match len {
                126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
                126 => break,
                127 => panic!("the server sent a frame over 64 KiB"),
                n => (n, 2),
            };
            if buf.len() < at + len {
                break;
            }
            if buf[0] & 0x0f == 0x8 {
                return (len >= 2).then(|| u16::from_be_bytes([buf[at], buf[at + 1]]));
            }
            buf.drain(..at + len);
        }
        match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

#[actix_web::test]
async fn a_data_frame_announcing_2_pow_62_bytes_is_closed_at_its_header_and_memory_stays_flat() {
    // Arrange
    let app = TestApp::spawn().await;
    let honest = Honest::join(&app).await;
    let mallory = app.register("mallory").await;
    let stream = raw_stream(&app, &mallory).await;
    let (mut rd, mut wr) = stream.into_split();
    app.reset_peak_memory();
    let (before, _) = app.memory();

    // Act: the header, then as much payload as the server will take (256 MiB at most).
    let writer = tokio::spawn(async move {
        let mut header = vec![0x82, 0xff];
        header.extend((1u64 << 62).to_be_bytes());
        header.extend([0x11, 0x22, 0x33, 0x44]);
        let mut sent = 0u64;
        if wr.write_all(&header).await.is_err() {
            return sent;
        }
        let chunk = vec![0x5a; 64 * 1024];
        while sent < 256 << 20 {
            match tokio::time::timeout(Duration::from_secs(2), wr.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len() as u64,
                _ => break,
            }
        }
        sent
    });
    let code = close_code(&mut rd).await;
    honest.sends(&app, "during the frame").await;
    let sent = writer.await.expect("the writer task");
    let (_, peak) = app.memory();

    // Assert
    assert_eq!(
        code,
        Some(1008),
        "the read-only socket refuses the data frame"
    );
    assert!(
        sent < 64 << 20,
        "the server stopped reading at the header (the client got {sent} bytes out)"
    );
    assert!(
        peak < before + 16 * MIB,
        "peak RSS {peak} KiB against {before} KiB before: the payload was buffered"
    );
    honest.history_has(&app, &["during the frame"]).await;
}

#[actix_web::test]
async fn a_control_frame_longer_than_125_bytes_is_a_protocol_error() {
    // Arrange
    let app = TestApp::spawn().await;
    let mallory = app.register("mallory").await;
    let mut stream = raw_stream(&app, &mallory).await;

    // Act: a ping announcing 64 KiB (control frames carry at most 125 bytes).
    stream
        .write_all(&[0x89, 0xfe, 0xff, 0xff, 1, 2, 3, 4])
        .await
        .expect("write");
    let code = close_code(&mut stream).await;

    // Assert
    assert_eq!(code, Some(1002));
}

/// Opens a long poll with `bearer` and gives up on it (closes the connection) after `after`.
async fn abandoned_poll(app: &TestApp, bearer: &Bearer, after: Duration) {
    let client = awc::Client::builder().timeout(after).finish();
    let req = bearer.req(client.get(app.url("/api/v1/events?timeout=30")));
    if let Ok(mut answered) = req.send().await {
        let body = answered.body().await.unwrap_or_default();
        panic!(
            "the poll answered instead of waiting: {} {body:?}",
            answered.status()
        );
    }
}

#[actix_web::test]
async fn abandoned_long_polls_give_their_slots_back_at_once() {
    // Arrange: a node that holds 4 streams.
    let app = TestApp::builder()
        .env("HUBBUB_MAX_SOCKETS", "4")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let token = Bearer::create_token(&app, &alice, json!(["read"])).await;

    // Act: three rounds that fill the node with polls, each abandoned after half a second.
    for round in 0..3 {
        join_all((0..4).map(|_| abandoned_poll(&app, &token, Duration::from_millis(500)))).await;
        let deadline = Instant::now() + Duration::from_secs(3);
        while app.metric("hubbub_open_sockets").await > 0.0 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the abandoned polls still hold their slots"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let socket = app.try_socket(None, &[("Cookie", &bob.cookie)]).await;

    // Assert
    assert!(
        socket.is_ok(),
        "another user's socket opens: {:?}",
        socket.err()
    );
}

/// Closes with a reset (SO_LINGER 0) instead of a FIN.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let stream = stream.into_std().expect("a std stream");
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a `linger` of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
    drop(stream);
}

#[actix_web::test]
async fn a_reset_connection_gives_its_socket_slot_back() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let stream = raw_stream(&app, &alice).await;
    assert_eq!(app.metric("hubbub_open_sockets").await, 1.0);

    // Act: RST instead of a close frame or a FIN.
    reset(stream);

    // Assert
    let deadline = Instant::now() + Duration::from_secs(3);
    while app.metric("hubbub_open_sockets").await > 0.0 {
        assert!(
            Instant::now() < deadline,
            "the reset socket is still counted"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn one_user_holds_at_most_their_share_of_streams_and_others_still_connect() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_MAX_STREAMS_PER_USER", "3")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let t1 = Bearer::create_token(&app, &alice, json!(["read"])).await;
    let t2 = Bearer::create_token(&app, &alice, json!(["read"])).await;

    // Act: three sockets over two of her credentials, then a fourth, and a long poll.
    let mut held = Vec::new();
    for bearer in [&t1, &t2, &t1] {
        held.push(bearer.socket(&app, None).await);
    }
    let fourth = app
        .try_socket(None, &[("Authorization", &t2.authorization())])
        .await;
    let poll = t2.poll(&app, "timeout=0").await;
    let bobs = app.try_socket(None, &[("Cookie", &bob.cookie)]).await;
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    let again = loop {
        match app.try_socket(None, &[("Cookie", &alice.cookie)]).await {
            Ok(socket) => break socket,
            Err(status) => {
                assert_eq!(status, 429);
                assert!(
                    Instant::now() < deadline,
                    "a closed socket's slot comes back"
                );
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // Assert
    assert_eq!(fourth.err(), Some(429));
    poll.expect_error(429, "too_many_streams");
    assert!(poll.header("retry-after").is_some());
    assert!(bobs.is_ok(), "another user still connects");
    drop(again);
}

#[actix_web::test]
async fn the_node_cap_answers_503_with_retry_after() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_MAX_SOCKETS", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let _held = alice.socket(&app, None).await;

    // Act
    let poll = send(
        app.get("/api/v1/events?timeout=0")
            .insert_header(("Cookie", bob.cookie.as_str())),
        None,
    )
    .await;

    // Assert
    poll.expect_error(503, "too_many_connections");
    assert!(poll.header("retry-after").is_some());
}
