//! The outcomes of writes sent with an `Idempotency-Key` (as JSON: what core returned for the
//! write), written in the same transaction as the write itself.

use crate::domain::{Id, Time};
use diesel::prelude::*;

use super::schema::idempotency_keys;
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub user_id: Id,
    pub key: String,
    pub request_hash: String,
    pub outcome: String,
    pub created_at: Time,
}

/// The stored outcomes for any of these users' keys (a superset of the pairs: the caller
/// matches user and key together).
pub fn find_any(conn: &mut DbConnection, pairs: &[(Id, &str)]) -> QueryResult<Vec<IdempotencyRow>> {
    match conn {
        DbConnection::Postgresql(c) => {
            if pairs.is_empty() {
                return Ok(Vec::new());
            }
            let users = super::distinct(pairs.iter().map(|p| p.0));
            let keys = super::distinct(pairs.iter().map(|p| p.1));
            idempotency_keys::table
                .filter(idempotency_keys::user_id.eq_any(users))
                .filter(idempotency_keys::key.eq_any(keys))
                .select(IdempotencyRow::as_select())
                .load(c)
        }
        // One prepared lookup per pair (see `rooms::current_stays_with_kind`).
        DbConnection::Sqlite(c) => {
            let mut found = Vec::new();
            for (user, key) in super::distinct(pairs.iter().copied()) {
                found.extend(
                    idempotency_keys::table
                        .filter(idempotency_keys::user_id.eq(user))
                        .filter(idempotency_keys::key.eq(key))
                        .select(IdempotencyRow::as_select())
                        .load::<IdempotencyRow>(c)?,
                );
            }
            Ok(found)
        }
    }
}

/// Stores many outcomes (`insert_many!`).
pub fn insert_many(conn: &mut DbConnection, rows: &[IdempotencyRow]) -> QueryResult<()> {
    super::insert_many!(conn, idempotency_keys::table, rows)
}

/// Forgets keys older than `cutoff` (a retry after that is a new send).
pub fn prune(conn: &mut DbConnection, cutoff: Time) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(cutoff)))
        .execute(conn)
}
