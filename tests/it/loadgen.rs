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
