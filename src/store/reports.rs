//! Report rows: what users reported to the admins, and the admins' resolutions.

use crate::domain::{Id, Time};
use diesel::prelude::*;

use super::schema::reports;
use super::DbConnection;

/// A stored report. `message_id`, `room_id` and `message_body` are set for a reported message
/// (the body as it was when reported), NULL for a reported user.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = reports, treat_none_as_default_value = false)]
pub struct ReportRow {
    pub id: Id,
    pub reporter_id: Id,
    /// The reported user, or the reported message's author.
    pub target_user_id: Id,
    pub message_id: Option<Id>,
    pub room_id: Option<Id>,
    pub message_body: Option<String>,
    pub reason: String,
    pub created_at: Time,
    pub resolved_at: Option<Time>,
    pub resolved_by: Option<Id>,
    pub resolution: Option<String>,
}

/// Which reports a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Resolved,
    All,
}

pub fn insert(conn: &mut DbConnection, row: &ReportRow) -> QueryResult<()> {
    diesel::insert_into(reports::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: Id) -> QueryResult<Option<ReportRow>> {
    reports::table
        .find(id)
        .select(ReportRow::as_select())
        .first(conn)
        .optional()
}

/// The reporter's open report of this message (`Some`), or of this user as a user (`None`).
pub fn open_of(
    conn: &mut DbConnection,
    reporter: Id,
    message: Option<Id>,
    user: Id,
) -> QueryResult<Option<ReportRow>> {
    let query = reports::table
        .filter(reports::reporter_id.eq(reporter))
        .filter(reports::resolved_at.is_null())
        .select(ReportRow::as_select())
        .into_boxed();
    let query = match message {
        Some(message) => query.filter(reports::message_id.eq(message)),
        None => query
            .filter(reports::message_id.is_null())
            .filter(reports::target_user_id.eq(user)),
    };
    query.first(conn).optional()
}

/// How many of the reporter's reports are open.
pub fn count_open_by(conn: &mut DbConnection, reporter: Id) -> QueryResult<i64> {
    reports::table
        .filter(reports::reporter_id.eq(reporter))
        .filter(reports::resolved_at.is_null())
        .count()
        .get_result(conn)
}

/// Up to `limit` reports of `status`, newest first, older than `before` (its `(created_at, id)`).
pub fn page(
    conn: &mut DbConnection,
    status: Status,
    before: Option<(Time, Id)>,
    limit: i64,
) -> QueryResult<Vec<ReportRow>> {
    let mut query = reports::table
        .select(ReportRow::as_select())
        .order((reports::created_at.desc(), reports::id.desc()))
        .limit(limit)
        .into_boxed();
    query = match status {
        Status::Open => query.filter(reports::resolved_at.is_null()),
        Status::Resolved => query.filter(reports::resolved_at.is_not_null()),
        Status::All => query,
    };
    if let Some((at, id)) = before {
        query = query.filter(
            reports::created_at
                .lt(at)
                .or(reports::created_at.eq(at).and(reports::id.lt(id))),
        );
    }
    query.load(conn)
}

/// Marks an open report resolved; false if it was already resolved (or doesn't exist).
pub fn resolve(
    conn: &mut DbConnection,
    id: Id,
    by: Id,
    at: Time,
    resolution: Option<&str>,
) -> QueryResult<bool> {
    let changed = diesel::update(
        reports::table
            .filter(reports::id.eq(id))
            .filter(reports::resolved_at.is_null()),
    )
    .set((
        reports::resolved_at.eq(Some(at)),
        reports::resolved_by.eq(Some(by)),
        reports::resolution.eq(resolution),
    ))
    .execute(conn)?;
    Ok(changed > 0)
}
