//! The `hubbub` binary: `hubbub serve` (the default) runs the server, `hubbub migrate` applies
//! the database migrations and exits, `hubbub admin …` administers accounts and invites
//! (`server::admin_cli`), `hubbub config check` prints the effective settings. Exit codes: 0
//! done, 1 failed, 2 a usage error or invalid settings.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hubbub::config::sources::{self, Origin, Sources};
use hubbub::config::{Known, SECRETS, URLS_WITH_PASSWORDS};
use hubbub::server::admin_cli::AdminCommand;

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HUBBUB_GIT_COMMIT"),
    ")\nbackends: sqlite (bundled), postgresql; doorbell across nodes: postgresql, redis"
);

/// A self-hostable chat backend: send over REST, receive over a read-only WebSocket.
#[derive(Debug, Parser)]
#[command(
    name = "hubbub",
    version,
    long_version = LONG_VERSION,
    after_help = "Settings: HUBBUB_* environment variables, over a TOML file if one is given \
                  (--config FILE or HUBBUB_CONFIG; keys are the names without HUBBUB_, in lower \
                  case: listen = \"0.0.0.0:8080\"). `hubbub config check` prints them and where \
                  each came from. Every setting is in docs/operations.md."
)]
struct Cli {
    /// A TOML settings file (environment variables override it)
    #[arg(long, global = true, value_name = "FILE", env = "HUBBUB_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server (the default).
    Serve,
    /// Applies the database migrations and exits.
    Migrate,
    /// Administers accounts and invites, against the server's database.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The settings: `hubbub config check`.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Checks the settings and prints the effective ones (secrets masked), each with where it
    /// came from; exits 0 when they are valid, whether or not the database answers (it says).
    Check,
}

/// glibc's allocator raises its mmap threshold each time a large block is freed (up to 32 MiB),
/// after which blocks of that size come from per-thread arenas and stay there: one argon2 hash
/// (19 MiB) or decoded image per blocking thread, kept for good — 300 MB after a burst of
/// failed sign-ins on two cores. A fixed threshold turns that adjustment off, so that every
/// block over 1 MiB is returned when freed (docs/operations.md, "Memory").
fn return_large_blocks_to_the_kernel() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        // Blocks this large come straight from the kernel and go back to it when freed.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    return_large_blocks_to_the_kernel();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // clap exits by itself: 0 for --help and --version, 2 for a usage error.
    let cli = Cli::parse();
    let loaded = Sources::load(cli.config.as_deref(), std::env::vars())
        .and_then(|sources| Ok((sources.settings()?, sources)));
    let ((settings, known), sources) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("hubbub: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            actix_web::rt::System::new().block_on(hubbub::server::app::serve(settings))
        }
        Command::Migrate => {
            hubbub::server::app::migrate(&settings).map(|_| println!("hubbub: migrations applied"))
        }
        Command::Admin { command } => hubbub::server::admin_cli::run(&settings, command),
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let mut out = settings_text(&sources, &known);
            out.push_str(&hubbub::server::app::database_status(&settings));
            out.push('\n');
            // A closed pipe (`| head`) is not an error of ours.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
            Ok(())
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

/// The effective settings as a settings file would hold them, each with where it came from.
fn settings_text(sources: &Sources, known: &[Known]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let version = env!("CARGO_PKG_VERSION");
    let _ = match sources.file() {
        Some(file) => writeln!(
            out,
            "# hubbub {version}: the settings are valid; from {} and the environment",
            file.display()
        ),
        None => writeln!(
            out,
            "# hubbub {version}: the settings are valid; from the environment (no settings file)"
        ),
    };
    for setting in known {
        let key = sources::file_key(setting.key);
        let shown = |value: &str| {
            if SECRETS.contains(&setting.key) {
                "***".to_string()
            } else if URLS_WITH_PASSWORDS.contains(&setting.key) {
                hubbub::store::redact(value)
            } else {
                value.to_string()
            }
        };
        match (sources.get(setting.key), sources.origin(setting.key)) {
            (Some(value), Some(origin)) => {
                let from = match origin {
                    Origin::Environment => format!("{} (environment)", setting.key),
                    file @ Origin::File { .. } => file.to_string(),
                };
                let _ = writeln!(out, "{key} = {:?}  # {from}", shown(&value));
            }
            _ if setting.fixed => {
                let _ = writeln!(out, "{key} = {:?}  # default", setting.default);
            }
            _ => {
                let _ = writeln!(out, "# {key}: {} (default)", setting.default);
            }
        }
    }
    out
}
