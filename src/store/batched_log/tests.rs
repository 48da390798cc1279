//! The batched log against real database files: what reaches the file, when, and what never does.

use super::*;
use crate::store::{DbConnection, Manager};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

#[derive(QueryableByName, Debug, PartialEq)]
struct Summary {
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

/// A new database in a directory of its own: its path, the writer's connection (through
/// this VFS) with a table whose index takes rows in random order, and a reader's.
fn new_database(name: &str) -> (std::path::PathBuf, DbConnection, DbConnection) {
    let dir = std::env::temp_dir().join(format!("hubbub-log-{}", crate::domain::Id::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let manager = Manager::new(&path.to_string_lossy());
    let mut writer = manager.open_writer().unwrap();
    writer
        .batch_execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
             CREATE INDEX t_body ON t(body);",
        )
        .unwrap();
    let reader = manager.open().unwrap();
    (path, writer, reader)
}

/// Adds `n` rows of 300 random characters to `t` in one transaction: about one page of the
/// table per 12 rows and one leaf of the index per row.
fn commit_rows(writer: &mut DbConnection, n: usize) {
    writer
        .batch_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO t(body) SELECT hex(randomblob(150)) FROM n"
        ))
        .unwrap();
}

fn summary(conn: &mut DbConnection) -> Summary {
    diesel::sql_query("SELECT count(*) AS rows, coalesce(sum(length(body)), 0) AS total FROM t")
        .get_result(conn)
        .unwrap()
}

fn integrity(conn: &mut DbConnection) -> String {
    diesel::sql_query("PRAGMA integrity_check")
        .get_result::<Check>(conn)
        .unwrap()
        .integrity_check
}

fn log_writes() -> (u64, u64) {
    LOG_WRITES.with(|c| c.replace((0, 0)))
}

#[test]
fn a_commit_reaches_the_log_in_one_write_and_other_connections_read_it() {
    let (path, mut writer, mut reader) = new_database("db.sqlite");
    for round in 1..=20 {
        log_writes();
        commit_rows(&mut writer, 200);
        let (asked, passed) = log_writes();
        // 35 frames and more (the index grows), each a header and a page.
        assert!(asked >= 70, "SQLite wrote {asked} pieces of log");
        assert!(
            passed * 20 <= asked,
            "{asked} pieces of log went to the file in {passed} writes"
        );
        assert_eq!(
            summary(&mut reader),
            Summary {
                rows: 200 * round,
                total: 200 * round * 300
            }
        );
    }
    assert_eq!(integrity(&mut reader), "ok");
    drop((writer, reader));
    // And from the files alone, through the default VFS.
    let mut again = Manager::new(&path.to_string_lossy()).open().unwrap();
    assert_eq!(summary(&mut again).rows, 4000);
    assert_eq!(integrity(&mut again), "ok");
}

/// Without a sync at commit, the frames are written when the connection publishes them
/// (`xShmBarrier`), before any reader can look for them.
#[test]
fn a_commit_that_does_not_sync_still_writes_its_frames_before_readers_look() {
    let (_path, mut writer, mut reader) = new_database("db.sqlite");
    writer.batch_execute("PRAGMA synchronous = OFF").unwrap();
    for round in 1..=10 {
        log_writes();
        commit_rows(&mut writer, 200);
        let (asked, passed) = log_writes();
        assert!(passed < asked / 10, "{asked} pieces in {passed} writes");
        assert_eq!(summary(&mut reader).rows, 200 * round);
    }
    assert_eq!(integrity(&mut reader), "ok");
}

/// A transaction larger than the page cache spills frames to the log before its commit,
/// writes some pages again over them, or is rolled back and its frames written over.
#[test]
fn spilled_rewritten_and_rolled_back_frames_leave_the_log_as_sqlite_wrote_it() {
    let (_path, mut writer, mut reader) = new_database("db.sqlite");
    writer
        .batch_execute("PRAGMA cache_size = 20; PRAGMA cache_spill = 20")
        .unwrap();
    commit_rows(&mut writer, 100);
    writer.batch_execute("BEGIN").unwrap();
    log_writes();
    commit_rows(&mut writer, 2000);
    // Frames reached the log before any commit: the case this test is about.
    let (spilled, _) = log_writes();
    assert!(spilled > 0, "the transaction did not spill");
    writer.batch_execute("ROLLBACK").unwrap();
    assert_eq!(summary(&mut reader).rows, 100);
    writer.batch_execute("BEGIN").unwrap();
    commit_rows(&mut writer, 1500);
    writer
        .batch_execute("UPDATE t SET body = upper(body) WHERE id % 3 = 0")
        .unwrap();
    commit_rows(&mut writer, 500);
    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(summary(&mut reader).rows, 2100);
    assert_eq!(integrity(&mut reader), "ok");
    assert_eq!(integrity(&mut writer), "ok");
}

/// Frames spilled by a transaction that is then rolled back are never written over what
/// another connection commits after it, at the same places in the log.
#[test]
fn a_rolled_back_transaction_leaves_nothing_to_write_over_the_next_writers_frames() {
    let (path, mut writer, mut reader) = new_database("db.sqlite");
    writer
        .batch_execute(
            "CREATE TABLE u (x BLOB NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
             INSERT INTO u SELECT randomblob(3000) FROM n;
             PRAGMA cache_size = 20; PRAGMA cache_spill = 20;",
        )
        .unwrap();
    commit_rows(&mut writer, 100);
    // Every page in the database file, so that the transaction reads none from the log;
    // rows rewritten in place leave the small cache as frames of the log, and the rollback
    // has no reason to read them back.
    writer
        .batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    // Tried until a rollback leaves frames pending: with SQLite built as .cargo/config.toml
    // says, each connection has a page cache of its own and the first try spills; a build
    // whose page cache is shared by the process (SQLITE_ENABLE_MEMORY_MANAGEMENT) spills
    // only when the other connections' pages leave it no room.
    let spilled = (0..50).any(|_| {
        log_writes();
        writer
            .batch_execute("BEGIN; UPDATE u SET x = randomblob(3000); ROLLBACK;")
            .unwrap();
        let (asked, passed) = log_writes();
        asked > passed + 2
    });
    assert!(
        spilled,
        "no rollback left frames pending: not the case tested"
    );
    // Another connection (the default VFS, as the pool's) commits where those frames were.
    let mut other = Manager::new(&path.to_string_lossy()).open().unwrap();
    for _ in 0..5 {
        commit_rows(&mut other, 300);
    }
    // The writer's next transaction, and a read of everything.
    commit_rows(&mut writer, 10);
    assert_eq!(summary(&mut reader).rows, 100 + 5 * 300 + 10);
    assert_eq!(integrity(&mut reader), "ok");
    drop((writer, reader, other));
    let mut again = Manager::new(&path.to_string_lossy()).open().unwrap();
    assert_eq!(summary(&mut again).rows, 100 + 5 * 300 + 10);
    assert_eq!(integrity(&mut again), "ok");
}

fn log_len(db: &std::path::Path) -> u64 {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    std::fs::metadata(name).map(|m| m.len()).unwrap_or(0)
}

/// A commit whose frames cannot be written fails and leaves none of them in the log: not
/// at the release of the write lock either, where the commit's caller has been told it
/// failed and a crash would otherwise let the log bring it back.
#[test]
fn a_commit_whose_log_cannot_be_written_fails_and_leaves_nothing_behind() {
    let (path, mut writer, mut reader) = new_database("db.sqlite");
    commit_rows(&mut writer, 50);
    let before = log_len(&path);
    FAIL_WRITES.with(|n| n.set(1));
    let failed = writer.batch_execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
         INSERT INTO t(body) SELECT hex(randomblob(150)) FROM n",
    );
    FAIL_WRITES.with(|n| n.set(0));
    assert!(failed.is_err(), "the commit succeeded: {failed:?}");
    assert_eq!(
        log_len(&path),
        before,
        "the failed commit's frames reached the log"
    );
    assert_eq!(summary(&mut reader).rows, 50);
    commit_rows(&mut writer, 10);
    assert_eq!(summary(&mut reader).rows, 60);
    assert_eq!(integrity(&mut reader), "ok");
}

/// A write that fails in the middle of a transaction (here: before a read of the log)
/// keeps its bytes pending, so nothing SQLite counts as written is lost: the transaction
/// either fails or commits whole.
#[test]
fn a_failed_write_in_the_middle_of_a_transaction_loses_nothing_it_commits() {
    let (_path, mut writer, mut reader) = new_database("db.sqlite");
    writer
        .batch_execute("PRAGMA cache_size = 20; PRAGMA cache_spill = 20")
        .unwrap();
    commit_rows(&mut writer, 100);
    for fail_after in [0u32, 1, 3] {
        let before = summary(&mut reader).rows;
        writer.batch_execute("BEGIN").unwrap();
        commit_rows(&mut writer, 500);
        FAIL_WRITES.with(|n| n.set(1));
        // Rewrites pages the small cache spilled: reads of the log, then their own writes.
        for _ in 0..fail_after {
            let _ = writer.batch_execute("UPDATE t SET body = lower(body) WHERE id % 7 = 0");
        }
        let outcome = writer.batch_execute("COMMIT");
        FAIL_WRITES.with(|n| n.set(0));
        let rows = summary(&mut reader).rows;
        if outcome.is_ok() {
            assert_eq!(rows, before + 500);
        } else {
            let _ = writer.batch_execute("ROLLBACK");
            assert_eq!(summary(&mut reader).rows, before);
        }
        assert_eq!(integrity(&mut reader), "ok", "failing after {fail_after}");
        assert_eq!(integrity(&mut writer), "ok", "failing after {fail_after}");
    }
    commit_rows(&mut writer, 10);
    assert_eq!(integrity(&mut reader), "ok");
}

#[test]
fn a_path_becomes_a_uri_that_names_the_same_file() {
    let name = NAME.to_str().unwrap();
    assert_eq!(
        with_vfs("data/hubbub.db"),
        format!("file:data/hubbub.db?vfs={name}")
    );
    assert_eq!(
        with_vfs("/tmp/a%b?c#d.db"),
        format!("file:/tmp/a%25b%3Fc%23d.db?vfs={name}")
    );
    assert_eq!(
        with_vfs("file:x.db?mode=rwc"),
        format!("file:x.db?mode=rwc&vfs={name}")
    );
    let (path, mut writer, _reader) = new_database("odd ?#% name.db");
    commit_rows(&mut writer, 10);
    assert!(path.exists(), "{} was not created", path.display());
    let mut plain = Manager::new(&path.to_string_lossy()).open().unwrap();
    assert_eq!(summary(&mut plain).rows, 10);
}
