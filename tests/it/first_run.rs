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
    let mut app = TestApp::builder().sqlite().run_as_nobody().create();
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

/// The session cookie a registration sets, sent with these extra headers.
async fn session_cookie(app: &TestApp, name: &str, headers: &[(&str, &str)]) -> String {
    let mut req = app.post("/api/v1/users");
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let body = serde_json::json!({ "username": name, "password": "correct horse battery staple" });
    let resp = req.send_json(&body).await.expect("POST /api/v1/users");
    assert_eq!(resp.status().as_u16(), 201);
    resp.headers()
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("hubbub_session="))
        .expect("a session cookie")
        .to_string()
}

fn is_secure(cookie: &str) -> bool {
    cookie
        .split(';')
        .any(|part| part.trim().eq_ignore_ascii_case("secure"))
}

/// The default (`auto`): a browser on plain HTTP keeps its session (a `Secure` cookie set over
/// HTTP is dropped by the browser, and the page said "Your session ended"); over HTTPS, seen by
/// the browser's `Origin` or a trusted proxy's `X-Forwarded-Proto`, the cookie is `Secure`.
#[actix_web::test]
async fn the_session_cookie_is_secure_exactly_when_the_browser_comes_over_https() {
    // Arrange: the defaults, behind a proxy the operator trusts.
    let app = TestApp::builder()
        .env("HUBBUB_COOKIE_SECURE", "auto")
        .env("HUBBUB_TRUST_FORWARDED", "true")
        .env("HUBBUB_ALLOWED_ORIGINS", "https://chat.example")
        .spawn()
        .await;
    let plain = app.origin();

    // Act
    let over_http = session_cookie(&app, "alice", &[("Origin", &plain)]).await;
    let over_https = session_cookie(&app, "bob", &[("Origin", "https://chat.example")]).await;
    let proxied = session_cookie(&app, "carol", &[("X-Forwarded-Proto", "https")]).await;
    let proxied_http = session_cookie(&app, "dave", &[("X-Forwarded-Proto", "http")]).await;
    let forwarded = session_cookie(&app, "erin", &[("Forwarded", "for=1.2.3.4;proto=https")]).await;

    // Assert
    assert!(!is_secure(&over_http), "{over_http}");
    assert!(is_secure(&over_https), "{over_https}");
    assert!(is_secure(&proxied), "{proxied}");
    assert!(!is_secure(&proxied_http), "{proxied_http}");
    assert!(is_secure(&forwarded), "{forwarded}");
    for cookie in [&over_http, &over_https] {
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
    }
}

/// Without a trusted proxy, its headers don't count; `true` and `false` are what they say.
#[actix_web::test]
async fn forwarded_headers_count_only_from_a_trusted_proxy_and_fixed_modes_stay_fixed() {
    // Arrange
    let untrusting = TestApp::builder()
        .env("HUBBUB_COOKIE_SECURE", "auto")
        .spawn()
        .await;
    let always = TestApp::builder()
        .env("HUBBUB_COOKIE_SECURE", "true")
        .spawn()
        .await;
    let never = TestApp::builder()
        .env("HUBBUB_COOKIE_SECURE", "false")
        .spawn()
        .await;
    let https = [("X-Forwarded-Proto", "https")];

    // Act
    let spoofed = session_cookie(&untrusting, "alice", &https).await;
    let always = session_cookie(&always, "alice", &[]).await;
    let never = session_cookie(&never, "alice", &[("Origin", "https://x.example")]).await;

    // Assert
    assert!(!is_secure(&spoofed), "{spoofed}");
    assert!(is_secure(&always), "{always}");
    assert!(!is_secure(&never), "{never}");
}

/// Listening beyond this machine on plain HTTP says so at start-up.
#[actix_web::test]
async fn serving_plain_http_beyond_loopback_warns_at_start() {
    // Arrange
    let local = TestApp::spawn().await;

    // Act
    let open = TestApp::builder()
        .env("HUBBUB_LISTEN", "0.0.0.0:0")
        .spawn()
        .await;

    // Assert
    assert!(
        open.server_log().contains("serving plain HTTP on 0.0.0.0:"),
        "{}",
        open.server_log()
    );
    assert!(!local.server_log().contains("serving plain HTTP"));
}

/// Writes a settings file into the app's data dir and returns its path.
fn settings_file(app: &TestApp, text: &str) -> String {
    let path = app.data_dir().join("hubbub.toml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// A settings file configures the server it starts, under the environment.
#[actix_web::test]
async fn a_settings_file_configures_the_server_and_the_environment_overrides_it() {
    // Arrange: the file closes registration and sets the DM policy; the environment (the
    // harness's) sets the listen address the file also names.
    let probe = TestApp::builder().create();
    let file = settings_file(
        &probe,
        "# a newcomer's settings\nregistration = \"closed\"\nlisten = \"127.0.0.1:1\"\n",
    );
    let app = TestApp::builder().env("HUBBUB_CONFIG", &file).spawn().await;

    // Act
    let resp = app
        .post("/api/v1/users")
        .send_json(
            &serde_json::json!({"username": "alice", "password": "quartz lantern meadow 19"}),
        )
        .await
        .unwrap();

    // Assert: the file's registration mode holds; its port (1) lost to HUBBUB_LISTEN.
    assert_eq!(resp.status().as_u16(), 403);
    assert_ne!(app.port, 1);
}

/// `hubbub config check`: valid settings print as a file would hold them, with their sources
/// and secrets masked, exit 0, and say whether the database answers; bad ones exit 2 naming the
/// key and line.
#[actix_web::test]
async fn config_check_prints_the_effective_settings_and_their_sources() {
    // Arrange
    let app = TestApp::builder().sqlite().create();
    let file = settings_file(
        &app,
        "registration = \"invite\"\n\nvapid_private_key = \"a-secret-value\"\n",
    );
    let bad = app.data_dir().join("bad.toml");
    std::fs::write(
        &bad,
        "registration = \"invite\"\nheartbeat_secs = \"often\"\n",
    )
    .unwrap();
    let typo = app.data_dir().join("typo.toml");
    std::fs::write(&typo, "registraton = \"invite\"\n").unwrap();

    // Act
    let checked = app.run_cli(&["--config", &file, "config", "check"]);
    let invalid = app.run_cli(&["config", "check", "--config", bad.to_str().unwrap()]);
    let misspelt = app.run_cli(&["config", "check", "--config", typo.to_str().unwrap()]);

    // Assert
    let out = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("registration = \"invite\"  # {file} line 1")),
        "{out}"
    );
    assert!(out.contains("vapid_private_key = \"***\""), "{out}");
    assert!(!out.contains("a-secret-value"), "{out}");
    assert!(
        out.contains("listen = \"127.0.0.1:0\"  # HUBBUB_LISTEN (environment)"),
        "{out}"
    );
    assert!(out.contains("heartbeat_secs = \"20\"  # default"), "{out}");
    assert!(out.contains("# database: SQLite"), "{out}");
    let err = String::from_utf8_lossy(&invalid.stderr);
    assert_eq!(invalid.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`heartbeat_secs`") && err.contains("line 2"),
        "{err}"
    );
    let err = String::from_utf8_lossy(&misspelt.stderr);
    assert_eq!(misspelt.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`registraton`") && err.contains("line 1"),
        "{err}"
    );
}

/// A database that doesn't answer doesn't make valid settings invalid; `config check` says so.
#[actix_web::test]
async fn config_check_says_when_the_database_does_not_answer_and_exits_zero() {
    // Arrange: nothing listens on port 1.
    let app = TestApp::builder()
        .env(
            "HUBBUB_DATABASE_URL",
            "postgres://hubbub:pw@127.0.0.1:1/hubbub?connect_timeout=2",
        )
        .create();

    // Act
    let checked = app.run_cli(&["config", "check"]);

    // Assert
    let out = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{out}");
    assert!(out.contains("does not answer"), "{out}");
    assert!(out.contains("postgres://hubbub:***@127.0.0.1:1"), "{out}");
}

/// `--version` names the commit and the backends; `--help` lists the commands and where
/// settings come from.
#[actix_web::test]
async fn version_and_help_say_what_the_binary_is_and_where_settings_come_from() {
    // Arrange
    let app = TestApp::builder().create();

    // Act
    let version = app.run_cli(&["--version"]);
    let help = app.run_cli(&["--help"]);

    // Assert
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.contains("(commit ") && version.contains("postgresql"),
        "{version}"
    );
    let help = String::from_utf8_lossy(&help.stdout);
    for word in ["serve", "migrate", "admin", "config", "--config", "HUBBUB_"] {
        assert!(help.contains(word), "{word} in {help}");
    }
}
