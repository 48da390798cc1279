//! Accounts and sessions: register, login, logout, and input validation on `/api/v1/users` and `/api/v1/sessions`.

use serde_json::json;

use crate::harness::{send, TestApp};

#[actix_web::test]
async fn register_returns_201_with_user_and_a_working_session_cookie() {
    // Arrange
    let app = TestApp::spawn().await;
    let body =
        json!({ "username": "alice", "password": "correct horse", "display_name": "Alice A." });

    // Act
    let resp = send(app.post("/api/v1/users"), Some(&body)).await;

    // Assert
    let cookie = resp.session_cookie().expect("Set-Cookie hubbub_session");
    let user = resp.expect(201);
    assert!(
        uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok(),
        "{user}"
    );
    assert_eq!(user["username"], "alice");
    assert_eq!(user["display_name"], "Alice A.");
    let created = user["created_at"].as_str().expect("created_at");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );
    assert!(
        user.get("password").is_none() && user.get("password_hash").is_none(),
        "{user}"
    );

    let me = send(
        app.get("/api/v1/me").insert_header(("Cookie", cookie)),
        None,
    )
    .await
    .expect(200);
    // /me adds whether the caller is a server administrator, and their presence setting.
    let mut me = me;
    assert_eq!(me["admin"], false);
    assert_eq!(me["share_presence"], true);
    me.as_object_mut().unwrap().remove("admin");
    me.as_object_mut().unwrap().remove("share_presence");
    assert_eq!(me, user);
}

#[actix_web::test]
async fn display_name_defaults_to_username_and_username_is_stored_lowercase() {
    // Arrange
    let app = TestApp::spawn().await;
    let body = json!({ "username": "Bob.Smith_1", "password": "correct horse" });

    // Act
    let user = send(app.post("/api/v1/users"), Some(&body))
        .await
        .expect(201);

    // Assert
    assert_eq!(user["username"], "bob.smith_1");
    assert_eq!(user["display_name"], "bob.smith_1");
}

#[actix_web::test]
async fn duplicate_username_is_rejected_case_insensitively() {
    // Arrange
    let app = TestApp::spawn().await;
    app.register("alice").await;

    for name in ["alice", "Alice", "ALICE"] {
        // Act
        let body = json!({ "username": name, "password": "another password" });
        let resp = send(app.post("/api/v1/users"), Some(&body)).await;

        // Assert
        resp.expect_error(409, "username_taken");
        assert!(
            resp.session_cookie().is_none(),
            "no session for a failed register"
        );
    }
}

#[actix_web::test]
async fn login_with_the_right_password_returns_the_user_and_a_new_session() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;

    // Act
    let resp = app
        .login(&alice.username.to_uppercase(), &alice.password)
        .await;

    // Assert
    let cookie = resp.session_cookie().expect("login sets a session cookie");
    assert_ne!(cookie, alice.cookie, "a new session per login");
    let user = resp.expect(200);
    assert_eq!(user["id"], alice.id.as_str());
    let me = send(
        app.get("/api/v1/me").insert_header(("Cookie", cookie)),
        None,
    )
    .await
    .expect(200);
    assert_eq!(me["id"], alice.id.as_str());
}

#[actix_web::test]
async fn login_with_a_wrong_password_or_unknown_user_is_invalid_credentials() {
    // Arrange
    let app = TestApp::spawn().await;
    app.register("alice").await;

    for (name, password) in [("alice", "wrong password"), ("nobody", "whatever123")] {
        // Act
        let resp = app.login(name, password).await;

        // Assert
        resp.expect_error(401, "invalid_credentials");
        assert!(resp.session_cookie().is_none());
    }
}

#[actix_web::test]
async fn logout_returns_204_and_the_cookie_stops_working_but_other_sessions_survive() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let other_cookie = app
        .login("alice", &alice.password)
        .await
        .session_cookie()
        .unwrap();

    // Act
    let resp = alice.delete(&app, "/api/v1/sessions/current").await;

    // Assert
    assert_eq!(resp.status, 204, "{}", resp.body);
    alice
        .get(&app, "/api/v1/me")
        .await
        .expect_error(401, "unauthenticated");
    let other = send(
        app.get("/api/v1/me")
            .insert_header(("Cookie", other_cookie)),
        None,
    )
    .await;
    assert_eq!(other.expect(200)["id"], alice.id.as_str());
}

#[actix_web::test]
async fn requests_without_or_with_a_forged_cookie_are_unauthenticated() {
    // Arrange
    let app = TestApp::spawn().await;
    app.register("alice").await;

    // Act
    let none = send(app.get("/api/v1/me"), None).await;
    let forged = send(
        app.get("/api/v1/me")
            .insert_header(("Cookie", "hubbub_session=forged")),
        None,
    )
    .await;
    let rooms = send(
        app.post("/api/v1/rooms"),
        Some(&json!({ "name": "x", "member_ids": [] })),
    )
    .await;

    // Assert
    none.expect_error(401, "unauthenticated");
    forged.expect_error(401, "unauthenticated");
    rooms.expect_error(401, "unauthenticated");
}

#[actix_web::test]
async fn weak_passwords_and_the_username_as_password_are_422_with_the_reason() {
    // Arrange
    let app = TestApp::spawn().await;

    for password in [
        "12345678",
        "aaaaaaaa",
        "        ",
        "mallory1",
        "mallorymallory",
    ] {
        // Act
        let body = json!({ "username": "mallory", "password": password });
        let resp = send(app.post("/api/v1/users"), Some(&body)).await;

        // Assert
        let err = resp.expect_error(422, "validation_failed");
        let why = err["fields"]["password"].as_str().unwrap_or_default();
        assert!(
            why.starts_with("is too easy to guess"),
            "{password:?}: {err}"
        );
    }
    let body = json!({ "username": "mallory", "password": "mallory's long passphrase" });
    send(app.post("/api/v1/users"), Some(&body))
        .await
        .expect(201);
}

#[actix_web::test]
async fn invalid_registrations_are_422_with_field_details_and_create_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    let long = "a".repeat(33);
    let cases = [
        (
            json!({ "username": "ab", "password": "long enough" }),
            "username",
        ),
        (
            json!({ "username": long, "password": "long enough" }),
            "username",
        ),
        (
            json!({ "username": "bad name!", "password": "long enough" }),
            "username",
        ),
        (
            json!({ "username": "carol", "password": "short" }),
            "password",
        ),
        (
            json!({ "username": "carol", "password": "x".repeat(1025) }),
            "password",
        ),
        (
            json!({ "username": "carol", "password": "long enough", "display_name": "" }),
            "display_name",
        ),
        (
            json!({ "username": "carol", "password": "long enough", "display_name": "d".repeat(65) }),
            "display_name",
        ),
    ];

    for (body, field) in &cases {
        // Act
        let resp = send(app.post("/api/v1/users"), Some(body)).await;

        // Assert
        let err = resp.expect_error(422, "validation_failed");
        assert!(
            err["fields"][field].is_string(),
            "fields.{field} for {body}: {err}"
        );
        assert!(resp.session_cookie().is_none());
    }
    // Nothing was written: "carol" is still free, and boundary values are accepted.
    // 1024 characters without a pattern for the strength estimate to find.
    let long: String = (0u32..1024)
        .map(|i| char::from(b'!' + ((i * 7919 + i * i * 31) % 90) as u8))
        .collect();
    let ok = json!({ "username": "carol", "password": long, "display_name": "d".repeat(64) });
    send(app.post("/api/v1/users"), Some(&ok)).await.expect(201);
    let ok = json!({ "username": "a".repeat(32), "password": "kW9!zq7Y" });
    send(app.post("/api/v1/users"), Some(&ok)).await.expect(201);
}
