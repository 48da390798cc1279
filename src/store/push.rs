//! Push subscriptions: where a user's devices are notified.

use diesel::prelude::*;

use super::schema::push_subscriptions;
use super::DbConnection;
use crate::domain::{Id, PushKind, Time};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = push_subscriptions)]
pub struct SubscriptionRow {
    pub id: Id,
    pub user_id: Id,
    /// The session or token that made it; it is deleted when that credential ends.
    pub credential_id: Id,
    pub kind: PushKind,
    /// The Web Push endpoint URL, or the FCM registration token.
    pub target: String,
    /// Web Push only: the browser's P-256 public key and auth secret (base64url).
    pub p256dh: Option<String>,
    pub auth: Option<String>,
    pub created_at: Time,
}

/// The subscriptions of these users.
pub fn for_users(conn: &mut DbConnection, users: &[Id]) -> QueryResult<Vec<SubscriptionRow>> {
    push_subscriptions::table
        .filter(push_subscriptions::user_id.eq_any(users))
        .select(SubscriptionRow::as_select())
        .load(conn)
}

/// Deletes one subscription (it is gone at the push service).
pub fn delete(conn: &mut DbConnection, id: Id) -> QueryResult<bool> {
    diesel::delete(push_subscriptions::table.find(id))
        .execute(conn)
        .map(|n| n > 0)
}

/// The subscription of this kind with this endpoint or token, whoever holds it.
pub fn find_target(
    conn: &mut DbConnection,
    kind: PushKind,
    target: &str,
) -> QueryResult<Option<SubscriptionRow>> {
    push_subscriptions::table
        .filter(push_subscriptions::kind.eq(kind))
        .filter(push_subscriptions::target.eq(target))
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, row: &SubscriptionRow) -> QueryResult<()> {
    diesel::insert_into(push_subscriptions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Ties subscription `id` to `credential` and replaces its keys (the same browser subscribing
/// again from another session of its user).
pub fn reassign(
    conn: &mut DbConnection,
    id: Id,
    credential: Id,
    p256dh: Option<&str>,
    auth: Option<&str>,
) -> QueryResult<()> {
    diesel::update(push_subscriptions::table.find(id))
        .set((
            push_subscriptions::credential_id.eq(credential),
            push_subscriptions::p256dh.eq(p256dh),
            push_subscriptions::auth.eq(auth),
        ))
        .execute(conn)
        .map(|_| ())
}

/// How many subscriptions `user` holds (count it under `users::lock`).
pub fn count_for_user(conn: &mut DbConnection, user: Id) -> QueryResult<i64> {
    push_subscriptions::table
        .filter(push_subscriptions::user_id.eq(user))
        .count()
        .get_result(conn)
}

/// How many subscriptions were made with `credential`.
pub fn count_for_credential(conn: &mut DbConnection, credential: Id) -> QueryResult<i64> {
    push_subscriptions::table
        .filter(push_subscriptions::credential_id.eq(credential))
        .count()
        .get_result(conn)
}

/// The subscriptions of `user`, oldest first.
pub fn list(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<SubscriptionRow>> {
    push_subscriptions::table
        .filter(push_subscriptions::user_id.eq(user))
        .order((
            push_subscriptions::created_at.asc(),
            push_subscriptions::id.asc(),
        ))
        .select(SubscriptionRow::as_select())
        .load(conn)
}

/// Deletes subscription `id` if `user` holds it; false otherwise.
pub fn delete_owned(conn: &mut DbConnection, user: Id, id: Id) -> QueryResult<bool> {
    diesel::delete(
        push_subscriptions::table
            .filter(push_subscriptions::id.eq(id))
            .filter(push_subscriptions::user_id.eq(user)),
    )
    .execute(conn)
    .map(|n| n > 0)
}

/// Deletes the subscriptions made with these credentials (sessions or tokens that ended).
pub fn delete_for_credentials(conn: &mut DbConnection, credentials: &[Id]) -> QueryResult<usize> {
    if credentials.is_empty() {
        return Ok(0);
    }
    diesel::delete(
        push_subscriptions::table.filter(push_subscriptions::credential_id.eq_any(credentials)),
    )
    .execute(conn)
}
