//! Server-wide secrets kept in the database, so that every node of a cluster shares them.

use diesel::prelude::*;

use super::schema::server_secrets;
use super::DbConnection;

/// The secret called `name`, created from `make` on first use. Concurrent first uses on
/// several nodes agree: the loser of the insert race reads the winner's value.
pub fn get_or_create(
    conn: &mut DbConnection,
    name: &str,
    make: impl FnOnce() -> Vec<u8>,
) -> QueryResult<Vec<u8>> {
    let existing = server_secrets::table
        .find(name)
        .select(server_secrets::value)
        .first::<Vec<u8>>(conn)
        .optional()?;
    if let Some(value) = existing {
        return Ok(value);
    }
    let inserted = diesel::insert_into(server_secrets::table)
        .values((
            server_secrets::name.eq(name),
            server_secrets::value.eq(make()),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => {}
        Err(e) if super::is_unique_violation(&e) => {}
        Err(e) => return Err(e),
    }
    server_secrets::table
        .find(name)
        .select(server_secrets::value)
        .first(conn)
}
