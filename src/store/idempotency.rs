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

/// The stored outcomes of these (user, key) pairs (the caller matches user and key together).
pub fn find_any(conn: &mut DbConnection, pairs: &[(Id, &str)]) -> QueryResult<Vec<IdempotencyRow>> {
    match conn {
        DbConnection::Postgresql(c) => {
            if pairs.is_empty() {
                return Ok(Vec::new());
            }
            let pairs = super::distinct(pairs.iter().copied());
            KeyLookupPg {
                users: pairs.iter().map(|p| p.0).collect(),
                keys: pairs.iter().map(|p| p.1.to_string()).collect(),
            }
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

/// [`find_any`] on PostgreSQL: the pairs as two arrays, joined to the key's primary key, so a
/// group of N keyed sends makes N index probes. (`user_id = ANY($1) AND key = ANY($2)` probed
/// every user with every key, N² for N senders, and halved the keyed send rate of 64 users.) A
/// type with a static query id, so that diesel keeps it prepared (`sql_query` never is).
struct KeyLookupPg {
    users: Vec<Id>,
    keys: Vec<String>,
}

impl diesel::query_builder::Query for KeyLookupPg {
    type SqlType = (
        super::sql_types::DbUuid,
        diesel::sql_types::Text,
        diesel::sql_types::Text,
        diesel::sql_types::Text,
        super::sql_types::DbTime,
    );
}

super::kept_prepared!(KeyLookupPg);

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for KeyLookupPg {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, Text};
        out.push_sql(
            "SELECT i.user_id, i.key, i.request_hash, i.outcome, i.created_at \
             FROM idempotency_keys i JOIN unnest(",
        );
        out.push_bind_param::<Array<super::sql_types::DbUuid>, _>(&self.users)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<Text>, _>(&self.keys)?;
        out.push_sql("::text[]) AS p(user_id, key) ON i.user_id = p.user_id AND i.key = p.key");
        Ok(())
    }
}
