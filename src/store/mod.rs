//! The database: one code path over SQLite (embedded default) and PostgreSQL, via diesel's
//! `MultiConnection`. Query functions live in the submodules as plain functions over
//! `&mut DbConnection`; they return `diesel::result::Error`, which `crate::error` maps to 500.

pub mod attachments;
pub mod batched_log;
mod connection;
pub mod erasure;
pub mod events;
pub mod export;
pub mod idempotency;
pub mod invites;
pub mod messages;
pub mod notifications;
pub mod presence;
pub mod push;
pub mod push_worker;
pub mod reports;
pub mod rooms;
pub mod schema;
pub mod search;
pub mod secrets;
pub mod sessions;
pub mod social;
pub mod sql_types;
pub mod statistics;
#[cfg(test)]
pub mod testing;
pub mod tokens;
pub mod users;
pub mod wal;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use connection::{connect, redact, Backend, Db, DbConnection, Dedicated, Manager, Pool};

/// Makes hand-written statement types ones diesel keeps prepared: each is its own static query
/// id, and runs with `RunQueryDsl`. (diesel parses a `sql_query`, or any `UPDATE` it builds, at
/// every run; the hot statements of the write path are types of their own for that reason.)
macro_rules! kept_prepared {
    ($($statement:ty),+ $(,)?) => {$(
        impl diesel::query_builder::QueryId for $statement {
            type QueryId = $statement;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl<Conn> diesel::RunQueryDsl<Conn> for $statement {}
    )+};
}
pub(crate) use kept_prepared;

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

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

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

/// Why the database can't take a write, if it can't: checked without writing (for `/readyz`).
/// SQLite: the database file, its write-ahead log and its folder must be writable by this
/// process (SQLite opens a read-only file read-only without a word, and every write then
/// fails). PostgreSQL: the session must not be read-only (a standby, or
/// `default_transaction_read_only`).
pub fn cannot_write(conn: &mut DbConnection) -> QueryResult<Option<String>> {
    use diesel::sql_types::Text;
    #[derive(QueryableByName)]
    struct File {
        #[diesel(sql_type = Text)]
        file: String,
    }
    #[derive(QueryableByName)]
    struct ReadOnly {
        #[diesel(sql_type = Text)]
        transaction_read_only: String,
    }
    match conn {
        DbConnection::Postgresql(c) => {
            let mode = diesel::sql_query("SHOW transaction_read_only").get_result::<ReadOnly>(c)?;
            Ok((mode.transaction_read_only == "on")
                .then(|| "the PostgreSQL session is read-only (a standby?)".to_string()))
        }
        DbConnection::Sqlite(c) => {
            let main =
                diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
                    .get_result::<File>(c)?;
            if main.file.is_empty() {
                return Ok(None); // in memory
            }
            let file = std::path::PathBuf::from(&main.file);
            let wal = std::path::PathBuf::from(format!("{}-wal", main.file));
            let folder = file.parent().map(std::path::Path::to_path_buf);
            let mut paths = vec![file];
            if wal.exists() {
                paths.push(wal);
            }
            paths.extend(folder);
            Ok(paths
                .into_iter()
                .find(|p| !writable(p))
                .map(|p| format!("{} is not writable by the server", p.display())))
        }
    }
}

/// Whether this process may write `path`, asked of the kernel without opening it: opening and
/// closing a SQLite database file would drop this process's locks on it.
fn writable(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `access` reads the NUL-terminated path and nothing else.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
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

/// Where the statement journals of the connection's next transactions are kept (SQLite; nothing
/// on PostgreSQL). A statement that writes inside a transaction keeps the pages it changes, to
/// undo itself alone; SQLite keeps that journal in memory up to 64 KiB, then in a temporary
/// file. The writer keeps in memory a batch made only of groups whose statements are bounded
/// (`Group::bounded_statements`: the send groups, whose messages are one statement,
/// `messages::append_sent`, with a journal past 64 KiB that cost 7 % of the server's time when
/// written to a file; a group is at most the writer's batch, so a few MB). Every other batch
/// keeps SQLite's default, since one of its statements can change a whole account's messages
/// (an erasure) and memory would then
/// have no bound. Runs outside a transaction (SQLite refuses the change inside one).
pub fn statement_journals_in_memory(conn: &mut DbConnection, in_memory: bool) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => c.batch_execute(if in_memory {
            "PRAGMA temp_store = MEMORY"
        } else {
            "PRAGMA temp_store = DEFAULT"
        }),
        DbConnection::Postgresql(_) => Ok(()),
    }
}

/// Whether an error is a unique-constraint violation (a race another writer won).
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
