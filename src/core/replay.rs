//! Reading the log for a client: where a subscription starts, the events it missed (visible to
//! it by `domain::visibility`'s rule), and whether its credential still holds. The socket and
//! the long poll (`server::stream`) call these; live events come from the hub.

use std::future::Future;

use crate::domain::{Id, Time};
use crate::error::{Error, Result};
use crate::events;
use crate::store::{self, Db};

/// Where a subscription stands in the log when it opens.
#[derive(Debug, Clone, Copy)]
pub struct Opening {
    /// The newest committed event.
    pub head: i64,
    /// The client's cursor is older than the retained log: it must resync.
    pub resync: bool,
    /// When the credential expires, if it does.
    pub expires: Option<Time>,
}

/// Checks a subscription of `credential` resuming after `since`: the credential must still be
/// there (401), and the cursor no further than the log's head (400 `invalid_cursor`).
pub async fn open(db: &Db, credential: Id, since: Option<i64>) -> Result<Opening> {
    let (head, pruned, expires) = db
        .run(move |conn| {
            Ok((
                store::events::head(conn)?,
                store::events::pruned_through(conn)?,
                store::tokens::credential_expiry(conn, credential)?,
            ))
        })
        .await?;
    let Some(expires) = expires else {
        return Err(Error::unauthenticated());
    };
    if since.is_some_and(|s| s > head) {
        return Err(Error::bad_request(
            "invalid_cursor",
            "since is ahead of the event log",
        ));
    }
    Ok(Opening {
        head,
        resync: since.is_some_and(|s| s < pruned),
        expires,
    })
}

/// A page of the events a user missed.
#[derive(Debug, Default)]
pub struct Page {
    /// (event id, socket frame), oldest first.
    pub frames: Vec<(i64, String)>,
    /// The page is full: more may follow after its last event.
    pub full: bool,
}

/// The events in `(after, upto]` that `user` may see, at most `limit`, as frames. Short-lived
/// events (typing) that have expired are skipped: a client resuming later doesn't hear of
/// someone typing long ago. The query starts now, before the future is awaited, so a caller
/// can send one page while the next is read.
pub fn page(
    db: &Db,
    user: Id,
    after: i64,
    upto: i64,
    limit: i64,
) -> impl Future<Output = Result<Page>> + use<> {
    db.start(move |conn| {
        let rows = store::events::visible_range(conn, user, after, upto, limit, Time::now())?;
        Ok(Page {
            full: rows.len() as i64 == limit,
            frames: rows
                .iter()
                .map(|row| (row.id, events::frame(row)))
                .collect(),
        })
    })
}

/// Whether the credential is over: gone, or past its expiry (a session may have been extended
/// since the socket opened).
pub async fn credential_over(db: &Db, credential: Id) -> Result<bool> {
    let expiry = db
        .run(move |conn| Ok(store::tokens::credential_expiry(conn, credential)?))
        .await?;
    Ok(match expiry {
        Some(Some(expires)) => expires <= Time::now(),
        Some(None) => false,
        None => true,
    })
}
