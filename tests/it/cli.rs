//! `hubbub admin …`, the real binary against a running test server's own database (SQLite or
//! PostgreSQL, as the server): what it does is seen over HTTP and on the sockets, and its
//! revocations reach the running server through the event log.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{CliRun, TestApp, TestUser};

const PASSWORD: &str = "quartz lantern meadow 19";
const NEW_PASSWORD: &str = "copper violin harbor 64";

/// Signs `username` in over HTTP; the signed-in user.
async fn sign_in(app: &TestApp, username: &str, password: &str) -> TestUser {
    let resp = app.login(username, password).await;
    let cookie = resp.session_cookie().expect("a session cookie");
    let user = resp.expect(200);
    TestUser {
        id: user["id"].as_str().unwrap().to_owned(),
        username: username.into(),
        password: password.into(),
        cookie,
    }
}

#[actix_web::test]
async fn create_user_makes_an_account_that_signs_in_over_http() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let given = app.admin_cli_stdin(
        &["create-user", "alice", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    let generated = app.admin_cli(&["create-user", "bob", "--admin"]);

    // Assert
    assert!(given.ok().contains("created user alice"));
    let out = generated.ok();
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("the generated password is printed")
        .to_owned();
    assert!(password.len() >= 20, "{password}");
    let alice = sign_in(&app, "alice", PASSWORD).await;
    let bob = sign_in(&app, "bob", &password).await;
    assert_eq!(
        alice.get(&app, "/api/v1/me").await.expect(200)["admin"],
        false
    );
    assert_eq!(bob.get(&app, "/api/v1/me").await.expect(200)["admin"], true);
}

#[actix_web::test]
async fn create_user_refuses_a_weak_password_a_taken_name_and_a_bad_name() {
    // Arrange
    let app = TestApp::spawn().await;
    app.register("alice").await;

    // Act
    let weak = app.admin_cli_stdin(&["create-user", "bob", "--password-stdin"], "password\n");
    let taken = app.admin_cli_stdin(&["create-user", "alice", "--password-stdin"], PASSWORD);
    let bad = app.admin_cli_stdin(&["create-user", "no spaces", "--password-stdin"], PASSWORD);
    let empty = app.admin_cli_stdin(&["create-user", "carol", "--password-stdin"], "");

    // Assert
    for (run, says) in [
        (weak, "password"),
        (taken, "taken"),
        (bad, "username"),
        (empty, "no password"),
    ] {
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
    app.login("bob", "password")
        .await
        .expect_error(401, "invalid_credentials");
}

#[actix_web::test]
async fn promote_opens_the_admin_routes_and_demote_closes_them() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    alice
        .get(&app, "/api/v1/admin/users")
        .await
        .expect_error(404, "not_found");

    // Act, Assert
    assert!(app
        .admin_cli(&["promote", "alice"])
        .ok()
        .contains("administrator"));
    alice.get(&app, "/api/v1/admin/users").await.expect(200);
    app.admin_cli(&["demote", "alice"]).ok();
    alice
        .get(&app, "/api/v1/admin/users")
        .await
        .expect_error(404, "not_found");
}

#[actix_web::test]
async fn reset_password_ends_the_users_sessions_and_sockets_on_the_running_server() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let phone = alice.second_session(&app).await;
    let mut ws = alice.socket(&app, None).await;

    // Act
    let started = Instant::now();
    let out = app
        .admin_cli_stdin(
            &["reset-password", "alice", "--password-stdin"],
            NEW_PASSWORD,
        )
        .ok();

    // Assert: the server learns of it from the log at its next poll (1 s).
    assert!(out.contains("2 session(s) ended"), "{out}");
    let (code, _) = ws.expect_close(Duration::from_secs(5)).await;
    assert_eq!(code, 4100);
    assert!(started.elapsed() < Duration::from_secs(5));
    for user in [&alice, &phone] {
        user.get(&app, "/api/v1/me")
            .await
            .expect_error(401, "unauthenticated");
    }
    app.login("alice", &alice.password)
        .await
        .expect_error(401, "invalid_credentials");
    sign_in(&app, "alice", NEW_PASSWORD).await;
}

#[actix_web::test]
async fn deactivate_and_reactivate_from_the_cli() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let mut ws = alice.socket(&app, None).await;

    // Act
    let out = app.admin_cli(&["deactivate", "alice"]).ok();

    // Assert
    assert!(out.contains("alice deactivated"), "{out}");
    let (code, _) = ws.expect_close(Duration::from_secs(5)).await;
    assert_eq!(code, 4100);
    alice
        .get(&app, "/api/v1/me")
        .await
        .expect_error(401, "unauthenticated");
    app.login("alice", &alice.password)
        .await
        .expect_error(403, "account_deactivated");
    app.admin_cli(&["reactivate", "alice"]).ok();
    sign_in(&app, "alice", &alice.password).await;
}

#[actix_web::test]
async fn list_users_shows_name_kind_admin_state_and_creation() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    crate::harness::Bearer::create_bot(&app, &alice, "alices-bot").await;
    app.promote("alice");
    app.admin_cli(&["deactivate", "bob"]).ok();

    // Act
    let out = app.admin_cli(&["list-users"]).ok();

    // Assert
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["USERNAME", "KIND", "ADMIN", "STATE", "CREATED"]);
    assert_eq!(&rows[1][..4], ["alice", "user", "yes", "active"]);
    assert_eq!(&rows[2][..4], ["alices-bot", "bot", "no", "active"]);
    assert_eq!(&rows[3][..4], ["bob", "user", "no", "deactivated"]);
    assert!(rows[1][4].starts_with("20"), "{out}");
    assert_eq!(rows.len(), 4);
}

#[actix_web::test]
async fn an_invite_from_the_cli_registers_in_invite_mode() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_REGISTRATION", "invite")
        .spawn()
        .await;

    // Act
    let code = app
        .admin_cli(&["invite", "--uses", "1", "--expires", "30m"])
        .ok();
    let body = json!({"username": "alice", "password": PASSWORD, "invite_code": code.trim()});
    let resp = crate::harness::send(app.post("/api/v1/users"), Some(&body)).await;

    // Assert
    resp.expect(201);
    let bad = app.admin_cli(&["invite", "--uses", "0"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    let worse = app.admin_cli(&["invite", "--expires", "forever"]);
    assert_eq!(worse.code, 1, "{}", worse.stderr);
}

#[actix_web::test]
async fn unknown_users_fail_and_usage_errors_exit_2() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let unknown = app.admin_cli(&["promote", "nobody"]);
    let usage: Vec<CliRun> = [
        &["admin"][..],
        &["admin", "promote"],
        &["admin", "bogus"],
        &["admin", "reset-password", "alice"],
        &["admin", "invite", "--uses", "many"],
        &["frobnicate"],
    ]
    .iter()
    .map(|args| app.cli_stdin(args, ""))
    .collect();
    let version = app.cli_stdin(&["--version"], "");
    let help = app.cli_stdin(&["admin", "--help"], "");

    // Assert
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("no user named"),
        "{}",
        unknown.stderr
    );
    for run in &usage {
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    }
    assert!(version.ok().starts_with("hubbub "));
    assert!(help.ok().contains("create-user"));
}
