//! One user, one write bucket: writes spread over many tokens once each drew from a bucket of
//! their own, and a user could create tokens without limit.

use std::time::{Duration, Instant};

use futures_util::future::{join, join_all};
use serde_json::json;

use super::Honest;
use crate::harness::{Bearer, Resp, TestApp};

/// Writes per second per user in these tests; the bucket holds five seconds' worth.
const PER_S: u64 = 4;
const BURST: u64 = 5 * PER_S;

#[actix_web::test]
async fn a_user_writes_from_one_bucket_whatever_credentials_they_use() {
    // Arrange: alice holds a session and four tokens (her cap), and owns a bot.
    let app = TestApp::builder()
        .env("HUBBUB_RATE_WRITES_PER_SEC", &PER_S.to_string())
        .env("HUBBUB_MAX_TOKENS_PER_USER", "4")
        .spawn()
        .await;
    let honest = Honest::join(&app).await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "spam", &[]).await;
    let room = room["id"].as_str().expect("room id").to_owned();
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(Bearer::create_token(&app, &alice, json!(["read", "send"])).await);
    }
    let (_, bot) = Bearer::create_bot(&app, &alice, "alicebot").await;
    let bot_room = bot
        .post(&app, "/api/v1/rooms", &json!({ "name": "bots" }))
        .await
        .expect(201);
    // Her full bucket back (setup drew from it).
    tokio::time::sleep(Duration::from_secs(BURST / PER_S + 1)).await;

    // Act: 20 writes through each of her five credentials at once, an honest send alongside.
    let path = format!("/api/v1/rooms/{room}/messages");
    let started = Instant::now();
    let sends = (0..5 * BURST).map(|i| {
        let (path, tokens, alice) = (&path, &tokens, &alice);
        let app = &app;
        async move {
            let body = json!({ "body": format!("w{i}") });
            match (i % 5) as usize {
                4 => alice.post(app, path, &body).await,
                t => tokens[t].post(app, path, &body).await,
            }
        }
    });
    let (answers, ()): (Vec<Resp>, ()) =
        join(join_all(sends), honest.sends(&app, "alongside")).await;
    let took = started.elapsed().as_secs_f64();

    // Assert: one bucket's worth (plus what refilled meanwhile), the rest 429.
    let created = answers.iter().filter(|a| a.status == 201).count() as u64;
    for limited in answers.iter().filter(|a| a.status != 201) {
        limited.expect_error(429, "rate_limited");
    }
    let refilled = (took * PER_S as f64).ceil() as u64;
    assert!(
        (BURST..=BURST + refilled + 1).contains(&created),
        "{created} of {} writes through five credentials got through in {took:.1} s",
        5 * BURST
    );
    let page = alice.history(&app, &room, "limit=100").await;
    let stored = page["messages"].as_array().expect("messages").len() as u64;
    assert_eq!(stored, created, "every 201 is in the history, nothing else");
    honest.history_has(&app, &["alongside"]).await;

    // Her bot draws from a bucket of its own.
    let bot_room = bot_room["id"].as_str().expect("room id");
    bot.send_message(&app, bot_room, "the bot is not alice")
        .await;
    // And alice is still limited: more at once than her bucket can have refilled since the
    // flood (it refills PER_S a second, however slowly the machine got here) can't all pass.
    let since_flood = started.elapsed().as_secs_f64() - took;
    let more = (since_flood * PER_S as f64).ceil() as usize + 2;
    let still = json!({ "body": "still limited" });
    let again = join_all((0..more).map(|_| alice.post(&app, &path, &still))).await;
    let limited = again.iter().filter(|a| a.status == 429).count();
    assert!(
        limited >= 1,
        "all {more} writes passed {since_flood:.2} s after the flood: her bucket is not shared"
    );
    for answer in again.iter().filter(|a| a.status != 201) {
        answer.expect_error(429, "rate_limited");
    }
}

#[actix_web::test]
async fn bots_are_capped_per_owner_so_they_cant_multiply_a_write_budget() {
    // Arrange: each bot has its own write bucket.
    let app = TestApp::builder()
        .env("HUBBUB_MAX_BOTS_PER_USER", "2")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    // Act: four at once, racing for the two places.
    let bodies: Vec<_> = (0..4)
        .map(|i| json!({ "username": format!("alice-bot-{i}") }))
        .collect();
    let more = join_all(bodies.iter().map(|b| alice.post(&app, "/api/v1/bots", b))).await;

    // Assert
    let created = more.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 2, "exactly the places there were");
    for refused in more.iter().filter(|r| r.status != 201) {
        refused.expect_error(422, "too_many_bots");
    }
    let search = alice
        .get(&app, "/api/v1/users?prefix=alice-bot")
        .await
        .expect(200);
    assert_eq!(
        search["users"].as_array().map(Vec::len),
        Some(2),
        "no refused bot exists"
    );
    Bearer::create_bot(&app, &bob, "bob-bot").await;
}

#[actix_web::test]
async fn personal_tokens_are_capped_per_user() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_MAX_TOKENS_PER_USER", "3")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let first = Bearer::create_token(&app, &alice, json!(["read"])).await;

    // Act: four more at once, racing for the two places left.
    let body = json!({ "name": "one more", "scopes": ["read"] });
    let more = join_all((0..4).map(|_| alice.post(&app, "/api/v1/tokens", &body))).await;

    // Assert
    let created = more.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 2, "exactly the places left");
    for refused in more.iter().filter(|r| r.status != 201) {
        refused.expect_error(422, "too_many_tokens");
    }
    let listed = alice.get(&app, "/api/v1/tokens").await.expect(200);
    assert_eq!(listed["tokens"].as_array().map(Vec::len), Some(3));
    Bearer::create_token(&app, &bob, json!(["read"])).await;
    alice.delete(&app, &first.token_path()).await.expect(204);
    Bearer::create_token(&app, &alice, json!(["read"])).await;
}
