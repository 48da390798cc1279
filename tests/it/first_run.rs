//! The traps a newcomer met on a first run (#20), each shown by a test that failed before.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::harness::TestApp;

async fn readyz(app: &TestApp) -> (u16, Value) {
    let mut resp = app.get("/readyz").send().await.expect("GET /readyz");
    let body = resp.body().await.expect("body");
    (
        resp.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// A `hubbub.db` the server may not write (copied in from elsewhere, a wrong owner): SQLite
/// opens it read-only without a word and every write fails. `/readyz` says so.
#[actix_web::test]
async fn readyz_is_not_ready_when_the_database_file_cannot_be_written() {
    // Arrange: SQLite whatever the run's backend, as a user whom file modes stop.
    let mut app = TestApp::builder().sqlite().as_nobody().create();
    let db = app.data_dir().join("hubbub.db");
    app.start().await;
    let (before, _) = readyz(&app).await;

    // Act
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let (status, body) = readyz(&app).await;

    // Assert
    assert_eq!(before, 200);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    let reason = body["database"].as_str().unwrap_or_default();
    assert!(
        reason.contains("hubbub.db") && reason.contains("not writable"),
        "{reason}"
    );
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(readyz(&app).await.0, 200, "ready again once it can write");
}
