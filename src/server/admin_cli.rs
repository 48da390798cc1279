//! `hubbub admin …`: server administration from the command line, against the database the
//! server uses (same `HUBBUB_*` settings), migrating it first if needed. Works whatever
//! `HUBBUB_REGISTRATION` says. Revocations are appended to the event log by a writer like the
//! server's, so running servers close the sockets they concern: at once when `HUBBUB_REDIS_URL`
//! is set (this command rings the doorbell), else at their next poll (`HUBBUB_POLL_INTERVAL_MS`).

use std::io::BufRead;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;

use crate::config::Settings;
use crate::core::admin::{self, AdminUser};
use crate::core::work::Pool;
use crate::error::{Class, Error};
use crate::realtime::doorbell;
use crate::server::app::{self, Offline};

/// The `hubbub admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Creates an account (in every registration mode). Without --password-stdin a strong
    /// password is generated and printed once.
    CreateUser {
        name: String,
        /// Make it a server administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sets a user's password (read from standard input) and ends all their sessions.
    ResetPassword {
        name: String,
        /// Read the password from the first line of standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Makes a user a server administrator.
    Promote { name: String },
    /// Takes a user's administrator rights away.
    Demote { name: String },
    /// Turns an account off: it can't sign in, and every session, token and socket of it ends.
    Deactivate { name: String },
    /// Turns a deactivated account back on.
    Reactivate { name: String },
    /// Lists every account: username, kind, admin, state, created.
    ListUsers,
    /// Makes an invite code (for HUBBUB_REGISTRATION=invite) and prints it.
    Invite {
        /// How many accounts it may make (1-1000).
        #[arg(long, default_value_t = 1)]
        uses: i32,
        /// How long it works: 30m, 12h, 7d… (at most 365d).
        #[arg(long, default_value = "7d")]
        expires: String,
    },
}

/// Runs one subcommand; prints what it did on standard output. An `Err` is a failure (exit 1).
pub fn run(settings: &Settings, command: AdminCommand) -> anyhow::Result<()> {
    // Read before anything else: a missing password is the caller's mistake, found at once.
    let password = match &command {
        AdminCommand::CreateUser {
            password_stdin: true,
            ..
        }
        | AdminCommand::ResetPassword { .. } => Some(read_password()?),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let offline = app::offline(settings)?;
        let head = *offline.head.borrow();
        let done = execute(settings, &offline, command, password).await;
        // Other nodes learn of revocations through the log; ring them so they don't wait for
        // their next poll.
        let appended = *offline.head.borrow();
        if let (Some(url), true) = (&settings.redis_url, appended > head) {
            if let Err(e) = doorbell::ring_once(url, appended, Duration::from_secs(3)).await {
                eprintln!(
                    "hubbub: could not ring the servers' doorbell ({e:#}); they notice within HUBBUB_POLL_INTERVAL_MS"
                );
            }
        }
        done
    })
}

/// The first line of standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

/// A core error as one line a person can act on.
fn explain(e: Error) -> anyhow::Error {
    if e.class == Class::Internal || e.class == Class::Unavailable {
        return anyhow!(e);
    }
    let mut text = e.message.clone();
    if let Some(fields) = &e.fields {
        let details: Vec<String> = fields.iter().map(|(f, why)| format!("{f} {why}")).collect();
        text = format!("{text}: {}", details.join("; "));
    }
    anyhow!(text)
}

async fn user(offline: &Offline, name: &str) -> anyhow::Result<AdminUser> {
    admin::find_by_username(&offline.db, name)
        .await
        .map_err(|e| match e.code {
            "user_not_found" => anyhow!("no user named {name:?}"),
            _ => explain(e),
        })
}

async fn execute(
    settings: &Settings,
    offline: &Offline,
    command: AdminCommand,
    password: Option<String>,
) -> anyhow::Result<()> {
    let hashes = Pool::new("password", 1, 1, settings.work_wait);
    match command {
        AdminCommand::CreateUser { name, admin, .. } => {
            let generated = password.is_none();
            let password = password.unwrap_or_else(admin::random_password);
            let user = admin::create_user(&offline.db, &hashes, name, password.clone(), admin)
                .await
                .map_err(explain)?;
            let role = if admin { " (administrator)" } else { "" };
            println!("created user {}{role}", user.username);
            if generated {
                println!("password: {password}");
            }
        }
        AdminCommand::ResetPassword { name, .. } => {
            let target = user(offline, &name).await?;
            let password = password.unwrap_or_default();
            let ended = admin::reset_password(&offline.writer, &hashes, target, password)
                .await
                .map_err(explain)?;
            println!(
                "password of {name} changed; {} session(s) ended",
                ended.len()
            );
        }
        AdminCommand::Promote { name } => {
            let target = user(offline, &name).await?;
            admin::set_admin(&offline.db, target.id, true)
                .await
                .map_err(explain)?;
            println!("{name} is now an administrator");
        }
        AdminCommand::Demote { name } => {
            let target = user(offline, &name).await?;
            admin::set_admin(&offline.db, target.id, false)
                .await
                .map_err(explain)?;
            println!("{name} is no longer an administrator");
        }
        AdminCommand::Deactivate { name } => {
            let target = user(offline, &name).await?;
            let (_, revoked) = admin::deactivate(&offline.writer, None, target.id)
                .await
                .map_err(explain)?;
            println!(
                "{name} deactivated; {} session(s) and token(s) revoked",
                revoked.len()
            );
        }
        AdminCommand::Reactivate { name } => {
            let target = user(offline, &name).await?;
            admin::reactivate(&offline.db, target.id)
                .await
                .map_err(explain)?;
            println!("{name} reactivated");
        }
        AdminCommand::ListUsers => list_users(offline).await?,
        AdminCommand::Invite { uses, expires } => {
            let secs = admin::parse_duration(&expires).ok_or_else(|| {
                anyhow!("--expires {expires:?}: expected a duration such as 30m, 12h or 7d")
            })?;
            let invite = admin::create_invite(&offline.db, None, uses, secs)
                .await
                .map_err(explain)?;
            println!("{}", invite.code);
            if let Some(at) = invite.expires_at {
                eprintln!(
                    "hubbub: invite {} good for {} account(s) until {at}",
                    invite.id, invite.uses
                );
            }
        }
    }
    Ok(())
}

async fn list_users(offline: &Offline) -> anyhow::Result<()> {
    println!(
        "{:<32} {:<5} {:<5} {:<11} CREATED",
        "USERNAME", "KIND", "ADMIN", "STATE"
    );
    let mut after = None;
    loop {
        let (users, next) = admin::list_users(&offline.db, None, after, admin::MAX_LIST)
            .await
            .map_err(explain)?;
        for u in &users {
            let state = if u.deleted_at.is_some() {
                "deleted"
            } else if u.deactivated_at.is_some() {
                "deactivated"
            } else {
                "active"
            };
            println!(
                "{:<32} {:<5} {:<5} {:<11} {}",
                u.username,
                u.kind.as_str(),
                if u.admin { "yes" } else { "no" },
                state,
                u.created_at
            );
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}
