//! Ending a session: the row goes, and an internal event tells every node's hub to close the
//! sockets bound to it (revocation reaches other nodes through the log, like everything else).

use crate::core::tokens;
use crate::domain::Id;
use crate::error::Result;
use crate::events::Writer;
use crate::store;

/// Deletes the session and appends `credential.revoked` in the same transaction.
pub async fn revoke(writer: &Writer, session: Id) -> Result<()> {
    writer
        .run(move |batch| {
            store::sessions::delete(batch.conn(), session)?;
            tokens::revoke_in(batch, session)
        })
        .await
}
