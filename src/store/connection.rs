//! Reaching the database: the backend a URL names, the connection manager (with the settings
//! each connection needs), the pool, and the two ways of running blocking queries from async
//! code: `Db` (a pooled connection) and `Dedicated` (one connection kept by a long-running task).

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};

/// A connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// A pool of connections to the configured database.
pub type Pool = r2d2::Pool<Manager>;

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Chosen from the URL's scheme, so that a down server gives its own error message
    /// instead of diesel's "invalid connection url for multiconnection".
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Pages past which the writer's own commit checkpoints SQLite's write-ahead log, if the
/// checkpointer (`store::wal`) has fallen behind (64 MiB of log at 4 KiB pages). Under a steady
/// load this is also how often the log starts again from its beginning (`store::wal`), each
/// time at the cost of a checkpoint in the writer's thread: two syncs and the frames the
/// checkpointer had not reached. At 4,000 pages that was 4 % of the writer's time under keyed
/// sends, and 16,000 made the writer's CPU per send 5 % lower (docs/benchmarks.md).
pub const WRITER_BACKSTOP_PAGES: i64 = 16000;

/// Opens connections of one backend and applies the settings each connection needs.
#[derive(Debug, Clone)]
pub struct Manager {
    url: String,
    backend: Backend,
}

impl Manager {
    pub fn new(url: &str) -> Manager {
        let url = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url)
            .to_string();
        let backend = Backend::of_url(&url);
        let url = match backend {
            Backend::Postgres => with_connect_timeout(url),
            Backend::Sqlite => url,
        };
        Manager { backend, url }
    }

    /// Opens one connection (the group-commit writer keeps one of its own).
    pub fn open(&self) -> Result<DbConnection, ConnectionError> {
        self.open_at(&self.url)
    }

    /// Opens one connection to `url`, this manager's database (perhaps named another way).
    fn open_at(&self, url: &str) -> Result<DbConnection, ConnectionError> {
        match self.backend {
            Backend::Postgres => diesel::PgConnection::establish(url).map(DbConnection::Postgresql),
            Backend::Sqlite => {
                let mut conn = diesel::SqliteConnection::establish(url)?;
                // WAL with synchronous=FULL: every commit is fsynced before the 2xx goes out,
                // so "ack ⇒ durable" holds across kill -9 and power loss alike.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000;
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = FULL;
                     PRAGMA foreign_keys = ON;",
                )
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    /// Opens the group-commit writer's connection. On SQLite it writes each commit's log in one
    /// system call (`store::batched_log`, which relies on the `synchronous = FULL` every
    /// connection is opened with) and leaves checkpoints to the checkpointer (`store::wal`).
    /// On PostgreSQL its prepared statements
    /// always use their generic plan: the planner otherwise re-plans the send group's
    /// `= ANY($1)` lookups at every execution (custom plans looked cheaper for each batch's
    /// arrays), about 80 µs of each batch, for the same index lookups every time.
    pub fn open_writer(&self) -> Result<DbConnection, ConnectionError> {
        let batched = match self.backend {
            Backend::Sqlite => super::batched_log::uri(&self.url),
            Backend::Postgres => None,
        };
        let mut conn = self.open_at(batched.as_deref().unwrap_or(&self.url))?;
        match &mut conn {
            DbConnection::Postgresql(c) => {
                c.batch_execute("SET plan_cache_mode = force_generic_plan")
            }
            // Its commits checkpoint only when the node's checkpointer falls behind (store::wal).
            // (Where its statement journals go is the writer's choice, batch by batch:
            // `store::statement_journals_in_memory`.)
            DbConnection::Sqlite(c) => c.batch_execute(&format!(
                "PRAGMA wal_autocheckpoint = {WRITER_BACKSTOP_PAGES}"
            )),
        }
        .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
        Ok(conn)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        self.open().map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        std::thread::panicking()
    }
}

/// A PostgreSQL URL with libpq's `connect_timeout` (10 s) unless it sets one. Without it, opening
/// a connection to a host that stopped answering waits for the operating system to give up (about
/// two minutes on Linux), and the writer or the tailer waits with it after the host is back.
fn with_connect_timeout(raw: String) -> String {
    let Ok(mut url) = url::Url::parse(&raw) else {
        return raw; // no host (a Unix socket), or libpq will say what is wrong with it
    };
    if url.query_pairs().any(|(key, _)| key == "connect_timeout") {
        return raw;
    }
    url.query_pairs_mut().append_pair("connect_timeout", "10");
    url.into()
}

/// Builds the pool, failing with the backend's own message when the database can't be reached.
pub fn connect(url: &str, max_size: u32) -> anyhow::Result<Pool> {
    let manager = Manager::new(url);
    if manager.backend == Backend::Sqlite {
        if let Some(parent) = std::path::Path::new(&manager.url).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot create the directory of the SQLite database {}: {e}",
                        parent.display()
                    )
                })?;
            }
        }
    }
    // Open one first: r2d2 would retry silently for its whole timeout and hide the reason.
    manager.open().map_err(|e| {
        anyhow::anyhow!(
            "cannot open the database ({:?} at {}): {e}",
            manager.backend,
            redact(url)
        )
    })?;
    let pool = r2d2::Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)?;
    Ok(pool)
}

/// A URL fit for a log line: the password, if any, replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A connection of its own for a task that queries all the time (the tailer, after every
/// commit): no pool checkout per query, and so none of the pool's `SELECT 1` checks, a round
/// trip each on PostgreSQL. A query that fails drops the connection; the next one opens another.
pub struct Dedicated {
    manager: Manager,
    conn: Option<DbConnection>,
}

impl Dedicated {
    pub fn new(manager: Manager) -> Dedicated {
        Dedicated {
            manager,
            conn: None,
        }
    }

    /// Runs `f` with the connection on the blocking thread pool.
    pub async fn run<T, F>(&mut self, f: F) -> crate::error::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> crate::error::Result<T> + Send + 'static,
    {
        let manager = self.manager.clone();
        let held = self.conn.take();
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = match held {
                Some(conn) => conn,
                None => manager.open().map_err(crate::error::Error::unavailable)?,
            };
            let result = f(&mut conn);
            Ok::<_, crate::error::Error>((result.is_ok().then_some(conn), result))
        });
        let (conn, result) = task.await.map_err(crate::error::Error::internal)??;
        self.conn = conn;
        result
    }
}

/// The pool, with a way to run blocking queries from async code.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

impl Db {
    pub fn new(pool: Pool) -> Db {
        Db { pool }
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> crate::error::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> crate::error::Result<T> + Send + 'static,
    {
        self.start(f).await
    }

    /// Like [`Db::run`], but the query starts now, before the returned future is awaited: a
    /// caller can send one page while the database reads the next.
    pub fn start<T, F>(
        &self,
        f: F,
    ) -> impl std::future::Future<Output = crate::error::Result<T>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> crate::error::Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        });
        async move { task.await.map_err(crate::error::Error::internal)? }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite is built as `.cargo/config.toml` says (`LIBSQLITE3_FLAGS`): a page cache per
    /// connection without a lock, no allocation statistics, no shared-cache mode. Without that
    /// file (or with the variable set otherwise) the build falls back to libsqlite3-sys's
    /// defaults, which cost the writer about 4 % of its time per send.
    #[test]
    fn sqlite_is_built_with_the_options_the_project_sets() {
        #[derive(diesel::QueryableByName)]
        struct Opt {
            #[diesel(sql_type = diesel::sql_types::Text)]
            compile_options: String,
        }
        let DbConnection::Sqlite(mut c) = Manager::new(":memory:").open().unwrap() else {
            unreachable!("SQLite")
        };
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<Opt>(&mut c)
            .unwrap()
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "OMIT_SHARED_CACHE"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    #[actix_rt::test]
    async fn a_dedicated_connection_is_kept_and_replaced_after_a_failure() {
        // Arrange: a file database; a TEMP table lives only on the connection that made it.
        let dir =
            std::env::temp_dir().join(format!("hubbub-dedicated-{}", crate::domain::Id::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut db = Dedicated::new(Manager::new(&dir.join("db.sqlite").to_string_lossy()));
        let sql = |q: &'static str| move |c: &mut DbConnection| Ok(c.batch_execute(q)?);

        // Act
        db.run(sql("CREATE TEMP TABLE mine (x INTEGER)"))
            .await
            .unwrap();
        let kept = db.run(sql("INSERT INTO mine VALUES (1)")).await;
        let failed = db.run(sql("SELECT nope FROM nowhere")).await;
        let replaced = db.run(sql("INSERT INTO mine VALUES (2)")).await;

        // Assert
        assert!(kept.is_ok(), "the next query runs on the same connection");
        assert!(failed.is_err());
        assert!(
            replaced.is_err(),
            "after a failure the next query opens a new connection (without the TEMP table)"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn postgresql_urls_get_a_connect_timeout_unless_they_set_one() {
        let url = |u: &str| Manager::new(u).url;
        assert_eq!(
            url("postgres://u@db:5432/hubbub"),
            "postgres://u@db:5432/hubbub?connect_timeout=10"
        );
        assert_eq!(
            url("postgresql://u@db/hubbub?sslmode=require"),
            "postgresql://u@db/hubbub?sslmode=require&connect_timeout=10"
        );
        assert_eq!(
            url("postgres://u@db/hubbub?connect_timeout=3"),
            "postgres://u@db/hubbub?connect_timeout=3"
        );
        // A password that merely contains the words is not a setting (its `=` comes back
        // percent-encoded, which libpq decodes). A URL without a host (a Unix socket, which
        // fails fast when the server is down) isn't a URL to the url crate: it is left as written.
        assert_eq!(
            url("postgres://u:connect_timeout=5@db/hubbub"),
            "postgres://u:connect_timeout%3D5@db/hubbub?connect_timeout=10"
        );
        assert_eq!(
            url("postgres://u@/hubbub?host=/var/run/postgresql"),
            "postgres://u@/hubbub?host=/var/run/postgresql"
        );
        assert_eq!(
            url("sqlite:///var/lib/hubbub/hubbub.db"),
            "/var/lib/hubbub/hubbub.db"
        );
        assert_eq!(url("sqlite:hubbub.db"), "hubbub.db");
    }

    #[test]
    #[ignore = "needs PostgreSQL: set HUBBUB_TEST_POSTGRES_URL (.ci/run does)"]
    fn the_writers_postgresql_connection_uses_generic_plans() {
        let url = std::env::var("HUBBUB_TEST_POSTGRES_URL")
            .expect("needs PostgreSQL: set HUBBUB_TEST_POSTGRES_URL");
        #[derive(QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            plan_cache_mode: String,
        }
        let mode = |mut conn: DbConnection| {
            diesel::sql_query("SHOW plan_cache_mode")
                .get_result::<Setting>(&mut conn)
                .unwrap()
                .plan_cache_mode
        };
        let manager = Manager::new(&url);
        assert_eq!(mode(manager.open_writer().unwrap()), "force_generic_plan");
        assert_eq!(
            mode(manager.open().unwrap()),
            "auto",
            "other connections keep the default"
        );
    }
}
