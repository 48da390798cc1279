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
async fn metrics_count_each_commit_and_the_time_of_its_phases() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "counted", &[]).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let phase = |p: &str| format!("hubbub_commit_seconds_total{{phase=\"{p}\"}}");
    let read = || async {
        (
            app.metric("hubbub_commit_batches_total").await,
            app.metric("hubbub_commit_batched_writes_total").await,
            app.metric(&phase("begin")).await,
            app.metric(&phase("work")).await,
            app.metric(&phase("commit")).await,
        )
    };
    let before = read().await;

    // Act
    alice.send_message(&app, &room_id, "one commit").await;

    // Assert
    let after = read().await;
    assert!(
        after.0 > before.0,
        "a batch is counted: {before:?} → {after:?}"
    );
    assert!(after.1 > before.1, "its write is counted");
    assert!(after.2 >= before.2, "the begin phase never goes back");
    assert!(
        after.3 > before.3,
        "the send's checks and inserts took time"
    );
    assert!(after.4 > before.4, "the COMMIT (an fsync) took time");
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

/// Runs `hubbub serve` against an unusable database and returns (exit code, stderr).
fn serve_with_database(url: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("hubbub-test-{}", uuid::Uuid::new_v4()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .arg("serve")
        .env("HUBBUB_LISTEN", "127.0.0.1:0")
        .env("HUBBUB_DATA_DIR", &dir)
        .env("HUBBUB_DATABASE_URL", url)
        .output()
        .expect("run hubbub");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unreachable_or_wrong_database_is_a_clear_error_not_a_panic() {
    // Arrange: nothing listens on port 1; a SQLite path under a file can't be created.
    let cases = [
        "postgres://nobody@127.0.0.1:1/none",
        "/dev/null/not-a-directory/hubbub.db",
    ];

    for url in cases {
        // Act
        let (code, stderr) = serve_with_database(url);

        // Assert
        assert_eq!(code, Some(1), "{url}: exit code; stderr: {stderr}");
        assert!(
            stderr.contains("hubbub:"),
            "{url}: a message of ours: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{url}: a panic: {stderr}");
    }
}
