//! hubbub's load generator: drives a server over loopback as clients do and prints a table.
//!
//! `cargo run --release --bin hubbub-bench -- [options] [scenario...]`; scenarios: `ceiling`,
//! `send`, `send-half`, `fanout`, `connections`, `catchup`, `all` (the default), `hostile`
//! (the attacks of #14; not in `all`), `push` (the push worker's rate; not in `all`) and
//! `typing` (sends beside 1,000 typists; not in `all`), `presence` (sends beside 1,000 users
//! flapping online and offline; not in `all`), `search` (search latency over a million
//! messages; not in `all`) and `matrix-send` (the send clients against a Matrix homeserver).
//! See `docs/benchmarks.md` for the commands behind the
//! published figures.

mod api;
mod beside;
mod catchup;
mod cli;
mod conns;
mod fanout;
mod hostile;
mod matrix;
mod presence;
mod push;
mod search;
mod send;
mod server;
mod stats;
mod typing;

use std::process::ExitCode;
use std::time::Duration;

use cli::{Opts, Scenario};
use server::Server;
use stats::Row;

/// Average group-commit batch between two `/metrics` readings.
fn batch_note(server: &Server, before: &[(String, f64)]) -> String {
    let after = api::block(server::commit_metrics(&server.base));
    let get = |m: &[(String, f64)], k: &str| m.iter().find(|(n, _)| n == k).map_or(0.0, |v| v.1);
    let batches =
        get(&after, "hubbub_commit_batches_total") - get(before, "hubbub_commit_batches_total");
    let writes = get(&after, "hubbub_commit_batched_writes_total")
        - get(before, "hubbub_commit_batched_writes_total");
    if batches <= 0.0 {
        return String::new();
    }
    // The writer's time per transaction, by phase (`hubbub_commit_seconds_total{phase=…}`), in
    // ms per batch.
    let phase = |p: &str| {
        let k = format!("hubbub_commit_seconds_total{{phase=\"{p}\"}}");
        (get(&after, &k) - get(before, &k)) * 1e3 / batches
    };
    let (begin, work, commit) = (phase("begin"), phase("work"), phase("commit"));
    format!(
        ", {batches:.0} commits, {:.1} writes/commit (largest so far {:.0}), \
         {:.2} ms in each transaction = begin {begin:.2} + work {work:.2} + commit {commit:.2}",
        writes / batches,
        get(&after, "hubbub_commit_largest_batch"),
        begin + work + commit,
    )
}

/// The limits the server under test runs with: an `--env` setting, else what the benchmark's
/// server is started with, else the documented default.
fn limits(opts: &Opts) -> hostile::Limits {
    let setting = |key: &str| {
        let set = opts.server.env.iter().rev().find(|(k, _)| k == key);
        set.and_then(|(_, v)| v.parse().ok())
    };
    // server.rs turns the write limit off for a server it starts.
    let writes = if opts.server.url.is_some() { 10 } else { 0 };
    hostile::Limits {
        writes_per_s: setting("HUBBUB_RATE_WRITES_PER_SEC").unwrap_or(writes as f64) as u32,
        tokens: setting("HUBBUB_MAX_TOKENS_PER_USER").map_or(50, |v| v as usize),
        streams: setting("HUBBUB_MAX_STREAMS_PER_USER").map_or(20, |v| v as usize),
    }
}

fn main() -> ExitCode {
    let opts = cli::parse();
    let server = match Server::start(&opts.server) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hubbub-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Usernames unique to this run, so a reused database doesn't collide.
    let prefix = format!(
        "lg{}",
        uuid::Uuid::new_v4().simple().to_string().split_at(6).0
    );
    println!(
        "hubbub-bench: {} ({}), server pid {}, {} client threads",
        server.base,
        server.backend,
        server.pid.map_or("?".into(), |p| p.to_string()),
        opts.threads
    );
    println!("{}", stats::header());
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = false;
    let mut max_send: Option<f64> = None;
    let mut send_op: Option<send::Op> = None;
    // Lines printed after the table: what a scenario measured.
    let mut lines: Vec<String> = Vec::new();
    let load = send::Load {
        clients: opts.clients,
        duration: Duration::from_secs_f64(opts.duration),
        rate: None,
        threads: opts.threads,
    };
    for &scenario in &opts.scenarios {
        let result: Result<Vec<Row>, String> = (|| match scenario {
            Scenario::Ceiling => Ok(vec![
                send::run(&server, "ceiling /healthz", &send::Op::Healthz, load).0,
            ]),
            Scenario::Send | Scenario::SendHalf => {
                if send_op.is_none() {
                    let plan = send::Senders {
                        users: opts.users,
                        sessions: true,
                        rooms: opts.rooms,
                        keyed: opts.keyed,
                    };
                    send_op = Some(send::setup_senders(&server.base, &prefix, plan)?);
                }
                let op = send_op.clone().ok_or("no room")?;
                let mut out = Vec::new();
                let fixed = if scenario == Scenario::Send {
                    opts.rate
                } else {
                    None
                };
                if scenario == Scenario::Send || max_send.is_none() {
                    let before = api::block(server::commit_metrics(&server.base));
                    let l = send::Load {
                        rate: fixed,
                        ..load
                    };
                    let name = fixed.map_or("send max".into(), |r| format!("send @{r:.0}/s"));
                    let (mut row, _) = send::run(&server, &name, &op, l);
                    row.note += &batch_note(&server, &before);
                    if fixed.is_none() {
                        max_send = row.rate;
                    }
                    out.push(row);
                }
                if scenario == Scenario::SendHalf {
                    let half = (max_send.unwrap_or(0.0) / 2.0).max(1.0);
                    let before = api::block(server::commit_metrics(&server.base));
                    let l = send::Load {
                        rate: Some(half),
                        ..load
                    };
                    let (mut row, _) = send::run(&server, "send half max", &op, l);
                    row.note += &batch_note(&server, &before);
                    out.push(row);
                }
                Ok(out)
            }
            Scenario::Fanout => opts
                .sizes
                .iter()
                .map(|&size| {
                    let pace = fanout::Pace {
                        per_s: opts.fanout_rate,
                        seconds: opts.fanout_secs,
                        threads: opts.threads,
                    };
                    fanout::run(&server, &prefix, size, pace)
                })
                .collect(),
            Scenario::Connections => {
                let plan = conns::Plan {
                    sockets: opts.sockets,
                    per_user: limits(&opts).streams,
                    per_ip: opts.per_ip,
                    threads: opts.threads,
                    hold: Duration::from_secs_f64(opts.hold),
                };
                Ok(vec![conns::run(&server, &prefix, plan)?])
            }
            Scenario::Hostile => {
                let plan = hostile::Plan {
                    window: Duration::from_secs_f64(opts.attack_secs),
                    after: Duration::from_millis(if opts.smoke { 200 } else { 1000 }),
                    settle: Duration::from_millis(if opts.smoke { 100 } else { 500 }),
                    honest_rate: opts.honest_rate,
                    honest_users: 4,
                    attackers: opts.attackers,
                    polls: 25,
                    limits: limits(&opts),
                };
                hostile::run(&server, &prefix, plan)
            }
            Scenario::Catchup => Ok(vec![catchup::run(
                &server,
                &prefix,
                opts.events,
                opts.catchup_senders,
                opts.threads,
            )?]),
            Scenario::Push => {
                let setting = opts.server.env.iter().rev();
                let concurrency = setting
                    .filter(|(k, _)| k == "HUBBUB_PUSH_CONCURRENCY")
                    .find_map(|(_, v)| v.parse().ok())
                    .unwrap_or(32);
                let plan = push::Plan {
                    users: opts.push_users,
                    senders: opts.push_senders,
                    events: opts.push_events,
                    rate: opts.push_rate,
                    threads: opts.threads,
                    concurrency,
                    ceiling: Duration::from_secs_f64(if opts.smoke { 0.2 } else { 1.0 }),
                    timeout: Duration::from_secs_f64(opts.push_timeout),
                    stall: Duration::from_secs(10),
                };
                let (rows, line) = push::run(&server, &prefix, plan)?;
                lines.extend(line);
                Ok(rows)
            }
            Scenario::Typing => {
                if send_op.is_none() {
                    send_op = Some(send::setup(&server.base, &prefix, opts.clients, false)?);
                }
                let op = send_op.clone().ok_or("no room")?;
                let typers = typing::setup(&server.base, &prefix, opts.typers)?;
                let (rows, line) = typing::run(&server, &op, &typers, load);
                lines.push(line);
                Ok(rows)
            }
            Scenario::MatrixSend => {
                let url = opts
                    .matrix_url
                    .as_deref()
                    .ok_or("matrix-send needs --matrix-url")?;
                let op = matrix::setup(url, &prefix, opts.users)?;
                let (row, _) = send::run(&server, "matrix send max", &op, load);
                if let (Some(hubbub), Some(matrix)) = (max_send, row.rate) {
                    lines.push(format!(
                        "hubbub sends / Matrix sends = {:.0}x ({hubbub:.0} / {matrix:.1} per s)",
                        hubbub / matrix.max(1e-9)
                    ));
                }
                Ok(vec![row])
            }
            Scenario::Presence => {
                if send_op.is_none() {
                    send_op = Some(send::setup(&server.base, &prefix, opts.clients, false)?);
                }
                let op = send_op.clone().ok_or("no room")?;
                let flappers = presence::setup(&server.base, &prefix, opts.flappers)?;
                let (rows, line) = presence::run(&server, &op, &flappers, load);
                lines.push(line);
                Ok(rows)
            }
            Scenario::Search => {
                if send_op.is_none() {
                    send_op = Some(send::setup(&server.base, &prefix, opts.clients, false)?);
                }
                let op = send_op.clone().ok_or("no room")?;
                let plan = search::Plan {
                    messages: opts.search_messages,
                    rooms: opts.search_rooms,
                    member_of: opts.search_member_of.min(opts.search_rooms),
                    queries: opts.search_queries,
                };
                let (rows, more) = search::run(&server, &prefix, plan, &op, load)?;
                lines.extend(more);
                Ok(rows)
            }
            // `cli::parse` expands it.
            Scenario::All => Ok(Vec::new()),
        })();
        match result {
            Ok(new) => {
                for row in new {
                    println!("{}", stats::line(&row));
                    failed |= row.errors > 0;
                    rows.push(row);
                }
            }
            Err(e) => {
                println!("{:<22} FAILED: {e}", scenario.name());
                failed = true;
            }
        }
    }
    if let (Some(ceiling), Some(send)) = (
        rows.iter()
            .find(|r| r.scenario.starts_with("ceiling"))
            .and_then(|r| r.rate),
        max_send,
    ) {
        println!("durable sends / ceiling = {:.1} %", send / ceiling * 100.0);
    }
    for line in &lines {
        println!("{line}");
    }
    if opts.json {
        for row in &rows {
            println!("{}", row.json(&server.backend));
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
