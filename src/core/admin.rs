//! Server administration: who is an administrator, and what they may do to accounts (list,
//! deactivate, reactivate, promote, create, reset a password) and to invite codes. The admin API
//! (`server::api::admin`) and the CLI (`hubbub admin`, `server::admin_cli`) both call these.

use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;

use crate::core::accounts::{self, NewAccount};
use crate::core::crypto::sha256_hex;
use crate::core::tokens;
use crate::core::views::User;
use crate::core::work::Pool;
use crate::domain::{Id, Password, Time, UserKind, Username};
use crate::error::{Class, Error, Result};
use crate::events::Writer;
use crate::store::{self, invites::InviteRow, users::UserRow, Db};

/// Whether `user` is a server administrator (an account turned off or deleted is not).
pub async fn is_admin(db: &Db, user: Id) -> Result<bool> {
    db.run(move |conn| {
        Ok(store::users::find(conn, user)?
            .is_some_and(|u| u.admin && u.deactivated_at.is_none() && u.deleted_at.is_none()))
    })
    .await
}

/// A user as administrators see them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminUser {
    pub id: Id,
    pub username: String,
    pub display_name: String,
    pub kind: UserKind,
    pub admin: bool,
    /// When an administrator turned the account off (`null`: active).
    pub deactivated_at: Option<Time>,
    /// When the user deleted the account (`null`: not deleted).
    pub deleted_at: Option<Time>,
    pub created_at: Time,
}

impl From<&UserRow> for AdminUser {
    fn from(row: &UserRow) -> AdminUser {
        AdminUser {
            id: row.id,
            username: row.username.clone(),
            display_name: row.display_name.clone(),
            kind: row.kind,
            admin: row.admin,
            deactivated_at: row.deactivated_at,
            deleted_at: row.deleted_at,
            created_at: row.created_at,
        }
    }
}

/// The most users one page of the administrators' list holds.
pub const MAX_LIST: i64 = 100;

/// Users whose username contains `q` (everyone when `None`), by username, after `after`:
/// `(users, next_after)`.
pub async fn list_users(
    db: &Db,
    q: Option<String>,
    after: Option<String>,
    limit: i64,
) -> Result<(Vec<AdminUser>, Option<String>)> {
    let q = q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
    for (field, value) in [("q", q.as_ref()), ("after", after.as_ref())] {
        let Some(value) = value else { continue };
        if value.chars().count() > Username::MAX_CHARS || !value.chars().all(Username::allowed) {
            let why = format!(
                "at most {} of the characters of usernames (a-z, 0-9, '_', '.', '-')",
                Username::MAX_CHARS
            );
            return Err(
                Error::bad_request("invalid_query", format!("{field}: {why}")).and(field, why),
            );
        }
    }
    db.run(move |conn| {
        let rows = store::users::list(conn, q.as_deref(), after.as_deref(), limit + 1)?;
        let more = rows.len() as i64 > limit;
        let users: Vec<AdminUser> = rows
            .iter()
            .take(limit as usize)
            .map(AdminUser::from)
            .collect();
        let next = more
            .then(|| users.last().map(|u| u.username.clone()))
            .flatten();
        Ok((users, next))
    })
    .await
}

fn no_such_user() -> Error {
    Error::not_found("user_not_found", "no such user")
}

/// `user`'s row, unless there is none (404) or the account was deleted (409
/// `account_deleted`): a deleted account stays a tombstone, which no administrator can give a
/// password, rights or a sign-in back to.
fn live_user(conn: &mut store::DbConnection, user: Id) -> Result<store::users::UserRow> {
    let row = store::users::find(conn, user)?.ok_or_else(no_such_user)?;
    if row.deleted_at.is_some() {
        return Err(Error::conflict(
            "account_deleted",
            "that account was deleted: it can't be changed or signed in to again",
        ));
    }
    Ok(row)
}

/// The user named `username` (404 `user_not_found`).
pub async fn find_by_username(db: &Db, username: &str) -> Result<AdminUser> {
    let name = Username::parse(username).map_err(|_| no_such_user())?;
    db.run(move |conn| {
        store::users::find_by_username(conn, name.as_str())?
            .map(|u| AdminUser::from(&u))
            .ok_or_else(no_such_user)
    })
    .await
}

/// Turns `user`'s account off: `deactivated_at` is set and every credential of theirs, and
/// every token of the bots they own, revoked in the same transaction (see
/// `tokens::revoke_all_of`); they can't sign in until reactivated. The bots go with their
/// owner because an operator turning an abusive account off expects its bots to stop posting
/// too; a reactivation brings no credential back. `by`, the administrator asking, may not be
/// `user` (409 `cannot_deactivate_self`). Deactivating an account that is off already keeps
/// its first time. Returns the user and the revoked credentials.
pub async fn deactivate(writer: &Writer, by: Option<Id>, user: Id) -> Result<(AdminUser, Vec<Id>)> {
    if by == Some(user) {
        return Err(Error::conflict(
            "cannot_deactivate_self",
            "administrators can't deactivate their own account",
        ));
    }
    writer
        .run(move |batch| {
            let row = live_user(batch.conn(), user)?;
            if row.deactivated_at.is_none() {
                store::users::set_deactivated(batch.conn(), user, Some(Time::now()))?;
            }
            let mut revoked = tokens::revoke_all_of(batch, user)?;
            for bot in store::erasure::live_bots_of(batch.conn(), user)? {
                revoked.extend(tokens::revoke_all_of(batch, bot)?);
            }
            let row = store::users::find(batch.conn(), user)?.ok_or_else(no_such_user)?;
            Ok((AdminUser::from(&row), revoked))
        })
        .await
}

/// Turns `user`'s account back on: they may sign in again (their old sessions stay ended).
pub async fn reactivate(db: &Db, user: Id) -> Result<AdminUser> {
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            live_user(conn, user)?;
            if !store::users::set_deactivated(conn, user, None)? {
                return Err(no_such_user());
            }
            let row = store::users::find(conn, user)?.ok_or_else(no_such_user)?;
            Ok(AdminUser::from(&row))
        })
    })
    .await
}

/// Makes `user` an administrator (`admin: true`) or takes it away.
pub async fn set_admin(db: &Db, user: Id, admin: bool) -> Result<AdminUser> {
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            live_user(conn, user)?;
            if !store::users::set_admin(conn, user, admin)? {
                return Err(no_such_user());
            }
            let row = store::users::find(conn, user)?.ok_or_else(no_such_user)?;
            Ok(AdminUser::from(&row))
        })
    })
    .await
}

/// A strong random password (144 bits, URL-safe), for accounts made without one.
pub fn random_password() -> String {
    random_code(18)
}

fn random_code(bytes: usize) -> String {
    use base64::Engine as _;
    let mut raw = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Creates an account whatever the registration mode (the CLI's `create-user`), an
/// administrator if `admin`. 422 for a weak password or a bad name, 409 for a taken one.
pub async fn create_user(
    db: &Db,
    hashes: &Pool,
    username: String,
    password: String,
    admin: bool,
) -> Result<User> {
    accounts::create(
        db,
        hashes,
        NewAccount {
            username,
            password,
            display_name: None,
            admin,
            invite_hash: None,
        },
    )
    .await
}

/// Sets `user`'s password (strength checked as at registration) and revokes all their
/// sessions, each as a logout does; API tokens stay. Returns the revoked sessions.
pub async fn reset_password(
    writer: &Writer,
    hashes: &Pool,
    user: AdminUser,
    password: String,
) -> Result<Vec<Id>> {
    let password = Password::parse(&password).map_err(|why| Error::validation("password", why))?;
    let hash = accounts::strong_hash(hashes, password, user.username.clone(), "password").await?;
    let id = user.id;
    writer
        .run(move |batch| {
            live_user(batch.conn(), id)?;
            store::users::set_password_hash(batch.conn(), id, &hash)?;
            let sessions = store::sessions::ids_of_user(batch.conn(), id)?;
            for &session in &sessions {
                store::sessions::delete(batch.conn(), session)?;
                tokens::revoke_in(batch, session)?;
            }
            Ok(sessions)
        })
        .await
}

/// An invite code as listed (never with the code: only its hash is kept).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invite {
    pub id: Id,
    /// How many accounts it could make when created.
    pub uses: i32,
    /// How many more it can make.
    pub uses_left: i32,
    pub expires_at: Option<Time>,
    pub created_at: Time,
}

impl From<&InviteRow> for Invite {
    fn from(row: &InviteRow) -> Invite {
        Invite {
            id: row.id,
            uses: row.uses,
            uses_left: row.uses_left,
            expires_at: row.expires_at,
            created_at: row.created_at,
        }
    }
}

/// An invite just created, with its code (shown this once).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewInvite {
    pub id: Id,
    /// Give this to the person invited: `POST /api/v1/users {"invite_code": …}`.
    pub code: String,
    pub uses: i32,
    pub uses_left: i32,
    pub expires_at: Option<Time>,
    pub created_at: Time,
}

/// The most accounts one invite may make.
pub const MAX_INVITE_USES: i32 = 1000;
/// The longest an invite may live: 365 days, in seconds.
pub const MAX_INVITE_SECS: i64 = 365 * 24 * 3600;
/// How long an invite lives unless told otherwise: 7 days.
pub const DEFAULT_INVITE_SECS: i64 = 7 * 24 * 3600;
/// The most invites that may be usable at once (and so the longest list).
pub const MAX_LIVE_INVITES: i64 = 1000;

/// Parses a duration such as `30m`, `12h` or `7d` (also `45s`) into seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 24 * 3600,
        _ => return None,
    };
    number.checked_mul(scale).filter(|s| *s > 0)
}

/// The SHA-256 under which a code is stored and looked up.
pub fn invite_hash(code: &str) -> String {
    sha256_hex(code.trim().as_bytes())
}

/// Makes an invite code good for `uses` accounts (1–1000) for `expires_in_s` seconds (up to
/// 365 days). `created_by`: the administrator, `None` from the CLI. Used-up and expired
/// invites are deleted meanwhile; at most [`MAX_LIVE_INVITES`] may be usable at once (422
/// `too_many_invites`).
pub async fn create_invite(
    db: &Db,
    created_by: Option<Id>,
    uses: i32,
    expires_in_s: i64,
) -> Result<NewInvite> {
    let mut err: Option<Error> = None;
    if !(1..=MAX_INVITE_USES).contains(&uses) {
        err = Some(Error::validation(
            "uses",
            format!("must be 1 to {MAX_INVITE_USES}"),
        ));
    }
    if !(1..=MAX_INVITE_SECS).contains(&expires_in_s) {
        let why = "must be a duration such as 30m, 12h or 7d, at most 365d";
        err = Some(match err {
            None => Error::validation("expires_in", why),
            Some(e) => e.and("expires_in", why),
        });
    }
    if let Some(e) = err {
        return Err(e);
    }
    // 192 bits of randomness, URL-safe.
    let code = random_code(24);
    let now = Time::now();
    let row = InviteRow {
        id: Id::new(),
        code_hash: invite_hash(&code),
        uses,
        uses_left: uses,
        created_by,
        created_at: now,
        expires_at: Some(now + chrono::Duration::seconds(expires_in_s)),
    };
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            store::invites::delete_dead(conn, now)?;
            if store::invites::count_live(conn, now)? >= MAX_LIVE_INVITES {
                return Err(Error::new(
                    Class::Invalid,
                    "too_many_invites",
                    format!("at most {MAX_LIVE_INVITES} invites may be usable at once; delete one first"),
                ));
            }
            Ok(store::invites::insert(conn, &row)?)
        })?;
        Ok(NewInvite {
            id: row.id,
            code,
            uses: row.uses,
            uses_left: row.uses_left,
            expires_at: row.expires_at,
            created_at: row.created_at,
        })
    })
    .await
}

/// The invites that can still be used, newest first.
pub async fn list_invites(db: &Db) -> Result<Vec<Invite>> {
    db.run(move |conn| {
        Ok(
            store::invites::list_live(conn, Time::now(), MAX_LIVE_INVITES)?
                .iter()
                .map(Invite::from)
                .collect(),
        )
    })
    .await
}

/// Deletes an invite: its code no longer works (404 `invite_not_found`).
pub async fn delete_invite(db: &Db, id: Id) -> Result<()> {
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            if store::invites::delete(conn, id)? {
                Ok(())
            } else {
                Err(Error::not_found("invite_not_found", "no such invite"))
            }
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_number_and_a_unit() {
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("12h"), Some(12 * 3600));
        assert_eq!(parse_duration("7d"), Some(7 * 86400));
        assert_eq!(parse_duration("45s"), Some(45));
        for bad in [
            "",
            "d",
            "7",
            "7w",
            "-1d",
            "0d",
            "1.5h",
            "99999999999999999d",
            "7дн",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn codes_are_url_safe_and_long() {
        let code = random_code(24);
        assert_eq!(code.len(), 32);
        assert!(code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(code, random_code(24));
    }
}
