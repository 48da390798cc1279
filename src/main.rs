//! The `hubbub` binary: `hubbub serve` (the default) runs the server, `hubbub migrate` applies
//! the database migrations and exits.

use std::process::ExitCode;

use hubbub::config::Settings;

const USAGE: &str = "usage: hubbub [serve | migrate]\n\nSettings come from HUBBUB_* environment variables; see docs/operations.md.";

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
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hubbub: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "serve" => actix_web::rt::System::new().block_on(hubbub::server::app::serve(settings)),
        "migrate" => {
            hubbub::server::app::migrate(&settings).map(|_| println!("hubbub: migrations applied"))
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
