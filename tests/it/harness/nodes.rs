//! Test harness, several nodes: one fresh PostgreSQL database shared by servers, a private Redis.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Builder, PgDb, TestApp};

/// One fresh PostgreSQL database for several servers; dropped with the last of them.
#[derive(Clone)]
pub struct SharedDb(Arc<PgDb>);

impl SharedDb {
    /// A fresh database on `HUBBUB_TEST_POSTGRES_URL`, or `None` when it isn't set.
    pub fn create() -> Option<SharedDb> {
        let admin = std::env::var("HUBBUB_TEST_POSTGRES_URL").ok()?;
        (!admin.is_empty()).then(|| SharedDb(Arc::new(PgDb::create(&admin))))
    }
}

impl Builder {
    /// Runs the server on `db` (shared with other servers) instead of a fresh database.
    pub fn shared_db(mut self, db: &SharedDb) -> Self {
        self.shared = Some(db.0.clone());
        self
    }
}

impl TestApp {
    /// `GET /readyz` until `"doorbell"` reads `want` (at most `within`); returns the last body.
    pub async fn wait_doorbell(&self, want: &str, within: Duration) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let body = super::send(self.get("/readyz"), None).await.expect(200);
            if body["doorbell"] == want || started.elapsed() > within {
                return body;
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A private `redis-server` on a spare port (no persistence), stopped by its PID on drop.
pub struct PrivateRedis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl PrivateRedis {
    /// Starts one on a spare port and waits until it accepts connections.
    pub fn start() -> PrivateRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a spare port")
            .port();
        PrivateRedis::start_on(port)
    }

    /// Starts one on `port` (e.g. again after [`PrivateRedis::stop`]).
    pub fn start_on(port: u16) -> PrivateRedis {
        let dir = std::env::temp_dir().join(format!("hubbub-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        PrivateRedis {
            child: Some(child),
            port,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills this redis-server (by its PID) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
