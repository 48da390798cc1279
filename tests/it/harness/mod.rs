//! Test harness: runs the real `hubbub` binary per test (fresh data dir and database) with HTTP helpers.

mod bearer;
mod cli;
mod http;
mod nodes;
pub mod push;
mod raw;
mod socket;
mod sse;

pub use bearer::Bearer;
pub use cli::CliRun;
pub use http::{cursor_key, ids, send, send_raw, Resp, TestUser};
pub use nodes::{PrivateRedis, SharedDb};
pub use raw::{client_frame, upgrade_request, Raw};
pub use socket::{Recv, Socket};
pub use sse::{SseMessage, SseRecv};

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use awc::ClientRequest;
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::json;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const BIN: &str = env!("CARGO_BIN_EXE_hubbub");

/// A fresh PostgreSQL database for one test, dropped with it.
struct PgDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDb {
    fn create(admin_url: &str) -> Self {
        let name = format!("hubbub_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(admin_url)
            .unwrap_or_else(|e| panic!("connect to HUBBUB_TEST_POSTGRES_URL {admin_url}: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("CREATE DATABASE");
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin_url, String::new()),
        };
        let slash = base
            .rfind('/')
            .filter(|&i| i > base.find("://").map_or(0, |s| s + 2));
        let url = match slash {
            Some(i) => format!("{}/{name}{query}", &base[..i]),
            None => format!("{base}/{name}{query}"),
        };
        PgDb {
            admin_url: admin_url.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin_url) {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = diesel::sql_query(sql).execute(&mut conn);
        }
    }
}

/// Builds a [`TestApp`] with extra environment variables.
#[derive(Default)]
pub struct Builder {
    envs: Vec<(String, String)>,
    /// A database shared with other servers (see [`SharedDb`]) instead of a fresh one.
    shared: Option<Arc<PgDb>>,
    /// Run the server as this user id instead of the test's own (see [`Builder::run_as_nobody`]).
    uid: Option<u32>,
    /// SQLite even when the run has PostgreSQL (a test of SQLite's own file).
    sqlite: bool,
}

impl Builder {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// SQLite under the data dir, even in a PostgreSQL run.
    pub fn sqlite(mut self) -> Self {
        self.sqlite = true;
        self
    }

    /// Runs the server as `nobody` when the tests run as root, whom file permissions don't
    /// stop (a test of what the server does with a file it may not write). The data dir is
    /// made writable by anyone.
    pub fn run_as_nobody(mut self) -> Self {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            self.uid = Some(65534);
        }
        self
    }

    /// Prepares data dir and database without starting the server.
    pub fn create(self) -> TestApp {
        let data_dir = std::env::temp_dir().join(format!("hubbub-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        if self.uid.is_some() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o777))
                .expect("chmod data dir");
        }
        let sqlite = self.sqlite;
        let db = self.shared.or_else(|| {
            if sqlite {
                return None;
            }
            std::env::var("HUBBUB_TEST_POSTGRES_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .map(|u| Arc::new(PgDb::create(&u)))
        });
        // The server closes a keep-alive connection after 5 s idle (actix's default); awc keeps
        // one for 15 s and would reuse it after the server closed it, and such a request fails
        // with `Connect(Disconnected)` (a test that spends a few seconds making pictures hit
        // it). The client lets go of idle connections first.
        let connector = awc::Connector::new().conn_keep_alive(Duration::from_secs(2));
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(Duration::from_secs(30))
            .finish();
        TestApp {
            client,
            port: 0,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            envs: self.envs,
            data_dir,
            db,
            uid: self.uid,
        }
    }

    pub async fn spawn(self) -> TestApp {
        let mut app = self.create();
        app.start().await;
        app
    }
}

/// One server process (restartable) on its own data dir and database.
pub struct TestApp {
    pub client: awc::Client,
    pub port: u16,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    envs: Vec<(String, String)>,
    data_dir: PathBuf,
    db: Option<Arc<PgDb>>,
    uid: Option<u32>,
}

fn drain(
    mut reader: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    tx: Option<mpsc::Sender<u16>>,
) {
    std::thread::spawn(move || {
        let mut buf = BufReader::new(&mut reader);
        let mut line = String::new();
        while buf.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if let Some(tx) = &tx {
                if let Some(rest) = line.trim().strip_prefix("hubbub listening on http://") {
                    if let Some(port) = rest.rsplit(':').next().and_then(|p| p.parse().ok()) {
                        let _ = tx.send(port);
                    }
                }
            }
            log.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Builder::default().spawn().await
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match self.uid {
            Some(uid) => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.args(args);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("HUBBUB_")) {
            cmd.env_remove(key);
        }
        cmd.env("HUBBUB_LISTEN", "127.0.0.1:0")
            .env("HUBBUB_DATA_DIR", &self.data_dir)
            .env("HUBBUB_COOKIE_SECURE", "false")
            // Rate limits are tested on their own; elsewhere they would only add noise.
            .env("HUBBUB_RATE_LOGIN_PER_MIN", "100000")
            .env("HUBBUB_RATE_WRITES_PER_SEC", "100000")
            .env("HUBBUB_RATE_TYPING_PER_SEC", "100000")
            // Presence events would interleave with the frames other tests expect; its own
            // tests (presence.rs) turn it on.
            .env("HUBBUB_PRESENCE", "false");
        if let Some(db) = &self.db {
            cmd.env("HUBBUB_DATABASE_URL", &db.url);
        }
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs a CLI subcommand (e.g. `migrate`) against this app's data dir and database.
    pub fn run_cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run hubbub")
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    pub fn server_log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Starts the server and waits for its "listening" line.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let mut child = self
            .command(&["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hubbub");
        let (tx, rx) = mpsc::channel();
        drain(child.stdout.take().unwrap(), self.log.clone(), Some(tx));
        drain(child.stderr.take().unwrap(), self.log.clone(), None);
        let started = Instant::now();
        let port = loop {
            if let Ok(port) = rx.try_recv() {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                actix_rt::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "hubbub exited early ({status}); log:\n{}",
                    self.server_log()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "hubbub did not start within 30 s; log:\n{}",
                    self.server_log()
                );
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        };
        self.port = port;
        self.child = Some(child);
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("wait");
        }
    }

    pub async fn restart(&mut self) {
        self.kill9();
        self.start().await;
    }

    pub fn send_sigterm(&self) {
        let pid = self.pid();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// Waits (up to `within`) for the process to exit on its own.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let started = Instant::now();
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                started.elapsed() < within,
                "server did not exit within {within:?}"
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The server process's resident memory in KiB, now and at its peak (VmRSS, VmHWM).
    pub fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in /proc/PID/status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The files stored under the server's attachments directory.
    pub fn stored_attachments(&self) -> usize {
        std::fs::read_dir(self.data_dir.join("attachments"))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }

    /// How many rows of the event log are of `kind`, read straight from the database (what
    /// pruning left). `kind` is a literal of the test's.
    pub fn count_events(&self, kind: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        assert!(kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'));
        let sql = format!("SELECT COUNT(*) AS n FROM events WHERE kind = '{kind}'");
        let count = match &self.db {
            Some(db) => {
                let mut conn =
                    PgConnection::establish(&db.url).expect("connect to the test database");
                diesel::sql_query(sql).get_result::<Count>(&mut conn)
            }
            None => {
                let path = self.data_dir.join("hubbub.db");
                let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .expect("open the test database");
                diesel::sql_query(sql).get_result::<Count>(&mut conn)
            }
        };
        count.expect("count events").n
    }

    /// Starts the peak (VmHWM) over from the current RSS (Linux ≥ 4.0), so that a test reads
    /// the peak of what it did, not of the server's start.
    pub fn reset_peak_memory(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")
            .expect("write 5 to /proc/PID/clear_refs");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The value of one line of `GET /metrics`: `name` is the metric with its labels, if any
    /// (`hubbub_commit_seconds_total{phase="commit"}`).
    pub async fn metric(&self, name: &str) -> f64 {
        let mut resp = self.client.get(self.url("/metrics")).send().await.unwrap();
        let body = resp.body().await.unwrap();
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("the metrics list {name}"))
    }

    pub fn get(&self, path: &str) -> ClientRequest {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> ClientRequest {
        self.client.post(self.url(path))
    }

    /// Registers `username` (password `pw-<username>`) and returns the logged-in user.
    pub async fn register(&self, username: &str) -> TestUser {
        let password = format!("pw-{username}-secret");
        let body = json!({ "username": username, "password": password });
        let resp = send(self.post("/api/v1/users"), Some(&body)).await;
        let cookie = resp.session_cookie();
        let user = resp.expect(201);
        let cookie = cookie.expect("register sets a hubbub_session cookie");
        TestUser {
            id: user["id"].as_str().expect("user id").to_owned(),
            username: username.to_lowercase(),
            password,
            cookie,
        }
    }

    pub async fn login(&self, username: &str, password: &str) -> Resp {
        let body = json!({ "username": username, "password": password });
        send(self.post("/api/v1/sessions"), Some(&body)).await
    }

    /// Opens a WebSocket with the given headers; `Err(status)` when the upgrade is refused.
    pub async fn try_socket(
        &self,
        since: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Socket, u16> {
        let query = since.map(|s| format!("since={s}")).unwrap_or_default();
        self.try_socket_query(&query, headers).await
    }

    /// Opens a WebSocket on `/api/v1/stream?<query>` (e.g. `ticket=…`); `Err(status)` if refused.
    pub async fn try_socket_query(
        &self,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Socket, u16> {
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let url = format!("ws://127.0.0.1:{}/api/v1/stream{query}", self.port);
        let mut req = self.client.ws(url).max_frame_size(4 << 20);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match req.connect().await {
            Ok((resp, framed)) => {
                assert_eq!(resp.status().as_u16(), 101);
                Ok(Socket::start(framed).await)
            }
            Err(awc::error::WsClientError::InvalidResponseStatus(s)) => Err(s.as_u16()),
            Err(e) => panic!("websocket connect failed: {e}"),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.server_log();
            let tail = &log[log.len().saturating_sub(6000)..];
            eprintln!(
                "---- server log tail ----\n{}",
                tail.trim_start_matches(|c: char| !c.is_ascii())
            );
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
