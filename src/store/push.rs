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

/// The subscriptions of these users whose credential is still live at `now`: a session or token
/// that expired is pruned (with its subscriptions) only at the next maintenance round, and its
/// device should hear nothing more meanwhile.
pub fn for_users_live(
    conn: &mut DbConnection,
    users: &[Id],
    now: Time,
) -> QueryResult<Vec<SubscriptionRow>> {
    use super::schema::{api_tokens, sessions};
    use diesel::dsl::exists;
    let live_session = sessions::table
        .filter(sessions::id.eq(push_subscriptions::credential_id))
        .filter(sessions::expires_at.gt(now));
    let live_token = api_tokens::table
        .filter(api_tokens::id.eq(push_subscriptions::credential_id))
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(now)),
        );
    push_subscriptions::table
        .filter(push_subscriptions::user_id.eq_any(users))
        .filter(exists(live_session).or(exists(live_token)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;
    use crate::store::{sessions::SessionRow, tokens::TokenRow};

    fn subscription(conn: &mut DbConnection, user: Id, credential: Id, target: &str) -> Id {
        let row = SubscriptionRow {
            id: Id::new(),
            user_id: user,
            credential_id: credential,
            kind: PushKind::Fcm,
            target: target.into(),
            p256dh: None,
            auth: None,
            created_at: Time::now(),
        };
        insert(conn, &row).unwrap();
        row.id
    }

    #[test]
    fn only_subscriptions_of_live_credentials_are_for_delivery() {
        let mut conn = testing::database();
        let alice = testing::user(&mut conn, "alice");
        let now = Time::now();
        let hour = chrono::Duration::hours(1);
        let session = |id: Id, expires_at: Time| SessionRow {
            id,
            key_hash: id.0.to_string(),
            user_id: alice,
            state: "{}".into(),
            expires_at,
            created_at: now,
        };
        let token = |id: Id, expires_at: Option<Time>| TokenRow {
            id,
            user_id: alice,
            name: "t".into(),
            token_hash: id.0.to_string(),
            scopes: "read".into(),
            created_at: now,
            expires_at,
        };
        let (live_session, old_session) = (Id::new(), Id::new());
        let (forever, live_token, old_token) = (Id::new(), Id::new(), Id::new());
        crate::store::sessions::insert(&mut conn, &session(live_session, now + hour)).unwrap();
        crate::store::sessions::insert(&mut conn, &session(old_session, now - hour)).unwrap();
        crate::store::tokens::insert(&mut conn, &token(forever, None)).unwrap();
        crate::store::tokens::insert(&mut conn, &token(live_token, Some(now + hour))).unwrap();
        crate::store::tokens::insert(&mut conn, &token(old_token, Some(now - hour))).unwrap();
        let mut kept = vec![
            subscription(&mut conn, alice, live_session, "a"),
            subscription(&mut conn, alice, forever, "b"),
            subscription(&mut conn, alice, live_token, "c"),
        ];
        subscription(&mut conn, alice, old_session, "d");
        subscription(&mut conn, alice, old_token, "e");
        subscription(&mut conn, alice, Id::new(), "f");

        let mut found: Vec<Id> = for_users_live(&mut conn, &[alice], now)
            .unwrap()
            .into_iter()
            .map(|row| row.id)
            .collect();

        found.sort();
        kept.sort();
        assert_eq!(found, kept);
        assert_eq!(for_users(&mut conn, &[alice]).unwrap().len(), 6);
        assert_eq!(
            delete_for_credentials(&mut conn, &[old_session, old_token]).unwrap(),
            2
        );
    }
}
