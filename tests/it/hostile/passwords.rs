//! Password hashing floods: argon2 takes 19 MiB per hash, so failed sign-ins from many
//! addresses once ran an unbounded number of them at once and kept the memory afterwards.

use std::time::Duration;

use futures_util::future::{join, join_all};

use super::{Honest, MIB};
use crate::harness::TestApp;

/// The memory one argon2 hash takes (its default parameters), in KiB.
const ONE_HASH: u64 = 19 * MIB;

#[actix_web::test]
async fn failed_sign_ins_hash_within_the_pool_and_give_their_memory_back() {
    // Arrange: two hashing workers and six places in the queue; the sign-in limit is off
    // (the harness sets it out of reach), as for an attacker with many addresses.
    let app = TestApp::builder()
        .env("HUBBUB_HASH_WORKERS", "2")
        .env("HUBBUB_HASH_QUEUE", "6")
        .spawn()
        .await;
    let honest = Honest::join(&app).await;
    let carol = app.register("carol").await;
    for _ in 0..2 {
        app.login(&carol.username, "wrong password")
            .await
            .expect_error(401, "invalid_credentials");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle, _) = app.memory();
    app.reset_peak_memory();

    // Act: five rounds of 32 failed sign-ins at once, an honest send in each.
    let mut answers = Vec::new();
    for round in 0..5 {
        let flood = join_all((0..32).map(|_| app.login(&carol.username, "wrong password")));
        let (mut got, ()) = join(flood, honest.sends(&app, &format!("round {round}"))).await;
        answers.append(&mut got);
    }
    let (_, peak) = app.memory();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (after, _) = app.memory();

    // Assert: a round's 32 can't all be admitted (two workers and six places), so the rest
    // are refused at once. How many are checked per round depends on how fast the client's 32
    // arrive against how fast a hash ends, so under load a round may check a few more than
    // eight; what bounds the memory is the pool, and the peak below measures that.
    let checked = answers.iter().filter(|a| a.status == 401).count();
    let refused = answers.len() - checked;
    eprintln!("idle {idle} KiB, peak {peak} KiB, 1 s later {after} KiB; {checked} checked");
    for answer in &answers {
        match answer.status {
            401 => drop(answer.expect_error(401, "invalid_credentials")),
            _ => {
                answer.expect_error(503, "server_busy");
                assert!(answer.header("retry-after").is_some());
            }
        }
    }
    assert!(checked >= 5, "only {checked} of 160 were checked");
    assert!(
        refused >= 5 * 8,
        "only {refused} of 160 refused: the queue let in far more than two workers and six places hold"
    );
    assert!(
        peak < idle + 2 * ONE_HASH + 16 * MIB,
        "peak RSS {peak} KiB against {idle} KiB idle: more than two hashes at once"
    );
    assert!(
        after < idle + 8 * MIB,
        "RSS {after} KiB a second after the flood against {idle} KiB before: the hashes' memory stayed"
    );
    let bodies: Vec<String> = (0..5).map(|r| format!("round {r}")).collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    honest.history_has(&app, &bodies).await;
    app.login(&carol.username, &carol.password)
        .await
        .expect(200);
}
