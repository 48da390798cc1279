//! The `hubbub` binary: `hubbub serve` (the default) runs the server, `hubbub migrate` applies
//! the database migrations and exits.

use std::process::ExitCode;

use hubbub::config::Settings;

const USAGE: &str = "usage: hubbub [serve | migrate]\n\nSettings come from HUBBUB_* environment variables; see docs/operations.md.";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hubbub: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "serve" => actix_web::rt::System::new().block_on(hubbub::app::serve(settings)),
        "migrate" => {
            hubbub::app::migrate(&settings).map(|_| println!("hubbub: migrations applied"))
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("hubbub: unknown command {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubbub: {e:#}");
            ExitCode::FAILURE
        }
    }
}
