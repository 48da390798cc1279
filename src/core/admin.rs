//! Server administration: who is an administrator, and what they may do to accounts.

use crate::domain::Id;
use crate::error::Result;
use crate::store::{self, Db};

/// Whether `user` is a server administrator (an account turned off or deleted is not).
pub async fn is_admin(db: &Db, user: Id) -> Result<bool> {
    db.run(move |conn| {
        Ok(store::users::find(conn, user)?
            .is_some_and(|u| u.admin && u.deactivated_at.is_none() && u.deleted_at.is_none()))
    })
    .await
}
