//! Periodic clean-up, run by the server on a timer: events past retention, expired sessions,
//! tokens and tickets (and the push subscriptions made with them), old idempotency keys, and
//! uploads never attached (their files after the commit), and the usernames of accounts deleted
//! longer ago than the hold. Short-lived events (typing) have a round of their own, run far more
//! often: [`prune_expired`].

use std::path::Path;
use std::time::Duration;

use crate::core::attachments;
use crate::domain::Time;
use crate::error::{Error, Result};
use crate::store::{self, Db};

/// How long each kind of data is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub events: Duration,
    pub idempotency_keys: Duration,
    pub unattached_uploads: Duration,
    /// How long a deleted account's username stays taken.
    pub deleted_usernames: Duration,
}

/// What one round removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: usize,
    pub sessions: usize,
    pub keys: usize,
    pub uploads: usize,
    /// Usernames of deleted accounts freed.
    pub usernames: usize,
}

/// Removes what is past its time, in one write transaction, then the files of the uploads it
/// removed.
pub async fn prune(db: &Db, keep: Retention, data_dir: &Path) -> Result<Pruned> {
    let data_dir = data_dir.to_path_buf();
    db.run(move |conn| {
        let now = Time::now();
        let ago = |d: Duration| {
            let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
            Time(now.0.checked_sub_signed(d).unwrap_or(now.0))
        };
        let (mut pruned, uploads) = store::write_tx(conn, |conn| {
            let sessions = store::sessions::delete_expired(conn, now)?;
            let tokens = store::tokens::delete_expired(conn, now)?;
            // A credential's push subscriptions end with it.
            store::push::delete_for_credentials(conn, &sessions)?;
            store::push::delete_for_credentials(conn, &tokens)?;
            let pruned = Pruned {
                events: store::events::prune(conn, ago(keep.events))?,
                sessions: sessions.len(),
                keys: store::idempotency::prune(conn, ago(keep.idempotency_keys))?,
                uploads: 0,
                usernames: store::erasure::release_usernames(
                    conn,
                    ago(keep.deleted_usernames),
                    1000,
                )?,
            };
            store::tokens::prune_tickets(conn, now)?;
            let uploads = attachments::prune_rows(conn, ago(keep.unattached_uploads))?;
            Ok::<_, Error>((pruned, uploads))
        })?;
        for id in &uploads {
            attachments::remove_files(&data_dir, *id);
        }
        pruned.uploads = uploads.len();
        Ok(pruned)
    })
    .await
}

/// Expired short-lived events deleted per transaction: each is short, so sends waiting for the
/// write lock (SQLite) wait little.
const EXPIRED_PER_ROUND: i64 = 5000;

/// Deletes the short-lived events (typing) that have expired, in short transactions of at most
/// [`EXPIRED_PER_ROUND`]; returns how many went. Replay already skips them: this only gives the
/// space back, long before the log's retention would.
pub async fn prune_expired(db: &Db) -> Result<usize> {
    db.run(move |conn| {
        let now = Time::now();
        let mut total = 0;
        loop {
            let deleted = store::write_tx(conn, |conn| {
                Ok::<_, Error>(store::events::prune_expired(conn, now, EXPIRED_PER_ROUND)?)
            })?;
            total += deleted;
            if (deleted as i64) < EXPIRED_PER_ROUND {
                return Ok(total);
            }
        }
    })
    .await
}

/// Analyses the tables whose planner statistics are stale, so that the writer's cached plans are
/// re-made for their size (`store::statistics`; PostgreSQL only). Returns the tables analysed.
pub async fn refresh_statistics(db: &Db) -> Result<Vec<String>> {
    db.run(|conn| Ok(store::statistics::refresh(conn)?)).await
}

/// Why the database can't serve, if it can't: it doesn't answer, or it can't take a write (a
/// read-only SQLite file, a read-only PostgreSQL session). For `/readyz`; writes nothing.
pub async fn unready(db: &Db) -> Option<String> {
    let checked = db
        .run(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1")?;
            Ok(store::cannot_write(conn)?)
        })
        .await;
    match checked {
        Ok(reason) => reason,
        Err(e) => {
            tracing::warn!(error = %e, "readyz: the database does not answer");
            Some("the database does not answer".to_string())
        }
    }
}
