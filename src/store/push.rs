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
