//! Durability and process lifecycle: kill -9 loses nothing acknowledged, SIGTERM closes sockets with 1001, `migrate`.

use std::time::Duration;

use crate::harness::{ids, TestApp};

#[actix_web::test]
async fn kill_9_right_after_the_last_ack_loses_nothing() {
    // Arrange
    let mut app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "durable", &[]).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let mut sent = Vec::new();
    for i in 0..50 {
        sent.push(
            alice
                .send_message(&app, &room_id, &format!("durable {i}"))
                .await,
        );
    }

    // Act
    app.restart().await; // SIGKILL, then start on the same data

    // Assert
    let history = alice.history(&app, &room_id, "limit=100").await;
    let want: Vec<&str> = sent
        .iter()
        .map(|s| s["message"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids(&history),
        want,
        "all 50 acknowledged messages survive, in order"
    );
    let mut ws = alice.socket(&app, Some("0")).await;
    let created = ws.next_event().await;
    assert_eq!(created["event"], "room.created");
    assert_eq!(created["id"], room["event_id"]);
    let replayed = ws.events(50).await;
    for (frame, s) in replayed.iter().zip(&sent) {
        assert_eq!(frame["id"], s["event_id"]);
        assert_eq!(frame["data"], s["message"]);
    }
    ws.expect_silence(300).await;
}

#[actix_web::test]
async fn sigterm_closes_sockets_with_1001_and_exits_0() {
    // Arrange
    let mut app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let mut ws = alice.socket(&app, None).await;

    // Act
    app.send_sigterm();

    // Assert
    let (code, _) = ws.expect_close(Duration::from_secs(5)).await;
    assert_eq!(code, 1001);
    let status = app.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

#[actix_web::test]
async fn migrate_exits_0_on_a_fresh_and_on_a_migrated_database() {
    // Arrange
    let mut app = TestApp::builder().create();

    // Act
    let first = app.run_cli(&["migrate"]);
    let second = app.run_cli(&["migrate"]);

    // Assert
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    app.start().await;
    let alice = app.register("alice").await;
    alice.get(&app, "/api/v1/me").await.expect(200);
}
