//! Invite codes (`HUBBUB_REGISTRATION=invite`). Only the SHA-256 of a code is stored; a use is
//! spent by one conditional `UPDATE`, so concurrent registrations can't spend more than it has.

use diesel::prelude::*;

use super::schema::invites;
use super::DbConnection;
use crate::domain::{Id, Time};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = invites)]
pub struct InviteRow {
    pub id: Id,
    pub code_hash: String,
    pub uses: i32,
    pub uses_left: i32,
    /// The admin who made it; `None` when made with the CLI.
    pub created_by: Option<Id>,
    pub created_at: Time,
    pub expires_at: Option<Time>,
}

pub fn insert(conn: &mut DbConnection, row: &InviteRow) -> QueryResult<()> {
    diesel::insert_into(invites::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Whether a code with this hash has a use left at `now` (a read: nothing is spent).
pub fn usable(conn: &mut DbConnection, code_hash: &str, now: Time) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        invites::table
            .filter(invites::code_hash.eq(code_hash))
            .filter(invites::uses_left.gt(0))
            .filter(
                invites::expires_at
                    .is_null()
                    .or(invites::expires_at.gt(now)),
            ),
    ))
    .get_result(conn)
}

/// Spends one use of the code with this hash, if it has one left at `now`: true if it did.
/// The condition is in the `UPDATE` itself, so of two concurrent spenders of a last use only
/// one changes a row (PostgreSQL re-checks the condition after waiting for the other's lock;
/// SQLite has one writer).
pub fn spend(conn: &mut DbConnection, code_hash: &str, now: Time) -> QueryResult<bool> {
    diesel::update(
        invites::table
            .filter(invites::code_hash.eq(code_hash))
            .filter(invites::uses_left.gt(0))
            .filter(
                invites::expires_at
                    .is_null()
                    .or(invites::expires_at.gt(now)),
            ),
    )
    .set(invites::uses_left.eq(invites::uses_left - 1))
    .execute(conn)
    .map(|n| n == 1)
}

/// The invites that can still be used at `now`, newest first.
pub fn list_live(conn: &mut DbConnection, now: Time, limit: i64) -> QueryResult<Vec<InviteRow>> {
    invites::table
        .filter(invites::uses_left.gt(0))
        .filter(
            invites::expires_at
                .is_null()
                .or(invites::expires_at.gt(now)),
        )
        .order((invites::created_at.desc(), invites::id.desc()))
        .limit(limit)
        .select(InviteRow::as_select())
        .load(conn)
}

/// How many invites can still be used at `now`.
pub fn count_live(conn: &mut DbConnection, now: Time) -> QueryResult<i64> {
    invites::table
        .filter(invites::uses_left.gt(0))
        .filter(
            invites::expires_at
                .is_null()
                .or(invites::expires_at.gt(now)),
        )
        .count()
        .get_result(conn)
}

/// Deletes the invites that are used up or expired at `now`.
pub fn delete_dead(conn: &mut DbConnection, now: Time) -> QueryResult<usize> {
    diesel::delete(
        invites::table.filter(
            invites::uses_left
                .le(0)
                .or(invites::expires_at.le(now).assume_not_null()),
        ),
    )
    .execute(conn)
}

/// Deletes one invite; true if it existed.
pub fn delete(conn: &mut DbConnection, id: Id) -> QueryResult<bool> {
    diesel::delete(invites::table.find(id))
        .execute(conn)
        .map(|n| n > 0)
}
