//! Registration modes (`HUBBUB_REGISTRATION`): `closed` refuses, `invite` needs a code (made
//! with the CLI or over REST) with a use left, which concurrent registrations can't over-spend and a refused account doesn't
//! spend; `open` on a public address says so loudly at start-up.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::harness::{send, Bearer, Resp, TestApp, TestUser};

const PASSWORD: &str = "plum saddle orchard 77";

async fn register(app: &TestApp, username: &str, code: Option<&str>) -> Resp {
    let mut body = json!({ "username": username, "password": PASSWORD });
    if let Some(code) = code {
        body["invite_code"] = Value::String(code.to_owned());
    }
    send(app.post("/api/v1/users"), Some(&body)).await
}

async fn invite_mode() -> TestApp {
    TestApp::builder()
        .env("HUBBUB_REGISTRATION", "invite")
        .spawn()
        .await
}

/// An invite code from the CLI.
fn invite(app: &TestApp, uses: u32, expires: &str) -> String {
    let out = app
        .admin_cli(&["invite", "--uses", &uses.to_string(), "--expires", expires])
        .ok();
    out.trim().to_owned()
}

/// A server administrator made with the CLI (registration may be closed to everyone else),
/// signed in.
async fn administrator(app: &TestApp) -> TestUser {
    app.admin_cli_stdin(
        &["create-user", "root", "--admin", "--password-stdin"],
        PASSWORD,
    )
    .ok();
    let signed_in = app.login("root", PASSWORD).await;
    let cookie = signed_in.session_cookie().expect("a session");
    TestUser {
        id: signed_in.expect(200)["id"].as_str().unwrap().to_owned(),
        username: "root".into(),
        password: PASSWORD.into(),
        cookie,
    }
}

#[actix_web::test]
async fn closed_registration_refuses_everyone_but_the_cli_and_bots_still_work() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_REGISTRATION", "closed")
        .spawn()
        .await;

    // Act
    let refused = register(&app, "mallory", None).await;
    app.admin_cli_stdin(&["create-user", "alice", "--password-stdin"], PASSWORD)
        .ok();
    let alice_in = app.login("alice", PASSWORD).await;

    // Assert
    refused.expect_error(403, "registration_closed");
    app.login("mallory", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
    let cookie = alice_in.session_cookie().expect("a session");
    alice_in.expect(200);
    let alice = TestUser {
        id: String::new(),
        username: "alice".into(),
        password: PASSWORD.into(),
        cookie,
    };
    // A signed-in user may still make bots: they are not registrations.
    let (_, bot) = Bearer::create_bot(&app, &alice, "alices-bot").await;
    bot.get(&app, "/api/v1/me").await.expect(200);
}

#[actix_web::test]
async fn invite_mode_needs_a_valid_code() {
    // Arrange
    let app = invite_mode().await;
    let code = invite(&app, 1, "7d");

    // Act
    let without = register(&app, "alice", None).await;
    let empty = register(&app, "alice", Some("")).await;
    let unknown = register(&app, "alice", Some("not-a-code")).await;
    let huge = register(&app, "alice", Some(&"x".repeat(5000))).await;
    let with = register(&app, "alice", Some(&code)).await;
    let reused = register(&app, "bob", Some(&code)).await;

    // Assert
    without.expect_error(403, "invite_required");
    empty.expect_error(403, "invite_required");
    unknown.expect_error(403, "invalid_invite");
    huge.expect_error(403, "invalid_invite");
    assert_eq!(with.expect(201)["username"], "alice");
    reused.expect_error(403, "invalid_invite");
}

#[actix_web::test]
async fn an_invite_code_is_never_over_spent_by_concurrent_registrations() {
    // Arrange: enough hashing workers that the registrations reach their transactions together.
    let app = TestApp::builder()
        .env("HUBBUB_REGISTRATION", "invite")
        .env("HUBBUB_HASH_WORKERS", "10")
        .spawn()
        .await;
    let code = invite(&app, 2, "1h");

    // Act
    let attempts = (0..10).map(|i| {
        let app = &app;
        let code = code.clone();
        async move { register(app, &format!("user{i}"), Some(&code)).await }
    });
    let answers = join_all(attempts).await;

    // Assert
    let created = answers.iter().filter(|r| r.status == 201).count();
    let refused = answers
        .iter()
        .filter(|r| r.status == 403 && r.body["error"]["code"] == "invalid_invite")
        .count();
    assert_eq!(
        (created, refused),
        (2, 8),
        "{:?}",
        answers.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let listed = app.admin_cli(&["list-users"]).ok();
    assert_eq!(listed.lines().filter(|l| l.starts_with("user")).count(), 2);
}

#[actix_web::test]
async fn a_taken_username_spends_no_use_of_the_code() {
    // Arrange
    let app = invite_mode().await;
    app.admin_cli_stdin(&["create-user", "alice", "--password-stdin"], PASSWORD)
        .ok();
    let code = invite(&app, 1, "7d");

    // Act
    let taken = register(&app, "alice", Some(&code)).await;
    let weak = send(
        app.post("/api/v1/users"),
        Some(&json!({"username": "bob", "password": "password", "invite_code": code})),
    )
    .await;
    let fresh = register(&app, "bob", Some(&code)).await;

    // Assert
    taken.expect_error(409, "username_taken");
    assert_eq!(weak.status, 422, "{}", weak.body);
    fresh.expect(201);
    register(&app, "carol", Some(&code))
        .await
        .expect_error(403, "invalid_invite");
}

#[actix_web::test]
async fn an_expired_code_is_refused() {
    // Arrange
    let app = invite_mode().await;
    let code = invite(&app, 5, "1s");

    // Act
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    let late = register(&app, "alice", Some(&code)).await;

    // Assert
    late.expect_error(403, "invalid_invite");
}

#[actix_web::test]
async fn an_invite_made_over_rest_registers_as_many_users_as_its_uses() {
    // Arrange
    let app = invite_mode().await;
    let root = administrator(&app).await;
    let made = root
        .post(&app, "/api/v1/admin/invites", &json!({"uses": 2}))
        .await
        .expect(201);
    let code = made["code"].as_str().unwrap();
    let uses_left = |list: &Value| {
        list["invites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == made["id"])
            .map(|i| i["uses_left"].clone())
    };

    // Act
    let first = register(&app, "alice", Some(code)).await;
    let after_one = root.get(&app, "/api/v1/admin/invites").await.expect(200);
    let second = register(&app, "bob", Some(code)).await;
    let over = register(&app, "carol", Some(code)).await;

    // Assert
    assert_eq!(first.expect(201)["username"], "alice");
    assert_eq!(uses_left(&after_one), Some(json!(1)), "{after_one}");
    assert_eq!(second.expect(201)["username"], "bob");
    over.expect_error(403, "invalid_invite");
    let after = root.get(&app, "/api/v1/admin/invites").await.expect(200);
    assert_eq!(
        uses_left(&after),
        None,
        "used up, no longer listed: {after}"
    );
    app.login("bob", PASSWORD).await.expect(200);
    app.login("carol", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
}

#[actix_web::test]
async fn a_deleted_invite_stops_working() {
    // Arrange
    let app = invite_mode().await;
    let root = administrator(&app).await;
    let made = root
        .post(&app, "/api/v1/admin/invites", &json!({"uses": 5}))
        .await
        .expect(201);

    // Act
    root.delete(
        &app,
        &format!("/api/v1/admin/invites/{}", made["id"].as_str().unwrap()),
    )
    .await;
    let after = register(&app, "alice", made["code"].as_str()).await;

    // Assert
    after.expect_error(403, "invalid_invite");
}

#[actix_web::test]
async fn open_mode_ignores_invite_codes() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let resp = register(&app, "alice", Some("anything")).await;

    // Assert
    resp.expect(201);
}

#[actix_web::test]
async fn open_registration_on_a_public_address_warns_at_start_up() {
    // Arrange, Act
    let public = TestApp::builder()
        .env("HUBBUB_LISTEN", "0.0.0.0:0")
        .spawn()
        .await;
    let private = TestApp::spawn().await;
    let invite_only = TestApp::builder()
        .env("HUBBUB_LISTEN", "0.0.0.0:0")
        .env("HUBBUB_REGISTRATION", "invite")
        .spawn()
        .await;

    // Assert (the log is read by another thread: give it a moment)
    let warns = |app: &TestApp| {
        app.server_log()
            .contains("ANYONE who can reach this server")
    };
    for _ in 0..40 {
        if warns(&public) {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(warns(&public), "{}", public.server_log());
    assert!(!warns(&private));
    assert!(!warns(&invite_only));
}
