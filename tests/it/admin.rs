//! Server administrators over REST: `/api/v1/admin/` is an unknown endpoint to everyone else
//! (whatever the method, body or credential); the users list; deactivation ends every
//! credential and socket of the account and of its bots and refuses its sign-in; reactivation
//! lets it back with none of them.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{send, send_raw, Bearer, Resp, TestApp, TestUser};

/// Every administrators' path (ids made up: the gate answers before any lookup).
const ADMIN_PATHS: &[&str] = &[
    "/api/v1/admin",
    "/api/v1/admin/",
    "/api/v1/admin/users",
    "/api/v1/admin/users/018f0000-0000-7000-8000-000000000000/deactivate",
    "/api/v1/admin/users/018f0000-0000-7000-8000-000000000000/reactivate",
    "/api/v1/admin/invites",
    "/api/v1/admin/invites/018f0000-0000-7000-8000-000000000000",
    "/api/v1/admin/no-such-thing",
    "/api/v1/%61dmin/users",
];

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `method path` as `who` (a cookie, a bearer token, or nobody) with a malformed JSON body for
/// writes, so that anything answering before the admin check would show.
async fn call(app: &TestApp, method: &str, path: &str, auth: Option<(&str, String)>) -> Resp {
    let mut req = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .insert_header(("Content-Type", "application/json"));
    if let Some(header) = auth {
        req = req.insert_header(header);
    }
    let body = if matches!(method, "GET" | "HEAD" | "OPTIONS") {
        Vec::new()
    } else {
        b"{not json".to_vec()
    };
    send_raw(req, body).await
}

#[actix_web::test]
async fn admin_paths_are_unknown_endpoints_to_everyone_but_administrators() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let token = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;
    let callers: Vec<(&str, Option<(&str, String)>)> = vec![
        ("anonymous", None),
        ("a user's cookie", Some(("Cookie", alice.cookie.clone()))),
        (
            "a user's token",
            Some(("Authorization", token.authorization())),
        ),
        (
            "a wrong token",
            Some(("Authorization", "Bearer hb_nope".into())),
        ),
    ];

    for (who, auth) in &callers {
        for method in METHODS {
            for path in ADMIN_PATHS {
                // Act
                let resp = call(&app, method, path, auth.clone()).await;

                // Assert
                assert_eq!(resp.status, 404, "{method} {path} as {who}: {}", resp.body);
                if *method != "HEAD" {
                    resp.expect_error(404, "not_found");
                }
            }
        }
    }
}

#[actix_web::test]
async fn administrators_reach_the_routes_and_a_wrong_method_is_405_for_them() {
    // Arrange
    let app = TestApp::spawn().await;
    let root = app.register("root").await;
    app.promote("root");

    // Act
    let users = root.get(&app, "/api/v1/admin/users").await;
    let wrong = send(
        root.req(app.client.delete(app.url("/api/v1/admin/users"))),
        None,
    )
    .await;
    let unknown = root.get(&app, "/api/v1/admin/no-such-thing").await;

    // Assert
    users.expect(200);
    wrong.expect_error(405, "method_not_allowed");
    assert!(wrong.header("allow").is_some_and(|a| a.contains("GET")));
    unknown.expect_error(404, "not_found");
}

#[actix_web::test]
async fn me_says_whether_the_caller_is_an_administrator_and_others_never_see_it() {
    // Arrange
    let app = TestApp::spawn().await;
    let root = app.register("root").await;
    let alice = app.register("alice").await;
    app.promote("root");

    // Act
    let root_me = root.get(&app, "/api/v1/me").await.expect(200);
    let alice_me = alice.get(&app, "/api/v1/me").await.expect(200);
    let root_seen = alice
        .get(&app, &format!("/api/v1/users/{}", root.id))
        .await
        .expect(200);

    // Assert
    assert_eq!(root_me["admin"], true);
    assert_eq!(alice_me["admin"], false);
    assert!(root_seen.get("admin").is_none(), "{root_seen}");
}

fn usernames(page: &Value) -> Vec<&str> {
    page["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn the_users_list_filters_by_part_of_the_name_and_pages_by_username() {
    // Arrange
    let app = TestApp::spawn().await;
    let root = app.register("root").await;
    app.promote("root");
    for name in ["anna", "bob", "hannah", "joanna"] {
        app.register(name).await;
    }
    let (_, _bot) = Bearer::create_bot(&app, &root, "annabot").await;

    // Act
    let first = root
        .get(&app, "/api/v1/admin/users?q=ann&limit=2")
        .await
        .expect(200);
    let after = first["next_after"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = root
        .get(
            &app,
            &format!("/api/v1/admin/users?q=ann&limit=2&after={after}"),
        )
        .await
        .expect(200);
    let all = root.get(&app, "/api/v1/admin/users").await.expect(200);
    let bad = root.get(&app, "/api/v1/admin/users?q=%25").await;
    let too_many = root.get(&app, "/api/v1/admin/users?limit=101").await;

    // Assert
    let doc = crate::openapi::document(&app).await;
    crate::openapi::fits(&doc, "get", "/api/v1/admin/users", 200, &all);
    assert_eq!(usernames(&first), ["anna", "annabot"]);
    assert_eq!(usernames(&second), ["hannah", "joanna"]);
    assert!(second["next_after"].is_null());
    assert_eq!(
        usernames(&all),
        ["anna", "annabot", "bob", "hannah", "joanna", "root"]
    );
    let root_row = &all["users"][5];
    assert_eq!(root_row["admin"], true);
    assert_eq!(root_row["kind"], "user");
    assert!(root_row["deactivated_at"].is_null() && root_row["deleted_at"].is_null());
    assert_eq!(all["users"][1]["kind"], "bot");
    bad.expect_error(400, "invalid_query");
    too_many.expect_error(400, "invalid_query");
}

#[actix_web::test]
async fn deactivation_ends_the_credentials_and_sockets_of_the_user_and_their_bots_and_refuses_sign_in(
) {
    // Arrange
    let app = TestApp::spawn().await;
    let root = app.register("root").await;
    app.promote("root");
    let alice = app.register("alice").await;
    let phone = alice.second_session(&app).await;
    let token = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;
    let (_, bot) = Bearer::create_bot(&app, &alice, "alices-bot").await;
    let ticket = token.ticket(&app).await;
    let mut cookie_ws = alice.socket(&app, None).await;
    let mut phone_ws = phone.socket(&app, None).await;
    let mut token_ws = token.socket(&app, None).await;
    let mut bot_ws = bot.socket(&app, None).await;
    let mut root_ws = root.socket(&app, None).await;

    // Act
    let path = format!("/api/v1/admin/users/{}/deactivate", alice.id);
    let resp = root.post(&app, &path, &json!({})).await;

    // Assert
    let user = resp.expect(200);
    let doc = crate::openapi::document(&app).await;
    crate::openapi::fits(
        &doc,
        "post",
        "/api/v1/admin/users/{id}/deactivate",
        200,
        &user,
    );
    assert_eq!(user["username"], "alice");
    assert!(user["deactivated_at"].is_string(), "{user}");
    for ws in [&mut cookie_ws, &mut phone_ws, &mut token_ws, &mut bot_ws] {
        let (code, _) = ws.expect_close(Duration::from_secs(2)).await;
        assert_eq!(code, 4100);
    }
    root_ws.expect_silence(200).await;
    alice
        .get(&app, "/api/v1/me")
        .await
        .expect_error(401, "unauthenticated");
    token
        .get(&app, "/api/v1/me")
        .await
        .expect_error(401, "invalid_token");
    assert!(app.ticket_socket(&ticket).await.is_err());
    // Their bot stops with them.
    bot.get(&app, "/api/v1/me")
        .await
        .expect_error(401, "invalid_token");
    app.login("alice", &alice.password)
        .await
        .expect_error(403, "account_deactivated");
    app.login("alice", "not the password")
        .await
        .expect_error(401, "invalid_credentials");
    let listed = root
        .get(&app, "/api/v1/admin/users?q=alice")
        .await
        .expect(200);
    assert!(listed["users"][0]["deactivated_at"].is_string());
}

#[actix_web::test]
async fn reactivation_lets_the_user_sign_in_again_but_brings_no_credential_back() {
    // Arrange
    let app = TestApp::spawn().await;
    let root = app.register("root").await;
    app.promote("root");
    let alice = app.register("alice").await;
    let token = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;
    let (_, bot) = Bearer::create_bot(&app, &alice, "alices-bot").await;
    root.post(
        &app,
        &format!("/api/v1/admin/users/{}/deactivate", alice.id),
        &json!({}),
    )
    .await
    .expect(200);

    // Act
    let resp = root
        .post(
            &app,
            &format!("/api/v1/admin/users/{}/reactivate", alice.id),
            &json!({}),
        )
        .await;

    // Assert
    let user = resp.expect(200);
    assert!(user["deactivated_at"].is_null());
    let back = app.login("alice", &alice.password).await;
    let cookie = back.session_cookie().expect("a session");
    back.expect(200);
    let again = TestUser {
        cookie,
        ..alice.clone()
    };
    again.get(&app, "/api/v1/me").await.expect(200);
    // The sessions and tokens from before stay ended, the bot's too.
    alice
        .get(&app, "/api/v1/me")
        .await
        .expect_error(401, "unauthenticated");
    for old in [&token, &bot] {
        old.get(&app, "/api/v1/me")
            .await
            .expect_error(401, "invalid_token");
    }
}

#[actix_web::test]
async fn an_administrator_cannot_deactivate_themselves_and_unknown_users_are_404() {
    // Arrange
    let app = TestApp::spawn().await;
    let root = app.register("root").await;
    app.promote("root");

    // Act
    let own = root
        .post(
            &app,
            &format!("/api/v1/admin/users/{}/deactivate", root.id),
            &json!({}),
        )
        .await;
    let unknown = root
        .post(
            &app,
            "/api/v1/admin/users/018f0000-0000-7000-8000-000000000000/deactivate",
            &json!({}),
        )
        .await;

    // Assert
    own.expect_error(409, "cannot_deactivate_self");
    unknown.expect_error(404, "user_not_found");
    root.get(&app, "/api/v1/admin/users").await.expect(200);
}

#[actix_web::test]
async fn a_deactivated_administrator_loses_the_admin_routes() {
    // Arrange
    let app = TestApp::spawn().await;
    let root = app.register("root").await;
    let other = app.register("other").await;
    app.promote("root");
    app.promote("other");
    let other_token = Bearer::create_token(&app, &other, json!(["read", "send"])).await;

    // Act
    root.post(
        &app,
        &format!("/api/v1/admin/users/{}/deactivate", other.id),
        &json!({}),
    )
    .await
    .expect(200);
    app.admin_cli(&["reactivate", "other"]).ok();
    let signed_in = app.login("other", &other.password).await;
    let cookie = signed_in.session_cookie().expect("a session");
    signed_in.expect(200);
    let other_again = TestUser {
        cookie,
        ..other.clone()
    };

    // Assert: the old token died with the deactivation; reactivated, they are still admin.
    other_token
        .get(&app, "/api/v1/admin/users")
        .await
        .expect_error(404, "not_found");
    other_again
        .get(&app, "/api/v1/admin/users")
        .await
        .expect(200);
}

/// An RFC 3339 time from a response.
fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value.as_str().unwrap_or_else(|| panic!("a time: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&chrono::Utc)
}

#[actix_web::test]
async fn invites_are_made_listed_without_their_code_and_deleted() {
    // Arrange
    let app = TestApp::spawn().await;
    let root = app.register("root").await;
    app.promote("root");

    // Act
    let before = chrono::Utc::now();
    let made = root
        .post(
            &app,
            "/api/v1/admin/invites",
            &json!({"uses": 3, "expires_in": "12h"}),
        )
        .await
        .expect(201);
    let default = root
        .post(&app, "/api/v1/admin/invites", &json!({}))
        .await
        .expect(201);
    let after = chrono::Utc::now();
    let list = root.get(&app, "/api/v1/admin/invites").await.expect(200);
    let id = made["id"].as_str().unwrap();
    let deleted = root
        .delete(&app, &format!("/api/v1/admin/invites/{id}"))
        .await;
    let again = root
        .delete(&app, &format!("/api/v1/admin/invites/{id}"))
        .await;
    let remaining = root.get(&app, "/api/v1/admin/invites").await.expect(200);

    // Assert
    let doc = crate::openapi::document(&app).await;
    crate::openapi::fits(&doc, "post", "/api/v1/admin/invites", 201, &made);
    crate::openapi::fits(&doc, "get", "/api/v1/admin/invites", 200, &list);
    let code = made["code"].as_str().unwrap();
    assert!(code.len() >= 22, "{code}");
    assert!(code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_eq!(
        (made["uses"].as_i64(), made["uses_left"].as_i64()),
        (Some(3), Some(3))
    );
    assert_eq!(default["uses"], 1);
    // expires_at is the creation time plus the requested lifetime (7 days without one).
    for (invite, lifetime) in [
        (&made, chrono::Duration::hours(12)),
        (&default, chrono::Duration::days(7)),
    ] {
        let created = time(&invite["created_at"]);
        let expires = time(&invite["expires_at"]);
        assert_eq!(expires - created, lifetime, "{invite}");
        let slack = chrono::Duration::seconds(1);
        assert!(
            before - slack <= created && created <= after + slack,
            "created now: {invite}"
        );
    }
    let listed = list["invites"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|i| i.get("code").is_none()), "{list}");
    assert_eq!(deleted.status, 204);
    again.expect_error(404, "invite_not_found");
    assert_eq!(remaining["invites"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn invite_inputs_out_of_range_are_422_and_make_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    let root = app.register("root").await;
    app.promote("root");

    for body in [
        json!({"uses": 0}),
        json!({"uses": 1001}),
        json!({"expires_in": "366d"}),
        json!({"expires_in": "7 weeks"}),
        json!({"expires_in": "0m"}),
    ] {
        // Act
        let resp = root.post(&app, "/api/v1/admin/invites", &body).await;

        // Assert
        resp.expect_error(422, "validation_failed");
    }
    let list = root.get(&app, "/api/v1/admin/invites").await.expect(200);
    assert!(list["invites"].as_array().unwrap().is_empty());
}
