//! hubbub's load generator: drives a server over loopback as clients do and prints a table.
//!
//! `cargo run --release --bin hubbub-bench -- [options] [scenario...]`; scenarios: `ceiling`,
//! `send`, `send-half`, `fanout`, `connections`, `catchup`, `all` (the default), and `hostile`
//! (the attacks of #14; not in `all`). See `docs/benchmarks.md` for the commands behind the
//! published figures.

mod api;
mod catchup;
mod conns;
mod fanout;
mod hostile;
mod send;
mod server;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use server::{Server, ServerOpts};
use stats::Row;

const USAGE: &str =
    "usage: hubbub-bench [options] [ceiling|send|send-half|fanout|connections|catchup|all|hostile]...
server:  --server PATH (default: the hubbub next to this binary) | --url http://HOST:PORT [--pid PID]
         --database-url URL (postgres://… for PostgreSQL; default SQLite in a temp dir)
         --env KEY=VALUE (extra server setting, repeatable)
send:    --clients N (32) --duration SECS (10) --rate PER_S (fixed total rate) --threads N (2)
fanout:  --sizes 2,100,1000 --fanout-rate PER_S (20) --fanout-secs SECS (10)
sockets: --sockets K (10000) --per-ip N (10000 sockets per source address) --hold SECS (25: past one 20 s heartbeat, so every socket has answered a ping)
catchup: --events N (10000) --catchup-senders N (32)
hostile: --attack-secs SECS (5, each attack) --attackers N (16 concurrent attacking clients)
         --honest-rate PER_S (20, over 4 users); alone, it keeps the server's write limit (10/s)
output:  --json (one JSON object per row after the table); --smoke (tiny scale, for tests)";

struct Opts {
    server: ServerOpts,
    scenarios: Vec<String>,
    clients: usize,
    duration: f64,
    rate: Option<f64>,
    threads: usize,
    sizes: Vec<usize>,
    fanout_rate: f64,
    fanout_secs: f64,
    sockets: usize,
    per_ip: usize,
    hold: f64,
    events: usize,
    catchup_senders: usize,
    attack_secs: f64,
    attackers: usize,
    honest_rate: f64,
    smoke: bool,
    json: bool,
}

fn parse(args: Vec<String>) -> Result<Opts, String> {
    let mut o = Opts {
        server: ServerOpts {
            binary: std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join("hubbub")))
                .filter(|path| path.exists())
                .unwrap_or_else(|| PathBuf::from("target/release/hubbub")),
            url: None,
            pid: None,
            database_url: None,
            env: Vec::new(),
        },
        scenarios: Vec::new(),
        clients: 32,
        duration: 10.0,
        rate: None,
        threads: 2,
        sizes: vec![2, 100, 1000],
        fanout_rate: 20.0,
        fanout_secs: 10.0,
        sockets: 10_000,
        per_ip: 10_000,
        hold: 25.0,
        events: 10_000,
        catchup_senders: 32,
        attack_secs: 5.0,
        attackers: 16,
        honest_rate: 20.0,
        smoke: false,
        json: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not a number"))
        }
        match arg.as_str() {
            "--server" => o.server.binary = value(&arg)?.into(),
            "--url" => o.server.url = Some(value(&arg)?),
            "--pid" => o.server.pid = Some(num(&arg, value(&arg)?)?),
            "--database-url" => o.server.database_url = Some(value(&arg)?),
            "--env" => {
                let kv = value(&arg)?;
                let (k, v) = kv.split_once('=').ok_or("--env takes KEY=VALUE")?;
                o.server.env.push((k.into(), v.into()));
            }
            "--clients" => o.clients = num(&arg, value(&arg)?)?,
            "--duration" => o.duration = num(&arg, value(&arg)?)?,
            "--rate" => o.rate = Some(num(&arg, value(&arg)?)?),
            "--threads" => o.threads = num(&arg, value(&arg)?)?,
            "--sizes" => {
                o.sizes = value(&arg)?
                    .split(',')
                    .map(|s| num("--sizes", s.trim().to_string()))
                    .collect::<Result<_, _>>()?
            }
            "--fanout-rate" => o.fanout_rate = num(&arg, value(&arg)?)?,
            "--fanout-secs" => o.fanout_secs = num(&arg, value(&arg)?)?,
            "--sockets" => o.sockets = num(&arg, value(&arg)?)?,
            "--per-ip" => o.per_ip = num(&arg, value(&arg)?)?,
            "--hold" => o.hold = num(&arg, value(&arg)?)?,
            "--events" => o.events = num(&arg, value(&arg)?)?,
            "--catchup-senders" => o.catchup_senders = num(&arg, value(&arg)?)?,
            "--attack-secs" => o.attack_secs = num(&arg, value(&arg)?)?,
            "--attackers" => o.attackers = num(&arg, value(&arg)?)?,
            "--honest-rate" => o.honest_rate = num(&arg, value(&arg)?)?,
            "--json" => o.json = true,
            "--smoke" => {
                (o.clients, o.duration, o.sizes) = (4, 1.0, vec![2, 5]);
                (o.fanout_rate, o.fanout_secs, o.sockets) = (10.0, 1.0, 20);
                (o.hold, o.events, o.catchup_senders, o.per_ip) = (0.0, 200, 4, 10);
                (o.attack_secs, o.attackers, o.smoke) = (1.0, 4, true);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            s if !s.starts_with('-') => o.scenarios.push(s.to_string()),
            _ => return Err(format!("unknown option {arg}\n{USAGE}")),
        }
    }
    if o.scenarios.is_empty() || o.scenarios.iter().any(|s| s == "all") {
        let hostile = o.scenarios.iter().any(|s| s == "hostile");
        o.scenarios = [
            "ceiling",
            "send",
            "send-half",
            "fanout",
            "catchup",
            "connections",
        ]
        .map(String::from)
        .to_vec();
        if hostile {
            o.scenarios.push("hostile".into());
        }
    }
    // Alone, `hostile` keeps the server's per-user write limit (the benchmark's server turns
    // it off otherwise): one of its attacks is writes beyond it. An explicit --env still wins.
    if o.scenarios == ["hostile"] && o.server.url.is_none() {
        (o.server.env).insert(0, ("HUBBUB_RATE_WRITES_PER_SEC".into(), "10".into()));
    }
    if o.attackers == 0 || o.attack_secs <= 0.0 || o.honest_rate <= 0.0 {
        return Err("--attackers, --attack-secs and --honest-rate must be above 0".into());
    }
    if o.clients == 0 || o.threads == 0 || o.sizes.contains(&0) || o.sizes.contains(&1) {
        return Err("--clients and --threads must be above 0, room sizes at least 2".into());
    }
    Ok(o)
}

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
    let opts = match parse(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
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
    let load = send::Load {
        clients: opts.clients,
        duration: Duration::from_secs_f64(opts.duration),
        rate: None,
        threads: opts.threads,
    };
    for scenario in &opts.scenarios {
        let result: Result<Vec<Row>, String> = (|| match scenario.as_str() {
            "ceiling" => Ok(vec![
                send::run(&server, "ceiling /healthz", &send::Op::Healthz, load).0,
            ]),
            "send" | "send-half" => {
                if send_op.is_none() {
                    send_op = Some(send::setup(&server.base, &prefix, opts.clients, false)?);
                }
                let op = send_op.clone().ok_or("no room")?;
                let mut out = Vec::new();
                let fixed = if scenario == "send" { opts.rate } else { None };
                if scenario == "send" || max_send.is_none() {
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
                if scenario == "send-half" {
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
            "fanout" => opts
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
            "connections" => {
                let plan = conns::Plan {
                    sockets: opts.sockets,
                    per_ip: opts.per_ip,
                    threads: opts.threads,
                    hold: Duration::from_secs_f64(opts.hold),
                };
                Ok(vec![conns::run(&server, &prefix, plan)?])
            }
            "hostile" => {
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
            "catchup" => Ok(vec![catchup::run(
                &server,
                &prefix,
                opts.events,
                opts.catchup_senders,
                opts.threads,
            )?]),
            other => Err(format!("unknown scenario {other:?}\n{USAGE}")),
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
                println!("{scenario:<22} FAILED: {e}");
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
