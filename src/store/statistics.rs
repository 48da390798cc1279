//! Planner statistics kept current on PostgreSQL, so that no statement runs for long on a plan
//! made for a table of another size.
//!
//! The group-commit writer's statements keep their generic plans (`Manager::open_writer`), made
//! the first time each runs. On a fresh database that is when every table is empty, and such a
//! plan can read a whole table per lookup once it has grown (the idempotency lookup filtered a
//! user's keys instead of seeking them: keyed sends ran 4–8× slower). PostgreSQL re-plans a
//! cached statement when its table is analysed, but autovacuum analyses a table only after 10 %
//! of it changed and checks once a minute, so a new deployment could wait minutes. Here each node
//! analyses, every second, the tables that have changed by as many rows as they held when last
//! analysed (at least [`MIN_CHANGES`]): a table growing from empty is analysed at about 500,
//! 1,000, 2,000 … rows, so a plan is never made for a table less than half its size, and a big
//! table is left to autovacuum. SQLite's planner doesn't use statistics it isn't given, so there
//! this does nothing.

use diesel::prelude::*;
use diesel::sql_types::Text;

use super::DbConnection;

/// Changes since the last analysis below which a table is never analysed here: the plans of
/// tables this small cost little whatever they are.
pub const MIN_CHANGES: i64 = 500;

/// Tables analysed per call at most, so one call stays short.
const MAX_PER_CALL: i64 = 8;

#[derive(QueryableByName)]
struct Stale {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Analyses this schema's tables whose statistics are stale (see the module's comment) and
/// returns their names. PostgreSQL re-plans the statements that use them, on every connection.
pub fn refresh(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    let DbConnection::Postgresql(c) = conn else {
        return Ok(Vec::new());
    };
    // `reltuples` is -1 for a table never analysed (PostgreSQL 14+): any change then counts.
    let stale: Vec<Stale> = diesel::sql_query(format!(
        "SELECT s.relname::text AS name FROM pg_stat_user_tables s \
         JOIN pg_class c ON c.oid = s.relid \
         WHERE s.schemaname = current_schema() \
           AND s.n_mod_since_analyze >= {MIN_CHANGES} \
           AND s.n_mod_since_analyze >= c.reltuples \
         ORDER BY s.n_mod_since_analyze DESC LIMIT {MAX_PER_CALL}"
    ))
    .load(c)?;
    let mut analysed = Vec::with_capacity(stale.len());
    for Stale { name } in stale {
        // The name comes from the catalogue; quoted as an identifier all the same.
        diesel::sql_query(format!("ANALYZE \"{}\"", name.replace('"', "\"\""))).execute(c)?;
        analysed.push(name);
    }
    Ok(analysed)
}

/// Analyses the tables that have never been analysed (a database just made by the migrations),
/// so that the first plans are made with statistics. Cheap: such tables are new, and ANALYZE
/// reads a bounded sample of a big one.
pub fn analyse_new(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    let DbConnection::Postgresql(c) = conn else {
        return Ok(Vec::new());
    };
    let never: Vec<Stale> = diesel::sql_query(
        "SELECT s.relname::text AS name FROM pg_stat_user_tables s \
         JOIN pg_class c ON c.oid = s.relid \
         WHERE s.schemaname = current_schema() AND c.reltuples < 0 \
           AND s.last_analyze IS NULL AND s.last_autoanalyze IS NULL",
    )
    .load(c)?;
    let mut analysed = Vec::with_capacity(never.len());
    for Stale { name } in never {
        diesel::sql_query(format!("ANALYZE \"{}\"", name.replace('"', "\"\""))).execute(c)?;
        analysed.push(name);
    }
    Ok(analysed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Id, Time};
    use crate::store::idempotency::{self, IdempotencyRow};
    use crate::store::{run_migrations, Manager};
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;

    /// A fresh database next to the one `HUBBUB_TEST_POSTGRES_URL` names, dropped at the end.
    struct FreshDatabase {
        admin: String,
        name: String,
        url: String,
    }

    impl FreshDatabase {
        fn new() -> FreshDatabase {
            let admin = std::env::var("HUBBUB_TEST_POSTGRES_URL")
                .expect("needs PostgreSQL: set HUBBUB_TEST_POSTGRES_URL");
            let name = format!("hubbub_stats_{}", Id::new().0.simple());
            let mut conn = diesel::PgConnection::establish(&admin).unwrap();
            conn.batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            let url = format!("{base}/{name}");
            FreshDatabase { admin, name, url }
        }
    }

    impl Drop for FreshDatabase {
        fn drop(&mut self) {
            if let Ok(mut conn) = diesel::PgConnection::establish(&self.admin) {
                let _ = conn.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        }
    }

    #[derive(QueryableByName)]
    struct Read {
        #[diesel(sql_type = BigInt)]
        rows: i64,
    }

    /// Rows of `idempotency_keys` this connection's transaction has read so far (the statistics
    /// a backend keeps of its own open transaction).
    fn rows_read(conn: &mut DbConnection) -> i64 {
        diesel::sql_query(
            "SELECT (COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0))::bigint AS rows \
             FROM pg_stat_xact_user_tables WHERE relname = 'idempotency_keys'",
        )
        .get_result::<Read>(conn)
        .map_or(0, |r| r.rows)
    }

    /// Rows read by one lookup of a key the user doesn't have, on the writer's connection.
    fn rows_one_lookup_reads(writer: &mut DbConnection, user: Id) -> i64 {
        writer.batch_execute("BEGIN").unwrap();
        let before = rows_read(writer);
        let found = idempotency::find_any(writer, &[(user, "not-a-key")]).unwrap();
        let read = rows_read(writer) - before;
        writer.batch_execute("ROLLBACK").unwrap();
        assert!(found.is_empty());
        read
    }

    /// The cold-start cliff of keyed sends (#21): the writer's generic plan of the idempotency
    /// lookup, made while the table was empty, read every key of the user on each lookup once
    /// they had thousands. After `refresh` the statement is re-planned and seeks the one key.
    #[test]
    #[ignore = "needs PostgreSQL: set HUBBUB_TEST_POSTGRES_URL (.ci/run does)"]
    fn a_plan_made_on_an_empty_table_is_remade_once_it_has_grown() {
        // Arrange: a fresh database; the writer plans the lookup while the table is empty.
        let db = FreshDatabase::new();
        let manager = Manager::new(&db.url);
        let mut other = manager.open().unwrap();
        run_migrations(&mut other).unwrap();
        assert!(
            !analyse_new(&mut other).unwrap().is_empty(),
            "a fresh database's tables are analysed once"
        );
        assert!(analyse_new(&mut other).unwrap().is_empty(), "and only once");
        let mut writer = manager.open_writer().unwrap();
        let user = Id::new();
        rows_one_lookup_reads(&mut writer, user);

        // One user's 20,000 keys, as a bot sending with keys fills it.
        let rows: Vec<IdempotencyRow> = (0..20_000)
            .map(|i| IdempotencyRow {
                user_id: user,
                key: format!("key-{i}"),
                request_hash: String::new(),
                outcome: "{}".into(),
                created_at: Time::now(),
            })
            .collect();
        for chunk in rows.chunks(2_000) {
            idempotency::insert_many(&mut other, chunk).unwrap();
        }
        let stale = rows_one_lookup_reads(&mut writer, user);
        eprintln!("a lookup on the plan made on the empty table read {stale} rows");

        // Act: statistics are flushed to the shared view at most once a second.
        let mut analysed = Vec::new();
        for _ in 0..50 {
            analysed = refresh(&mut other).unwrap();
            if !analysed.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }

        // Assert
        assert!(
            analysed.iter().any(|t| t == "idempotency_keys"),
            "{analysed:?}"
        );
        let fresh = rows_one_lookup_reads(&mut writer, user);
        assert!(
            fresh <= 1,
            "the re-made plan seeks the key: read {fresh} rows (before: {stale})"
        );
        assert!(
            refresh(&mut other).unwrap().is_empty(),
            "nothing is stale right after"
        );
    }
}
