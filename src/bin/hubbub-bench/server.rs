//! The server under test: started here (binary, SQLite temp dir or a PostgreSQL URL) or an
//! already running one (`--url`, `--pid`). Reads its RSS from `/proc` and its `/metrics`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How to reach (and maybe start) the server.
pub struct ServerOpts {
    pub binary: PathBuf,
    pub url: Option<String>,
    pub pid: Option<u32>,
    pub database_url: Option<String>,
    /// Extra `KEY=VALUE` settings for a server started here.
    pub env: Vec<(String, String)>,
}

/// A server being measured.
pub struct Server {
    pub base: String,
    pub pid: Option<u32>,
    pub backend: String,
    child: Option<Child>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
}

impl Server {
    /// The database the server uses: `--database-url`, else the SQLite file of a server
    /// started here.
    pub fn database_url(&self) -> Option<String> {
        self.database_url.clone().or_else(|| {
            self.data_dir
                .as_ref()
                .map(|d| d.join("hubbub.db").display().to_string())
        })
    }

    /// Starts the binary (or attaches to `--url`) and waits for it to listen.
    pub fn start(opts: &ServerOpts) -> Result<Server, String> {
        if let Some(url) = &opts.url {
            return Ok(Server {
                base: url.trim_end_matches('/').to_string(),
                pid: opts.pid,
                backend: match &opts.database_url {
                    Some(u) if u.starts_with("postgres") => "postgresql".into(),
                    _ => "external".into(),
                },
                child: None,
                data_dir: None,
                database_url: opts.database_url.clone(),
            });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let data_dir =
            std::env::temp_dir().join(format!("hubbub-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let mut cmd = Command::new(&opts.binary);
        cmd.arg("serve")
            .env("HUBBUB_LISTEN", "127.0.0.1:0")
            .env("HUBBUB_DATA_DIR", &data_dir)
            .env("HUBBUB_COOKIE_SECURE", "false")
            // The benchmark measures the server, not its abuse limits.
            .env("HUBBUB_RATE_WRITES_PER_SEC", "0")
            .env("HUBBUB_RATE_LOGIN_PER_MIN", "0")
            // One owner's bots are the benchmark's clients (a thousand in `fanout`).
            .env("HUBBUB_MAX_BOTS_PER_USER", "1000000")
            .env("HUBBUB_RATE_SEARCH_PER_MIN", "0")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let backend = match &opts.database_url {
            Some(url) => {
                cmd.env("HUBBUB_DATABASE_URL", url);
                if url.starts_with("postgres") {
                    "postgresql"
                } else {
                    "sqlite"
                }
            }
            None => "sqlite",
        };
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", opts.binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(url) = line.split("listening on ").nth(1) {
                        let _ = tx.send(url.trim().trim_end_matches('/').to_string());
                        sent = true;
                    }
                }
            }
        });
        let mut server = Server {
            base: String::new(),
            pid: Some(child.id()),
            backend: backend.into(),
            child: Some(child),
            data_dir: Some(data_dir),
            database_url: opts.database_url.clone(),
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => server.base = base,
            Err(_) => return Err("the server did not print its address within 60 s".into()),
        }
        Ok(server)
    }

    /// The server's resident memory in KiB (`VmRSS`), if its pid is known.
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// The server's peak resident memory in KiB (`VmHWM`) since it started or since
    /// [`Server::reset_peak`].
    pub fn peak_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// Starts the peak over from the current RSS (`5` to `/proc/PID/clear_refs`, Linux ≥ 4.0;
    /// only for a process of this user). False if that could not be done.
    pub fn reset_peak(&self) -> bool {
        self.pid
            .is_some_and(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    /// The server's CPU time (user + system) so far, from `/proc/PID/stat`, in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / 100.0)
    }

    /// How the server process ended, if it has (it stays a zombie until dropped here): its
    /// exit status from `/proc/PID/stat` (field 52, as waitpid(2) reports it).
    pub fn exit_status(&self) -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        if fields.first() != Some(&"Z") {
            return None;
        }
        let status: i32 = fields.get(49)?.parse().ok()?;
        Some(match status & 0x7f {
            0 => format!("exited with code {}", status >> 8),
            signal => format!("killed by signal {signal}"),
        })
    }

    /// The ws:// base of the server.
    pub fn ws_base(&self) -> String {
        self.base.replacen("http", "ws", 1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The group-commit counters from `/metrics` (`hubbub_commit_*`), by name.
pub async fn commit_metrics(base: &str) -> Vec<(String, f64)> {
    metrics(base, "hubbub_commit_").await
}

/// The lines of `/metrics` whose name starts with `prefix`, by name (with labels).
pub async fn metrics(base: &str, prefix: &str) -> Vec<(String, f64)> {
    let client = crate::api::client(None);
    let Ok(mut resp) = client.get(format!("{base}/metrics")).send().await else {
        return Vec::new();
    };
    let Ok(body) = resp.body().limit(4 << 20).await else {
        return Vec::new();
    };
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.trim().to_string(), value.trim().parse().ok()?))
        })
        .collect()
}
