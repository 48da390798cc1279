//! Ending a session: the row goes, and an internal event tells every node's hub to close the
//! sockets bound to it (revocation reaches other nodes through the log, like everything else).

use serde::Serialize;

use crate::domain::{Id, Time};
use crate::error::Result;
use crate::events::{self, Kind, To, Writer};
use crate::store;

#[derive(Serialize)]
struct Revoked {
    session_id: Id,
}

/// Deletes the session and appends `session.revoked` in the same transaction.
pub async fn revoke(writer: &Writer, session: Id) -> Result<()> {
    writer
        .run(move |batch| {
            store::sessions::delete(batch.conn(), session)?;
            events::append(
                batch,
                Kind::SessionRevoked,
                To::Server,
                &Revoked {
                    session_id: session,
                },
                Time::now(),
            )?;
            Ok(())
        })
        .await
}
