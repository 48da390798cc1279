//! Reports: a user reports a message or a user to the server's admins, who list and resolve
//! them. Reports append no event: only admins read them, through `/api/v1/admin/reports`.

use serde::Serialize;
use utoipa::ToSchema;

use crate::core::views::User;
use crate::domain::{Id, Note, Time};
use crate::error::{Class, Error, Result};
use crate::store::reports::ReportRow;
pub use crate::store::reports::Status;
use crate::store::{self, Db, DbConnection};

/// The most open reports one user may have: a repeated report of the same thing returns the
/// open one, so this bounds the rows one account can make the server keep until an admin acts.
pub const MAX_OPEN_PER_REPORTER: i64 = 50;

/// The most reports one admin page returns.
pub const MAX_PAGE: i64 = 100;

/// What is reported.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Message(Id),
    User(Id),
}

/// A reported message: which one, where, and its text when it was reported (it stays if the
/// message is edited or deleted since).
///
/// One object, `null` as a whole for a reported user, rather than three ids that are each `null`
/// together: a client (or a contract fuzzer following ids from one answer into the next path)
/// never meets a `null` where a message or room id belongs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportedMessage {
    pub id: Id,
    pub room_id: Id,
    pub body: String,
}

impl ReportedMessage {
    fn of(row: &ReportRow) -> Option<ReportedMessage> {
        Some(ReportedMessage {
            id: row.message_id?,
            room_id: row.room_id?,
            body: row.message_body.clone()?,
        })
    }
}

/// A report as its reporter sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    pub id: Id,
    /// The reported message, or `null` for a reported user.
    pub message: Option<ReportedMessage>,
    /// The reported user, or the reported message's author.
    pub user_id: Id,
    pub reason: String,
    pub created_at: Time,
}

impl From<&ReportRow> for Report {
    fn from(row: &ReportRow) -> Report {
        Report {
            id: row.id,
            message: ReportedMessage::of(row),
            user_id: row.target_user_id,
            reason: row.reason.clone(),
            created_at: row.created_at,
        }
    }
}

/// A filed report, and whether this call made it (false: the reporter's open report of the same
/// thing, returned as it was).
pub struct Filed {
    pub report: Report,
    pub created: bool,
}

/// The 404 of a message the reporter can't see: the same as one that doesn't exist.
fn message_not_found() -> Error {
    Error::not_found("message_not_found", "no such message")
}

/// The 404 of a user the reporter may not report: the same as one that doesn't exist.
fn user_not_found() -> Error {
    Error::not_found("user_not_found", "no such user")
}

fn not_yourself() -> Error {
    Error::new(
        Class::Invalid,
        "cannot_report_self",
        "you can't report yourself or your own message",
    )
}

/// Files a report of what the reporter can see now:
/// - a message of a room they are a current member of (history shows current members the whole
///   room, so a message from before they joined counts), not deleted, not their own;
/// - a user who exists, hasn't deleted their account, isn't the reporter, and doesn't block the
///   reporter (the reporter may block them: blocking and reporting go together).
///
/// Anything else is the 404 of a thing that doesn't exist. The message's body, room and author
/// are kept with the report. A report of the same thing while the reporter's earlier one is open
/// returns that one; beyond [`MAX_OPEN_PER_REPORTER`] open reports, 422 `too_many_reports`.
pub async fn file(db: &Db, reporter: Id, target: Target, reason: String) -> Result<Filed> {
    let reason = Note::parse(&reason)
        .map_err(|why| Error::validation("reason", why))?
        .into_inner();
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            let mut row = target_row(conn, reporter, target)?;
            // Concurrent reports by one reporter queue here, so the count and the repeat check
            // hold.
            store::users::lock(conn, reporter)?;
            if let Some(open) =
                store::reports::open_of(conn, reporter, row.message_id, row.target_user_id)?
            {
                return Ok(Filed {
                    report: Report::from(&open),
                    created: false,
                });
            }
            if store::reports::count_open_by(conn, reporter)? >= MAX_OPEN_PER_REPORTER {
                return Err(Error::new(
                    Class::Invalid,
                    "too_many_reports",
                    format!(
                        "you have {MAX_OPEN_PER_REPORTER} open reports: wait until the admins \
                         have looked at them"
                    ),
                ));
            }
            row.reason = reason;
            store::reports::insert(conn, &row)?;
            Ok(Filed {
                report: Report::from(&row),
                created: true,
            })
        })
    })
    .await
}

/// The new report's row for `target` (reason left empty), or why it can't be filed.
fn target_row(conn: &mut DbConnection, reporter: Id, target: Target) -> Result<ReportRow> {
    let mut row = ReportRow {
        id: Id::new(),
        reporter_id: reporter,
        target_user_id: reporter,
        message_id: None,
        room_id: None,
        message_body: None,
        reason: String::new(),
        created_at: Time::now(),
        resolved_at: None,
        resolved_by: None,
        resolution: None,
    };
    match target {
        Target::Message(id) => {
            let message = store::messages::find_many(conn, &[id])?
                .into_iter()
                .next()
                .ok_or_else(message_not_found)?;
            // The rule of history (`core::messages::history`): current members see it all.
            if store::rooms::membership(conn, message.room_id, reporter)?.is_none()
                || message.deleted_at.is_some()
            {
                return Err(message_not_found());
            }
            if message.author_id == reporter {
                return Err(not_yourself());
            }
            row.target_user_id = message.author_id;
            row.message_id = Some(message.id);
            row.room_id = Some(message.room_id);
            row.message_body = Some(message.body);
        }
        Target::User(id) => {
            if id == reporter {
                return Err(not_yourself());
            }
            let user = store::users::find(conn, id)?.ok_or_else(user_not_found)?;
            if user.deleted_at.is_some() || store::social::blocks_user(conn, id, reporter)? {
                return Err(user_not_found());
            }
            row.target_user_id = id;
        }
    }
    Ok(row)
}

/// A report as the admins see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminReport {
    pub id: Id,
    pub reporter: User,
    /// The reported user, or the reported message's author.
    pub target_user: User,
    /// The reported message, or `null` for a reported user.
    pub message: Option<ReportedMessage>,
    pub reason: String,
    pub created_at: Time,
    pub resolved_at: Option<Time>,
    /// The admin who resolved it.
    pub resolved_by: Option<Id>,
    pub resolution: Option<String>,
}

/// A page of reports, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPage {
    pub reports: Vec<AdminReport>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next_before: Option<Id>,
}

/// The admins' views of these rows, with both users of each (one query for all of them).
fn admin_views(conn: &mut DbConnection, rows: &[ReportRow]) -> Result<Vec<AdminReport>> {
    let ids = store::distinct(rows.iter().flat_map(|r| [r.reporter_id, r.target_user_id]));
    let users: std::collections::HashMap<Id, User> = store::users::find_many(conn, &ids)?
        .iter()
        .map(|u| (u.id, User::from(u)))
        .collect();
    let user = |id: Id| {
        users
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("a report's user {id} is missing")))
    };
    rows.iter()
        .map(|row| {
            Ok(AdminReport {
                id: row.id,
                reporter: user(row.reporter_id)?,
                target_user: user(row.target_user_id)?,
                message: ReportedMessage::of(row),
                reason: row.reason.clone(),
                created_at: row.created_at,
                resolved_at: row.resolved_at,
                resolved_by: row.resolved_by,
                resolution: row.resolution.clone(),
            })
        })
        .collect()
}

/// A page of reports for an admin (the caller has checked that they are one), newest first,
/// older than the report `before`. 400 `invalid_cursor` if `before` isn't a report.
pub async fn list(db: &Db, status: Status, before: Option<Id>, limit: i64) -> Result<ReportPage> {
    db.run(move |conn| {
        let before = match before {
            None => None,
            Some(id) => {
                let row = store::reports::find(conn, id)?.ok_or_else(|| {
                    Error::bad_request("invalid_cursor", "before is not a report")
                })?;
                Some((row.created_at, row.id))
            }
        };
        let mut rows = store::reports::page(conn, status, before, limit + 1)?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_before = more.then(|| rows.last().map(|r| r.id)).flatten();
        Ok(ReportPage {
            reports: admin_views(conn, &rows)?,
            next_before,
        })
    })
    .await
}

/// Resolves an open report, for an admin (the caller has checked that they are one), with an
/// optional note. 404 `report_not_found`; 409 `already_resolved` (the first resolution stays).
pub async fn resolve(
    db: &Db,
    admin: Id,
    report: Id,
    resolution: Option<String>,
) -> Result<AdminReport> {
    let resolution = resolution
        .map(|r| Note::parse(&r).map(Note::into_inner))
        .transpose()
        .map_err(|why| Error::validation("resolution", why))?;
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            if store::reports::find(conn, report)?.is_none() {
                return Err(Error::not_found("report_not_found", "no such report"));
            }
            if !store::reports::resolve(conn, report, admin, Time::now(), resolution.as_deref())? {
                return Err(Error::conflict(
                    "already_resolved",
                    "this report was already resolved",
                ));
            }
            let row = store::reports::find(conn, report)?
                .ok_or_else(|| Error::internal(anyhow::anyhow!("resolved report vanished")))?;
            Ok(admin_views(conn, std::slice::from_ref(&row))?.remove(0))
        })
    })
    .await
}
