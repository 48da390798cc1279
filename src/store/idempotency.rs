//! Stored responses of writes sent with an `Idempotency-Key`, written in the same transaction
//! as the write itself.

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
    pub status: i32,
    pub response: String,
    pub created_at: Time,
}

pub fn find(conn: &mut DbConnection, user: Id, key: &str) -> QueryResult<Option<IdempotencyRow>> {
    idempotency_keys::table
        .find((user, key))
        .select(IdempotencyRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, row: &IdempotencyRow) -> QueryResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Forgets keys older than `cutoff` (a retry after that is a new send).
pub fn prune(conn: &mut DbConnection, cutoff: Time) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(cutoff)))
        .execute(conn)
}
