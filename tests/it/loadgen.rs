//! The load generator's smoke run: every scenario at tiny scale against the test build of the
//! server, so that `examples/loadgen` can't rot. No timings are asserted: it fails only on
//! errors or missing deliveries.

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/loadgen`, which `cargo test` builds (but `cargo test --test it`
/// alone does not).
fn loadgen() -> Option<PathBuf> {
    let server = PathBuf::from(env!("CARGO_BIN_EXE_hubbub"));
    let path = server.parent()?.join("examples").join("loadgen");
    path.exists().then_some(path)
}

#[test]
fn the_load_generator_runs_every_scenario_at_tiny_scale() {
    let Some(path) = loadgen() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must build the load generator: run `cargo test` (it builds examples)"
        );
        eprintln!(
            "skipped: build it with `cargo build --example loadgen` (plain `cargo test` does)"
        );
        return;
    };
    let status = Command::new(path)
        .args(["--smoke", "--server", env!("CARGO_BIN_EXE_hubbub")])
        .status()
        .expect("start the load generator");
    assert!(status.success(), "the load generator reported errors");
}
