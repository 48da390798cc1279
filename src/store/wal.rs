//! SQLite's write-ahead log, copied back into the database file off the writer's thread.
//!
//! By default SQLite checkpoints on the connection whose commit takes the log past 1,000 pages:
//! here that is always the group-commit writer, the one serial part of every send, and a
//! profile of keyed sends found it spending a fifth of its time there (reading the log's pages
//! and writing and syncing them into the database file) while every caller of the batch
//! waited. So the writer's connection checkpoints only as a backstop, past
//! [`WRITER_BACKSTOP_PAGES`] (`Manager::open_writer`), and each node runs a passive
//! [`checkpoint`] every [`INTERVAL`] while the log grows ([`IDLE_INTERVAL`] otherwise) on a
//! thread and connection of its own ([`start`]; a pooled connection waited behind the requests
//! under load, and the backstop did the work). A passive
//! checkpoint takes no lock a writer or reader needs: the writer appends while it copies.
//!
//! The log then stays short: once a checkpoint has copied every frame, the writer's next
//! transaction starts the log again from its beginning; under a steady load the checkpointer
//! is usually a few frames behind, and the backstop's checkpoint (of those few frames) lets the
//! log restart at most every [`WRITER_BACKSTOP_PAGES`] pages. PostgreSQL has no such log to keep:
//! there this does nothing.

use std::thread::JoinHandle;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use tokio::sync::watch;

use super::{DbConnection, Manager};

pub use super::connection::WRITER_BACKSTOP_PAGES;

/// How often each node checkpoints while the log grows: often, so that what the writer's
/// backstop finds left to copy is a few milliseconds of commits.
pub const INTERVAL: Duration = Duration::from_millis(10);

/// How often each node checkpoints while the log doesn't grow.
pub const IDLE_INTERVAL: Duration = Duration::from_millis(100);

/// The pragma's answer, but for its `busy` column (1 only for the modes that wait).
#[derive(QueryableByName)]
struct Checkpointed {
    #[diesel(sql_type = BigInt)]
    log: i64,
    #[diesel(sql_type = BigInt)]
    checkpointed: i64,
}

/// What one checkpoint found: the log's frames, and how many of them are now in the database
/// file (equal when it is all copied; -1 both when the database is not in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub log: i64,
    pub checkpointed: i64,
}

/// Copies as much of the log into the database file as no reader still needs, without waiting
/// for anyone (`PRAGMA wal_checkpoint(PASSIVE)`). `None` on PostgreSQL.
pub fn checkpoint(conn: &mut DbConnection) -> QueryResult<Option<Progress>> {
    let DbConnection::Sqlite(c) = conn else {
        return Ok(None);
    };
    let row: Checkpointed = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(c)?;
    Ok(Some(Progress {
        log: row.log,
        checkpointed: row.checkpointed,
    }))
}

/// How long the checkpointer sleeps after a checkpoint that found `now`, the one before having
/// found `before`: [`INTERVAL`] while the log grows (or restarted: its frame count moved),
/// [`IDLE_INTERVAL`] while it stands still, so an idle node doesn't wake 100 times a second.
pub fn wait_after(before: Option<Progress>, now: Option<Progress>) -> Duration {
    match (before, now) {
        (Some(before), Some(now)) if before.log == now.log => IDLE_INTERVAL,
        _ => INTERVAL,
    }
}

/// Starts the checkpointer: a thread with a connection of its own that runs a passive
/// [`checkpoint`], then sleeps as [`wait_after`] says, until `stop` turns true or its sender is
/// gone. Nothing on PostgreSQL.
pub fn start(
    manager: Manager,
    stop: watch::Receiver<bool>,
) -> std::io::Result<Option<JoinHandle<()>>> {
    if manager.backend() != super::Backend::Sqlite {
        return Ok(None);
    }
    std::thread::Builder::new()
        .name("hubbub-checkpointer".into())
        .spawn(move || {
            let mut conn = None;
            // Said once per run of failures (a read-only file fails every time; /readyz says why).
            let mut failing = false;
            let mut last = None;
            let mut wait = INTERVAL;
            while !*stop.borrow() && stop.has_changed().is_ok() {
                std::thread::sleep(wait);
                let done = match conn.as_mut() {
                    Some(c) => checkpoint(c).map_err(|e| e.to_string()),
                    None => manager
                        .open()
                        .map(|c| {
                            conn = Some(c);
                            None
                        })
                        .map_err(|e| e.to_string()),
                };
                let found = done.as_ref().ok().copied().flatten();
                wait = wait_after(last, found);
                last = found;
                match done.map(|_| ()) {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("checkpointing the write-ahead log works again");
                    }
                    Ok(()) => {}
                    Err(error) => {
                        conn = None;
                        if !failing {
                            failing = true;
                            tracing::warn!(%error, "checkpointing the write-ahead log failed");
                        }
                    }
                }
            }
        })
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Manager;
    use diesel::connection::SimpleConnection;

    fn file_len(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// A new database file in a directory of its own (the directory, the file, its manager),
    /// and the writer's connection to it, with an empty table `t`.
    fn new_database() -> (
        std::path::PathBuf,
        std::path::PathBuf,
        Manager,
        DbConnection,
    ) {
        let dir = std::env::temp_dir().join(format!("hubbub-wal-{}", crate::domain::Id::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite");
        let manager = Manager::new(&path.to_string_lossy());
        let mut writer = manager.open_writer().unwrap();
        writer
            .batch_execute("CREATE TABLE t (x BLOB NOT NULL)")
            .unwrap();
        (dir, path, manager, writer)
    }

    /// Adds `n` rows of 4,000 random bytes to `t` in one statement.
    fn add_rows(writer: &mut DbConnection, n: usize) {
        writer
            .batch_execute(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
                 INSERT INTO t SELECT randomblob(4000) FROM n"
            ))
            .unwrap();
    }

    #[test]
    fn the_checkpointer_wakes_often_only_while_the_log_moves() {
        let at = |log| {
            Some(Progress {
                log,
                checkpointed: log,
            })
        };
        assert_eq!(wait_after(None, at(5)), INTERVAL);
        assert_eq!(wait_after(at(5), at(9)), INTERVAL, "the log grew");
        assert_eq!(wait_after(at(900), at(3)), INTERVAL, "the log restarted");
        assert_eq!(
            wait_after(at(9), at(9)),
            IDLE_INTERVAL,
            "the log stands still"
        );
        assert_eq!(
            wait_after(at(9), None),
            INTERVAL,
            "a failure or a new connection"
        );
        assert!(IDLE_INTERVAL > INTERVAL);
    }

    #[test]
    fn the_checkpointer_thread_copies_the_log_and_stops_when_told() {
        let (dir, path, manager, mut writer) = new_database();
        let before = file_len(&path);
        add_rows(&mut writer, 500);
        let (stop_tx, stop_rx) = watch::channel(false);

        let thread = start(manager, stop_rx)
            .unwrap()
            .expect("a thread on SQLite");

        // The rows' 2 MB reach the database file without the writer doing anything more.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while file_len(&path) < before + 1_500_000 {
            assert!(std::time::Instant::now() < deadline, "nothing was copied");
            std::thread::sleep(Duration::from_millis(20));
        }
        stop_tx.send(true).unwrap();
        thread.join().unwrap();
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_writer_leaves_the_log_to_the_checkpointer_which_copies_it_all() {
        // Arrange: a database and the writer's connection; about 1,500 pages of log, more than
        // SQLite's default threshold of 1,000 and less than the writer's backstop.
        let (dir, path, manager, mut writer) = new_database();
        let before = file_len(&path);
        for _ in 0..30 {
            add_rows(&mut writer, 50); // a transaction of its own
        }
        // The writer checkpointed nothing: the database file hasn't grown by the rows' 6 MB.
        assert!(
            file_len(&path) < before + 1_000_000,
            "the writer's commits checkpointed ({} → {} bytes)",
            before,
            file_len(&path)
        );

        // Act: one checkpoint from another connection, as each node runs them.
        let mut other = manager.open().unwrap();
        let progress = checkpoint(&mut other).unwrap().expect("SQLite");

        // Assert: every frame copied, and the file holds the rows now.
        assert!(progress.log > 1000, "{progress:?}");
        assert_eq!(progress.checkpointed, progress.log);
        assert!(file_len(&path) > before + 5_000_000);
        // The writer's next transaction starts the log again from its beginning.
        writer
            .batch_execute("INSERT INTO t VALUES (randomblob(10))")
            .unwrap();
        let after = checkpoint(&mut other).unwrap().expect("SQLite");
        assert!(after.log < 10, "the log did not restart: {after:?}");
        drop((writer, other));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
