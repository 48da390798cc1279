//! Test harness, command line: `hubbub admin …` against a test server's own database.

use std::io::Write;
use std::process::{Output, Stdio};

use super::TestApp;

/// What a finished CLI run printed, and how it exited.
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for CliRun {
    fn from(out: Output) -> CliRun {
        CliRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl CliRun {
    /// Asserts exit 0 and returns standard output.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "hubbub admin failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }
}

impl TestApp {
    /// Runs `hubbub admin <args>` with this app's settings (data dir, database, environment).
    pub fn admin_cli(&self, args: &[&str]) -> CliRun {
        self.admin_cli_stdin(args, "")
    }

    /// Runs `hubbub admin <args>` with `stdin` on its standard input.
    pub fn admin_cli_stdin(&self, args: &[&str], stdin: &str) -> CliRun {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        self.cli_stdin(&all, stdin)
    }

    /// Runs `hubbub <args>` (any command line) with `stdin` on its standard input.
    pub fn cli_stdin(&self, args: &[&str], stdin: &str) -> CliRun {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run hubbub");
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        child.wait_with_output().expect("wait for hubbub").into()
    }

    /// Makes `username` a server administrator (`hubbub admin promote`).
    pub fn promote(&self, username: &str) {
        self.admin_cli(&["promote", username]).ok();
    }
}
