//! hubbub-bench's command line (clap): the options, their defaults, and the tiny scale that
//! `--smoke` gives every option not set explicitly.

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

use crate::server::ServerOpts;

/// A scenario to run (`docs/benchmarks.md` says what each measures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Clients loop on GET /healthz: the loopback ceiling
    Ceiling,
    /// Clients loop on sending messages as --users users in --rooms rooms, keyed (at --rate, if given)
    Send,
    /// The same clients at half the measured maximum rate
    SendHalf,
    /// One member sends to rooms of --sizes members, each with an open socket
    Fanout,
    /// Idle sockets held open: memory per socket
    Connections,
    /// A member misses --events messages, then reconnects with since=
    Catchup,
    /// Every scenario above (the default)
    All,
    /// The attacks of issue #14 against the live server (not in `all`)
    Hostile,
    /// Members with Web Push subscriptions; senders post --events messages: the push worker's
    /// events/s and pushes/s (not in `all`)
    Push,
    /// The send rate alone and beside --typers members typing at the throttle rate (not in
    /// `all`)
    Typing,
    /// The `send` clients against a Matrix homeserver at --matrix-url (not in `all`)
    MatrixSend,
    /// The send rate alone and beside --flappers users coming online and going offline every
    /// few seconds (not in `all`; set the server's presence grace and window below 3 s)
    Presence,
    /// Search latency over --search-messages stored messages, and the send rate with and
    /// without the search index (not in `all`)
    Search,
}

impl Scenario {
    /// What `all` runs, in order.
    const ALL: [Scenario; 6] = [
        Scenario::Ceiling,
        Scenario::Send,
        Scenario::SendHalf,
        Scenario::Fanout,
        Scenario::Catchup,
        Scenario::Connections,
    ];

    /// The scenario's name on the command line.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_string())
    }
}

/// hubbub's load generator: drives a server over loopback as clients do and prints a table.
#[derive(Debug, Parser)]
#[command(name = "hubbub-bench", args_override_self = true)]
struct Args {
    /// Scenarios to run, in order [default: all]
    #[arg(value_enum, value_name = "SCENARIO")]
    scenarios: Vec<Scenario>,

    /// The hubbub binary to start [default: the hubbub next to this binary, else target/release/hubbub]
    #[arg(long, value_name = "PATH", help_heading = "Server")]
    server: Option<PathBuf>,
    /// Measure a server already running there instead of starting one
    #[arg(long, value_name = "http://HOST:PORT", help_heading = "Server")]
    url: Option<String>,
    /// The pid of the --url server, for its RSS
    #[arg(long, value_name = "PID", help_heading = "Server")]
    pid: Option<u32>,
    /// postgres://… for PostgreSQL [default: SQLite in a temp dir]
    #[arg(long, value_name = "URL", help_heading = "Server")]
    database_url: Option<String>,
    /// An extra setting for the server started here (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = key_value, help_heading = "Server")]
    env: Vec<(String, String)>,

    /// Concurrent clients [default: 64; --smoke: 4]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "send")]
    clients: Option<usize>,
    /// Seconds per send run [default: 10; --smoke: 1]
    #[arg(long, value_name = "SECS", help_heading = "send")]
    duration: Option<f64>,
    /// A fixed total rate for `send`, per second [default: as fast as the server answers]
    #[arg(long, value_name = "PER_S", help_heading = "send")]
    rate: Option<f64>,
    /// Distinct users sending, half with session cookies, half bots with tokens [default: 64; --smoke: 4]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "send")]
    users: Option<usize>,
    /// Rooms the users are spread over (1: everyone in one room) [default: 16; --smoke: 2]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "send")]
    rooms: Option<usize>,
    /// Send without `Idempotency-Key` (clients send one with every message)
    #[arg(long, help_heading = "send")]
    no_keys: bool,
    /// Client threads [default: 2]
    #[arg(long, value_name = "N", default_value_t = 2, hide_default_value = true, value_parser = above_zero, help_heading = "send")]
    threads: usize,

    /// Room sizes, comma-separated, each at least 2 [default: 2,100,1000; --smoke: 2,5]
    #[arg(long, value_name = "N,N,…", value_delimiter = ',', action = ArgAction::Set, value_parser = room_size, help_heading = "fanout")]
    sizes: Option<Vec<usize>>,
    /// Messages per second into each room [default: 20; --smoke: 10]
    #[arg(long, value_name = "PER_S", help_heading = "fanout")]
    fanout_rate: Option<f64>,
    /// Seconds per room [default: 10; --smoke: 1]
    #[arg(long, value_name = "SECS", help_heading = "fanout")]
    fanout_secs: Option<f64>,

    /// Idle sockets to open [default: 10000; --smoke: 20]
    #[arg(long, value_name = "K", help_heading = "connections")]
    sockets: Option<usize>,
    /// Sockets per source address 127.0.0.N [default: 10000; --smoke: 10]
    #[arg(long, value_name = "N", help_heading = "connections")]
    per_ip: Option<usize>,
    /// Seconds to hold them, past one 20 s heartbeat so every socket has answered a ping [default: 25; --smoke: 0]
    #[arg(long, value_name = "SECS", help_heading = "connections")]
    hold: Option<f64>,

    /// Messages the member misses; for `push`, messages sent [default: 10000, push 500; --smoke: 200, push 20]
    #[arg(long, value_name = "N", help_heading = "catchup")]
    events: Option<usize>,
    /// Clients posting them [default: 32; --smoke: 4]
    #[arg(long, value_name = "N", help_heading = "catchup")]
    catchup_senders: Option<usize>,

    /// Seconds of each attack [default: 5; --smoke: 1]
    #[arg(long, value_name = "SECS", value_parser = positive, help_heading = "hostile")]
    attack_secs: Option<f64>,
    /// Concurrent attacking clients [default: 16; --smoke: 4]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "hostile")]
    attackers: Option<usize>,
    /// The honest clients' sends per second, over 4 users [default: 20]; `hostile` alone keeps the server's write limit (10/s)
    #[arg(long, value_name = "PER_S", default_value_t = 20.0, hide_default_value = true, value_parser = positive, help_heading = "hostile")]
    honest_rate: f64,

    /// Members of the room, each with one Web Push subscription [default: 200; --smoke: 5]
    #[arg(long, value_name = "N", value_parser = room_size, help_heading = "push")]
    push_users: Option<usize>,
    /// Members who send, each as fast as the server answers [default: 4; --smoke: 2]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "push")]
    push_senders: Option<usize>,
    /// The senders' total rate, per second [default: as fast as the server answers]
    #[arg(long, value_name = "PER_S", value_parser = positive, help_heading = "push")]
    push_rate: Option<f64>,
    /// The longest wait for the pushes after the last send [default: 300; --smoke: 30]
    #[arg(long, value_name = "SECS", value_parser = positive, help_heading = "push")]
    push_timeout: Option<f64>,

    /// Members typing (one `typing: true` every 3.1 s each) beside the senders [default: 1000; --smoke: 20]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "typing")]
    typers: Option<usize>,

    /// A Matrix homeserver (Synapse) for `matrix-send`, registration open without verification
    #[arg(long, value_name = "http://HOST:PORT", help_heading = "matrix-send")]
    matrix_url: Option<String>,
    /// Users each opening a long poll every 3.1 s beside the senders [default: 1000; --smoke: 20]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "presence")]
    flappers: Option<usize>,
    /// Messages stored for `search` (written straight into the database) [default: 1000000; --smoke: 2000]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "search")]
    search_messages: Option<usize>,
    /// Rooms they are spread over [default: 1000; --smoke: 20]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "search")]
    search_rooms: Option<usize>,
    /// Rooms of those the searcher is a member of [default: 20; --smoke: 4]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "search")]
    search_member_of: Option<usize>,
    /// Queries of each kind [default: 200; --smoke: 5]
    #[arg(long, value_name = "N", value_parser = above_zero, help_heading = "search")]
    search_queries: Option<usize>,

    /// One JSON object per row after the table
    #[arg(long, help_heading = "Output")]
    json: bool,
    /// Tiny scale, for tests: the --smoke defaults above
    #[arg(long, help_heading = "Output")]
    smoke: bool,
}

/// The options, resolved.
pub struct Opts {
    pub server: ServerOpts,
    /// In order, without `all`.
    pub scenarios: Vec<Scenario>,
    pub clients: usize,
    pub duration: f64,
    pub rate: Option<f64>,
    pub users: usize,
    pub rooms: usize,
    pub keyed: bool,
    pub threads: usize,
    pub sizes: Vec<usize>,
    pub fanout_rate: f64,
    pub fanout_secs: f64,
    pub sockets: usize,
    pub per_ip: usize,
    pub hold: f64,
    pub events: usize,
    pub catchup_senders: usize,
    pub attack_secs: f64,
    pub attackers: usize,
    pub honest_rate: f64,
    pub push_users: usize,
    pub push_senders: usize,
    pub push_events: usize,
    pub push_rate: Option<f64>,
    pub push_timeout: f64,
    pub typers: usize,
    pub matrix_url: Option<String>,
    pub flappers: usize,
    pub search_messages: usize,
    pub search_rooms: usize,
    pub search_member_of: usize,
    pub search_queries: usize,
    pub smoke: bool,
    pub json: bool,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("--env takes KEY=VALUE")?;
    Ok((k.into(), v.into()))
}

fn above_zero(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(0) => Err("must be above 0".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x <= 0.0 => Err("must be above 0".into()),
        Ok(x) => Ok(x),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

fn room_size(s: &str) -> Result<usize, String> {
    match s.trim().parse() {
        Ok(n) if n < 2 => Err("a room has at least 2 members".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// The command line's options; exits with usage (2) on an error, or after `--help`.
pub fn parse() -> Opts {
    resolve(Args::parse())
}

/// The options given, with their defaults (the `--smoke` ones for those not given).
fn resolve(a: Args) -> Opts {
    let smoke = a.smoke;
    let scale =
        |set: Option<f64>, full: f64, tiny: f64| set.unwrap_or(if smoke { tiny } else { full });
    let count = |set: Option<usize>, full: usize, tiny: usize| {
        set.unwrap_or(if smoke { tiny } else { full })
    };
    let mut scenarios = a.scenarios;
    if scenarios.is_empty() || scenarios.contains(&Scenario::All) {
        // `all` and the scenarios it leaves out that were named with it, in their order.
        let mut extra: Vec<Scenario> = Vec::new();
        for s in scenarios {
            if s != Scenario::All && !Scenario::ALL.contains(&s) && !extra.contains(&s) {
                extra.push(s);
            }
        }
        scenarios = Scenario::ALL.to_vec();
        scenarios.extend(extra);
    }
    let mut server = ServerOpts {
        binary: a.server.unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join("hubbub")))
                .filter(|path| path.exists())
                .unwrap_or_else(|| PathBuf::from("target/release/hubbub"))
        }),
        url: a.url,
        pid: a.pid,
        database_url: a.database_url,
        env: a.env,
    };
    // Alone, `hostile` keeps the server's per-user write limit (the benchmark's server turns
    // it off otherwise): one of its attacks is writes beyond it. An explicit --env still wins.
    if scenarios == [Scenario::Hostile] && server.url.is_none() {
        (server.env).insert(0, ("HUBBUB_RATE_WRITES_PER_SEC".into(), "10".into()));
    }
    // `push` needs the server to accept its loopback http receiver as an endpoint, and measures
    // the worker, not the grace period a reader on another device gets (10 s by default).
    // Explicit --env settings come after, and win.
    if scenarios.contains(&Scenario::Push) && server.url.is_none() {
        let push = [
            ("HUBBUB_PUSH_ALLOW_INSECURE", "true"),
            ("HUBBUB_PUSH_GRACE_MS", "0"),
        ];
        (server.env).splice(0..0, push.map(|(k, v)| (k.into(), v.into())));
    }
    Opts {
        server,
        scenarios,
        clients: count(a.clients, 64, 4),
        duration: scale(a.duration, 10.0, 1.0),
        rate: a.rate,
        users: count(a.users, 64, 4),
        rooms: count(a.rooms, 16, 2),
        keyed: !a.no_keys,
        threads: a.threads,
        sizes: a.sizes.unwrap_or_else(|| {
            if smoke {
                vec![2, 5]
            } else {
                vec![2, 100, 1000]
            }
        }),
        fanout_rate: scale(a.fanout_rate, 20.0, 10.0),
        fanout_secs: scale(a.fanout_secs, 10.0, 1.0),
        sockets: count(a.sockets, 10_000, 20),
        per_ip: count(a.per_ip, 10_000, 10),
        hold: scale(a.hold, 25.0, 0.0),
        events: count(a.events, 10_000, 200),
        catchup_senders: count(a.catchup_senders, 32, 4),
        attack_secs: scale(a.attack_secs, 5.0, 1.0),
        attackers: count(a.attackers, 16, 4),
        honest_rate: a.honest_rate,
        push_users: count(a.push_users, 200, 5),
        typers: count(a.typers, 1000, 20),
        matrix_url: a.matrix_url,
        flappers: count(a.flappers, 1000, 20),
        search_messages: count(a.search_messages, 1_000_000, 2000),
        search_rooms: count(a.search_rooms, 1000, 20),
        search_member_of: count(a.search_member_of, 20, 4),
        search_queries: count(a.search_queries, 200, 5),
        push_senders: count(a.push_senders, 4, 2),
        push_events: count(a.events, 500, 20),
        push_rate: a.push_rate,
        push_timeout: scale(a.push_timeout, 300.0, 30.0),
        smoke,
        json: a.json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn opts(args: &[&str]) -> Opts {
        let argv = std::iter::once("hubbub-bench").chain(args.iter().copied());
        resolve(Args::try_parse_from(argv).unwrap())
    }

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn no_options_run_all_at_full_scale() {
        let o = opts(&[]);
        assert_eq!(o.scenarios, Scenario::ALL);
        assert_eq!(
            (o.clients, o.duration, o.rate, o.threads),
            (64, 10.0, None, 2)
        );
        assert_eq!(
            (o.users, o.rooms, o.keyed),
            (64, 16, true),
            "as clients send"
        );
        assert_eq!(o.sizes, [2, 100, 1000]);
        assert_eq!((o.fanout_rate, o.fanout_secs), (20.0, 10.0));
        assert_eq!((o.sockets, o.per_ip, o.hold), (10_000, 10_000, 25.0));
        assert_eq!((o.events, o.catchup_senders), (10_000, 32));
        assert_eq!((o.attack_secs, o.attackers, o.honest_rate), (5.0, 16, 20.0));
        assert_eq!(
            (o.push_users, o.push_senders, o.push_events, o.push_timeout),
            (200, 4, 500, 300.0)
        );
        assert!(!o.smoke && !o.json && o.server.env.is_empty() && o.server.url.is_none());
    }

    #[test]
    fn smoke_scales_down_what_is_not_given_wherever_it_stands() {
        let o = opts(&["--clients", "8", "--smoke", "send"]);
        assert_eq!(o.scenarios, [Scenario::Send]);
        assert_eq!((o.clients, o.duration, o.threads), (8, 1.0, 2));
        assert_eq!((o.users, o.rooms, o.keyed), (4, 2, true));
        let one = opts(&["--no-keys", "--users", "1", "--rooms", "1", "send"]);
        assert_eq!((one.users, one.rooms, one.keyed), (1, 1, false));
        assert_eq!(o.sizes, [2, 5]);
        assert_eq!((o.fanout_rate, o.fanout_secs), (10.0, 1.0));
        assert_eq!((o.sockets, o.per_ip, o.hold), (20, 10, 0.0));
        assert_eq!((o.events, o.catchup_senders), (200, 4));
        assert_eq!((o.attack_secs, o.attackers), (1.0, 4));
        assert_eq!(
            (o.push_users, o.push_senders, o.push_events, o.push_timeout),
            (5, 2, 20, 30.0)
        );
        assert!(o.smoke);
    }

    #[test]
    fn a_repeated_option_keeps_its_last_value_and_env_adds_up() {
        let o = opts(&[
            "--clients",
            "3",
            "--clients",
            "5",
            "--sizes",
            "2, 3",
            "--sizes",
            "4",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
        ]);
        assert_eq!(o.clients, 5);
        assert_eq!(o.sizes, [4]);
        let env: Vec<(&str, &str)> = (o.server.env.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(env, [("A", "1"), ("B", "x=y")]);
    }

    #[test]
    fn hostile_alone_keeps_the_write_limit_and_all_does_not_include_it() {
        let alone = opts(&["hostile", "--env", "HUBBUB_RATE_WRITES_PER_SEC=5"]);
        assert_eq!(alone.scenarios, [Scenario::Hostile]);
        let first = &alone.server.env[0];
        assert_eq!(
            (first.0.as_str(), first.1.as_str()),
            ("HUBBUB_RATE_WRITES_PER_SEC", "10")
        );
        assert_eq!(
            alone.server.env.len(),
            2,
            "an explicit --env comes after, and wins"
        );

        let with_all = opts(&["all", "hostile"]);
        assert_eq!(with_all.scenarios[..6], Scenario::ALL);
        assert_eq!(with_all.scenarios[6..], [Scenario::Hostile]);
        assert!(with_all.server.env.is_empty());
        assert!(!opts(&["send-half"]).scenarios.contains(&Scenario::Hostile));
    }

    #[test]
    fn push_is_not_in_all_and_its_server_accepts_the_receiver_without_a_grace_period() {
        let o = opts(&["push", "--env", "HUBBUB_PUSH_GRACE_MS=5"]);
        assert_eq!(o.scenarios, [Scenario::Push]);
        let env: Vec<(&str, &str)> = (o.server.env.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("HUBBUB_PUSH_ALLOW_INSECURE", "true"),
                ("HUBBUB_PUSH_GRACE_MS", "0"),
                ("HUBBUB_PUSH_GRACE_MS", "5"),
            ],
            "an explicit --env comes after, and wins"
        );
        let given = opts(&["--events", "50", "push"]);
        assert_eq!((given.push_events, given.events), (50, 50));

        let with_all = opts(&["push", "all", "hostile", "push"]);
        assert_eq!(with_all.scenarios[..6], Scenario::ALL);
        assert_eq!(with_all.scenarios[6..], [Scenario::Push, Scenario::Hostile]);
        assert!(!opts(&[]).scenarios.contains(&Scenario::Push));
        let elsewhere = opts(&["push", "--url", "http://127.0.0.1:8080"]);
        assert!(elsewhere.server.env.is_empty(), "not ours to configure");
    }

    #[test]
    fn values_out_of_range_are_usage_errors() {
        for args in [
            &["--clients", "0"][..],
            &["--threads", "0"],
            &["--sizes", "2,1"],
            &["--attackers", "0"],
            &["--attack-secs", "0"],
            &["--honest-rate", "-1"],
            &["--push-users", "1"],
            &["--push-senders", "0"],
            &["--push-timeout", "0"],
            &["--push-rate", "0"],
            &["--env", "NOEQUALS"],
            &["--duration", "ten"],
            &["sned"],
        ] {
            let argv = std::iter::once("hubbub-bench").chain(args.iter().copied());
            let err = Args::try_parse_from(argv).err();
            assert!(
                err.is_some_and(|e| e.exit_code() == 2),
                "{args:?} is refused"
            );
        }
    }
}
