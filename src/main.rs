//! The `hubbub` binary: `hubbub serve` (the default) runs the server, `hubbub migrate` applies
//! the database migrations and exits, `hubbub admin …` administers accounts and invites
//! (`server::admin_cli`). Exit codes: 0 done, 1 failed, 2 a usage error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hubbub::config::Settings;
use hubbub::server::admin_cli::AdminCommand;

/// A self-hostable chat backend: send over REST, receive over a read-only WebSocket.
#[derive(Debug, Parser)]
#[command(
    name = "hubbub",
    version,
    after_help = "Settings come from HUBBUB_* environment variables; see docs/operations.md."
)]
struct Cli {
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
    let settings = match Settings::from_env() {
        Ok(s) => s,
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubbub: {e:#}");
            ExitCode::FAILURE
        }
    }
}
