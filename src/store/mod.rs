//! The database: one code path over SQLite (embedded default) and PostgreSQL, via diesel's
//! `MultiConnection`. Query functions live in the submodules as plain functions over
//! `&mut DbConnection`; they return `diesel::result::Error`, which `crate::error` maps to 500.

pub mod attachments;
pub mod events;
pub mod idempotency;
pub mod messages;
pub mod rooms;
pub mod schema;
pub mod secrets;
pub mod sessions;
pub mod social;
pub mod sql_types;
#[cfg(test)]
pub mod testing;
pub mod tokens;
pub mod users;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// A connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Inserts many rows: one multi-row statement on PostgreSQL, one prepared statement per row on
/// SQLite (see below). diesel's `MultiConnection` has no batch insert, so the statement is built
/// for the concrete connection; the rows' `Option` fields are written as NULL
/// (`treat_none_as_default_value = false`), so every row has the same statement.
macro_rules! insert_many {
    ($conn:expr, $table:expr, $rows:expr) => {{
        use diesel::RunQueryDsl as _;
        let rows = $rows;
        if rows.is_empty() {
            Ok(())
        } else {
            match $conn {
                $crate::store::DbConnection::Postgresql(c) => diesel::insert_into($table)
                    .values(rows)
                    .execute(c)
                    .map(|_| ()),
                // One prepared statement run per row: SQLite keeps it, where a multi-row
                // insert has a different text for every row count and is parsed each time
                // (a fifth of the writer's time, by perf).
                $crate::store::DbConnection::Sqlite(c) => rows.iter().try_for_each(|row| {
                    diesel::insert_into($table)
                        .values(row)
                        .execute(c)
                        .map(|_| ())
                }),
            }
            .map(|_| ())
        }
    }};
}
pub(crate) use insert_many;

/// The items, sorted, each once.
pub fn distinct<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.sort();
    items.dedup();
    items
}

/// A pool of connections to the configured database.
pub type Pool = r2d2::Pool<Manager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

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

/// Opens connections of one backend and applies the settings each connection needs.
#[derive(Debug, Clone)]
pub struct Manager {
    url: String,
    backend: Backend,
}

impl Manager {
    pub fn new(url: &str) -> Manager {
        let url = url.strip_prefix("sqlite://").unwrap_or(url).to_string();
        let backend = Backend::of_url(&url);
        let url = match backend {
            Backend::Postgres => with_connect_timeout(url),
            Backend::Sqlite => url,
        };
        Manager { backend, url }
    }

    /// Opens one connection (the group-commit writer keeps one of its own).
    pub fn open(&self) -> Result<DbConnection, ConnectionError> {
        match self.backend {
            Backend::Postgres => {
                diesel::PgConnection::establish(&self.url).map(DbConnection::Postgresql)
            }
            Backend::Sqlite => {
                let mut conn = diesel::SqliteConnection::establish(&self.url)?;
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

    /// Opens the group-commit writer's connection. On PostgreSQL its prepared statements
    /// always use their generic plan: the planner otherwise re-plans the send group's
    /// `= ANY($1)` lookups at every execution (custom plans looked cheaper for each batch's
    /// arrays), about 80 µs of each batch, for the same index lookups every time.
    pub fn open_writer(&self) -> Result<DbConnection, ConnectionError> {
        let mut conn = self.open()?;
        if let DbConnection::Postgresql(c) = &mut conn {
            c.batch_execute("SET plan_cache_mode = force_generic_plan")
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
        }
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
fn with_connect_timeout(url: String) -> String {
    if url.contains("connect_timeout=") {
        return url;
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout=10")
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

/// Applies the pending migrations of the connection's backend.
pub fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<()> {
    let result = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Postgresql(c) => {
            // Nodes starting together must not migrate at once: one waits for the other.
            c.batch_execute("SELECT pg_advisory_lock(7242470)")?;
            let done = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            c.batch_execute("SELECT pg_advisory_unlock(7242470)")?;
            done
        }
    };
    result.map_err(|e| anyhow::anyhow!("migrations failed: {e}"))
}

/// Runs `f` in a write transaction. On SQLite the transaction starts with `BEGIN IMMEDIATE`,
/// taking the write lock up front: a deferred transaction that reads and then writes can fail
/// with SQLITE_BUSY when another writer committed in between, and busy_timeout can't help it.
pub fn write_tx<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    begin_write(conn)?;
    match f(conn) {
        Ok(value) => {
            match <DbConnection as Connection>::TransactionManager::commit_transaction(conn) {
                Ok(()) => Ok(value),
                Err(e) => {
                    let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(
                        conn,
                    );
                    Err(e.into())
                }
            }
        }
        Err(e) => {
            <DbConnection as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(e)
        }
    }
}

/// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite; see [`write_tx`]).
pub fn begin_write(conn: &mut DbConnection) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c),
    }
}

/// Begins the writer's transaction holding the event-log lock: `BEGIN IMMEDIATE` on SQLite
/// (one writer at a time already); on PostgreSQL `BEGIN` and the transaction-scoped advisory
/// lock that serializes appends across nodes (ids then commit in id order), in one round trip.
pub fn begin_append(conn: &mut DbConnection) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction_sql(
            c,
            "BEGIN; SELECT pg_advisory_xact_lock(7242469)",
        ),
    }
}

/// Whether an error is a unique-constraint violation (a race another writer won).
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
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
        assert_eq!(
            url("sqlite:///var/lib/hubbub/hubbub.db"),
            "/var/lib/hubbub/hubbub.db"
        );
    }

    #[test]
    fn the_writers_postgresql_connection_uses_generic_plans() {
        // Runs where the PostgreSQL tests run (`HUBBUB_TEST_POSTGRES_URL`, set by .ci/run).
        let Ok(url) = std::env::var("HUBBUB_TEST_POSTGRES_URL") else {
            return;
        };
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
