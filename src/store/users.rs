//! User rows and their queries.

use crate::domain::{Id, Time, UserKind};
use diesel::prelude::*;

use super::schema::users;
use super::DbConnection;

/// A stored user, password hash included: never serialize this one to a client.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: Id,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    /// `user` or `bot`.
    pub kind: UserKind,
    /// The creator of a bot.
    pub owner_id: Option<Id>,
    pub avatar_attachment_id: Option<Id>,
    pub created_at: Time,
    /// May use `/api/v1/admin/` (set with `hubbub admin promote`).
    pub admin: bool,
    /// An admin turned the account off: it can't sign in until reactivated.
    pub deactivated_at: Option<Time>,
    /// The user deleted the account: the row stays as the tombstone their messages point to.
    pub deleted_at: Option<Time>,
    /// When the user last exported their data.
    pub last_export_at: Option<Time>,
}

pub fn insert(conn: &mut DbConnection, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Makes concurrent writes that count what `user` owns queue behind each other until the
/// transaction ends: SQLite has one writer in a write transaction already; PostgreSQL locks the
/// user's row.
pub fn lock(conn: &mut DbConnection, user: Id) -> QueryResult<()> {
    if let DbConnection::Postgresql(c) = conn {
        users::table
            .find(user)
            .select(users::id)
            .for_update()
            .load::<Id>(c)?;
    }
    Ok(())
}

/// How many bots `owner` has, counted under `lock`.
pub fn count_bots_locking(conn: &mut DbConnection, owner: Id) -> QueryResult<i64> {
    lock(conn, owner)?;
    users::table
        .filter(users::owner_id.eq(owner))
        .count()
        .get_result(conn)
}

pub fn find(conn: &mut DbConnection, id: Id) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_username(conn: &mut DbConnection, username: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// The users among `ids` that exist, in no particular order.
pub fn find_many(conn: &mut DbConnection, ids: &[Id]) -> QueryResult<Vec<UserRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    users::table
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(conn)
}

pub fn set_display_name(conn: &mut DbConnection, id: Id, name: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::display_name.eq(name))
        .execute(conn)
        .map(|_| ())
}

/// Replaces the user's password hash (a password change).
pub fn set_password_hash(conn: &mut DbConnection, id: Id, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .execute(conn)
        .map(|_| ())
}

/// Users whose username starts with `prefix`, in username order, after `after`.
pub fn search(
    conn: &mut DbConnection,
    prefix: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    // Usernames hold only [a-z0-9_.-]; escape the LIKE wildcard among them.
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut query = users::table
        .filter(users::username.like(pattern).escape('\\'))
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        .order(users::username.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::username.gt(after.to_string()));
    }
    query.load(conn)
}

pub fn set_avatar(conn: &mut DbConnection, id: Id, attachment: Option<Id>) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::avatar_attachment_id.eq(attachment))
        .execute(conn)
        .map(|_| ())
}

/// Whether some user shows this attachment as their picture.
pub fn is_avatar(conn: &mut DbConnection, attachment: Id) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::avatar_attachment_id.eq(Some(attachment))),
    ))
    .get_result(conn)
}

/// The user `id`, read under [`lock`]: a deactivation committing meanwhile is waited for and
/// seen (SQLite's write transaction has the one write lock already).
pub fn find_locking(conn: &mut DbConnection, id: Id) -> QueryResult<Option<UserRow>> {
    lock(conn, id)?;
    find(conn, id)
}

/// Makes `id` an administrator or not; false if there is no such user.
pub fn set_admin(conn: &mut DbConnection, id: Id, admin: bool) -> QueryResult<bool> {
    diesel::update(users::table.find(id))
        .set(users::admin.eq(admin))
        .execute(conn)
        .map(|n| n > 0)
}

/// Sets or clears `deactivated_at`; false if there is no such user.
pub fn set_deactivated(conn: &mut DbConnection, id: Id, at: Option<Time>) -> QueryResult<bool> {
    diesel::update(users::table.find(id))
        .set(users::deactivated_at.eq(at))
        .execute(conn)
        .map(|n| n > 0)
}

/// Every user (people and bots) whose username contains `part` (all when `None`), in username
/// order, after `after`: the administrators' list.
pub fn list(
    conn: &mut DbConnection,
    part: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut query = users::table
        .select(UserRow::as_select())
        .order(users::username.asc())
        .limit(limit)
        .into_boxed();
    if let Some(part) = part {
        // Usernames hold only [a-z0-9_.-]; escape the LIKE wildcard among them.
        let pattern = format!(
            "%{}%",
            part.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        query = query.filter(users::username.like(pattern).escape('\\'));
    }
    if let Some(after) = after {
        query = query.filter(users::username.gt(after.to_string()));
    }
    query.load(conn)
}
