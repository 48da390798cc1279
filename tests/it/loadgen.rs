//! The load generator's smoke run: every scenario at tiny scale against the test build of the
//! server, so that `hubbub-bench` can't rot. No timings are asserted: it fails only on errors
//! or missing deliveries.

use std::process::Command;

#[test]
fn the_load_generator_runs_every_scenario_at_tiny_scale() {
    let status = Command::new(env!("CARGO_BIN_EXE_hubbub-bench"))
        .args(["--smoke", "--server", env!("CARGO_BIN_EXE_hubbub")])
        .status()
        .expect("start hubbub-bench");
    assert!(status.success(), "the load generator reported errors");
}

/// `hostile` is not in `all`: the seven attacks of #14 at tiny scale, against a server that
/// keeps its write limit. Fails if an honest send failed or the server stopped answering.
#[test]
fn the_load_generator_runs_the_hostile_attacks_at_tiny_scale() {
    let status = Command::new(env!("CARGO_BIN_EXE_hubbub-bench"))
        .args([
            "--smoke",
            "--server",
            env!("CARGO_BIN_EXE_hubbub"),
            "hostile",
        ])
        .status()
        .expect("start hubbub-bench");
    assert!(status.success(), "an honest client failed during an attack");
}

/// `push` is not in `all`: the push worker's throughput at tiny scale, against the bench's own
/// Web Push receiver. Fails if a push is missing or a request isn't Web Push.
#[test]
fn the_load_generator_runs_the_push_scenario_at_tiny_scale() {
    let status = Command::new(env!("CARGO_BIN_EXE_hubbub-bench"))
        .args(["--smoke", "--server", env!("CARGO_BIN_EXE_hubbub"), "push"])
        .status()
        .expect("start hubbub-bench");
    assert!(status.success(), "pushes were missing or malformed");
}

/// `typing` is not in `all`: sends alone and beside typists at tiny scale. Fails if a send or a
/// typing call failed.
#[test]
fn the_load_generator_runs_the_typing_scenario_at_tiny_scale() {
    let status = Command::new(env!("CARGO_BIN_EXE_hubbub-bench"))
        .args([
            "--smoke",
            "--server",
            env!("CARGO_BIN_EXE_hubbub"),
            "typing",
        ])
        .status()
        .expect("start hubbub-bench");
    assert!(status.success(), "a send or a typing call failed");
}

/// `presence` and `search` are not in `all`: sends beside users coming online and going offline,
/// and searches over a small store, at tiny scale. Fails if a send, a long poll or a search failed.
#[test]
fn the_load_generator_runs_the_presence_and_search_scenarios_at_tiny_scale() {
    let status = Command::new(env!("CARGO_BIN_EXE_hubbub-bench"))
        .args([
            "--smoke",
            "--server",
            env!("CARGO_BIN_EXE_hubbub"),
            "--env",
            "HUBBUB_PRESENCE_GRACE_MS=1000",
            "--env",
            "HUBBUB_PRESENCE_WINDOW_MS=3000",
            "presence",
            "search",
        ])
        .status()
        .expect("start hubbub-bench");
    assert!(status.success(), "a send, a long poll or a search failed");
}
