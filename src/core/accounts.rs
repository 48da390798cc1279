//! Accounts: registration, login and profile reads. Passwords are hashed with argon2id in the
//! bounded hashing pool (`core::work`), never while holding a database connection.

use crate::config::RegistrationMode;
use crate::core::event::{self, Event, UserUpdated};
use crate::core::views::User;
use crate::core::work::Pool;
use crate::core::{crypto, presence, tokens};
use crate::domain::{DisplayName, Id, Password, Time, UserKind, Username};
use crate::error::{Error, Result};
use crate::events::{To, Writer};
use crate::store::{self, users::UserRow, Db};

/// What a registration form carries, unvalidated.
pub struct Registration {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
    /// Needed when registration is by invite (`HUBBUB_REGISTRATION=invite`); ignored otherwise.
    pub invite_code: Option<String>,
}

/// The longest invite code looked at, in characters (codes made here have 32).
pub const MAX_INVITE_CODE: usize = 128;

/// Registration through the API, as `mode` allows: `closed` refuses (403
/// `registration_closed`); `invite` needs a code with a use left (403 `invite_required`
/// without one, 403 `invalid_invite` for an unknown, used-up or expired one), spent in the
/// account's own transaction, so a refused account (a taken name) spends nothing.
pub async fn register(
    db: &Db,
    hashes: &Pool,
    mode: RegistrationMode,
    form: Registration,
) -> Result<User> {
    let invite_hash = match mode {
        RegistrationMode::Open => None,
        RegistrationMode::Closed => {
            return Err(Error::forbidden(
                "registration_closed",
                "this server does not take registrations; ask its administrator for an account",
            ))
        }
        RegistrationMode::Invite => {
            let code = form
                .invite_code
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::forbidden(
                        "invite_required",
                        "this server registers by invitation: send invite_code",
                    )
                })?;
            if code.chars().count() > MAX_INVITE_CODE {
                return Err(invalid_invite());
            }
            let hash = crypto::sha256_hex(code.as_bytes());
            // Checked before the password is hashed, so that guessing codes costs no argon2;
            // spent (or found used up meanwhile) in the account's transaction below.
            let lookup = hash.clone();
            let usable = db
                .run(move |conn| Ok(store::invites::usable(conn, &lookup, Time::now())?))
                .await?;
            if !usable {
                return Err(invalid_invite());
            }
            Some(hash)
        }
    };
    create(
        db,
        hashes,
        NewAccount {
            username: form.username,
            password: form.password,
            display_name: form.display_name,
            admin: false,
            invite_hash,
        },
    )
    .await
}

fn invalid_invite() -> Error {
    Error::forbidden(
        "invalid_invite",
        "the invite code is unknown, used up or expired",
    )
}

/// An account to create, unvalidated, whatever the registration mode.
pub struct NewAccount {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
    pub admin: bool,
    /// The SHA-256 of an invite code to spend a use of in the same transaction.
    pub invite_hash: Option<String>,
}

/// Creates an account. 422 for invalid fields (all reported at once), 409 for a taken name,
/// 403 `invalid_invite` when `invite_hash` has no use left (nothing is written then; nor is a
/// use spent when the account is refused).
pub async fn create(db: &Db, hashes: &Pool, form: NewAccount) -> Result<User> {
    let mut err: Option<Error> = None;
    let mut fail = |field: &str, why: String| {
        err = Some(match err.take() {
            None => Error::validation(field, why),
            Some(e) => e.and(field, why),
        })
    };
    let username = Username::parse(&form.username)
        .map_err(|w| fail("username", w))
        .ok();
    let password = Password::parse(&form.password)
        .map_err(|w| fail("password", w))
        .ok();
    let display = match &form.display_name {
        Some(d) => DisplayName::parse(d)
            .map_err(|w| fail("display_name", w))
            .ok(),
        None => None,
    };
    if let Some(e) = err {
        return Err(e);
    }
    let (Some(username), Some(password)) = (username, password) else {
        return Err(Error::validation("username", "required"));
    };
    let hash = strong_hash(hashes, password, username.as_str().to_string(), "password").await?;
    let now = Time::now();
    let row = UserRow {
        id: Id::new(),
        display_name: display
            .map(DisplayName::into_inner)
            .unwrap_or_else(|| username.as_str().to_string()),
        username: username.as_str().to_string(),
        password_hash: hash,
        kind: UserKind::User,
        avatar_attachment_id: None,
        owner_id: None,
        created_at: now,
        admin: form.admin,
        deactivated_at: None,
        deleted_at: None,
        last_export_at: None,
    };
    let invite = form.invite_hash;
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            // Spent first: an error after it (a taken name) rolls the use back with the rest.
            if let Some(hash) = &invite {
                if !store::invites::spend(conn, hash, now)? {
                    return Err(invalid_invite());
                }
            }
            match store::users::insert(conn, &row) {
                Ok(()) => Ok(User::from(&row)),
                Err(e) if store::is_unique_violation(&e) => {
                    Err(Error::conflict("username_taken", "that username is taken"))
                }
                Err(e) => Err(e.into()),
            }
        })
    })
    .await
}

/// Checks `password`'s strength for `username` (422 on `field` when weak) and hashes it. Both
/// run in the hash pool: the estimate takes a few milliseconds and the hash 19 MiB, so neither
/// runs on the request threads, and both are bounded with the other hashes.
pub(crate) async fn strong_hash(
    hashes: &Pool,
    password: Password,
    username: String,
    field: &'static str,
) -> Result<String> {
    hashes
        .call(move || {
            password
                .check_strength(&username)
                .map_err(|why| Error::validation(field, why))?;
            crypto::hash_password(password.expose())
        })
        .await
}

/// Checks a username and password. Unknown user and wrong password are the same 401, in the
/// same time.
pub async fn login(db: &Db, hashes: &Pool, username: &str, password: &str) -> Result<User> {
    // A place in the hashing queue first: when it is full, refuse before any query.
    let admission = hashes.admit()?;
    let username = Username::parse(username).ok();
    let found = match username {
        Some(name) => {
            db.run(move |conn| Ok(store::users::find_by_username(conn, name.as_str())?))
                .await?
        }
        None => None,
    };
    let password = password.to_string();
    let hash = found
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| crypto::dummy_hash().to_string());
    let ok = hashes
        .run(admission, move || {
            Ok(crypto::verify_password(&password, &hash))
        })
        .await?;
    match found {
        // Only with the right password: nobody learns an account is off without it.
        Some(user) if ok && user.deactivated_at.is_some() => Err(Error::forbidden(
            "account_deactivated",
            "this account has been deactivated by an administrator",
        )),
        Some(user) if ok => Ok(User::from(&user)),
        _ => Err(Error::invalid_credentials()),
    }
}

/// Changes `user`'s password and revokes every other session of theirs (each as a logout does:
/// row deleted, `credential.revoked` appended, so its sockets close on every node), in the
/// writer batch that stores the new hash. `keep` (the caller's session) stays; API tokens stay
/// too. 403 `wrong_password` if `current` is wrong, 422 if `new` is too weak. Returns the ids of
/// the revoked sessions.
pub async fn change_password(
    db: &Db,
    writer: &Writer,
    hashes: &Pool,
    user: Id,
    keep: Id,
    current: String,
    new: String,
) -> Result<Vec<Id>> {
    // A place in the hashing queue first: when it is full, refuse before any query.
    let admission = hashes.admit()?;
    let row = db
        .run(move |conn| Ok(store::users::find(conn, user)?))
        .await?
        .ok_or_else(Error::unauthenticated)?;
    let new = Password::parse(&new).map_err(|why| Error::validation("new_password", why));
    let name = row.username.clone();
    let stored = row.password_hash.clone();
    let hash = hashes
        .run(admission, move || {
            if !crypto::verify_password(&current, &stored) {
                return Err(Error::forbidden(
                    "wrong_password",
                    "current_password is not this account's password",
                ));
            }
            let new = new?;
            new.check_strength(&name)
                .map_err(|why| Error::validation("new_password", why))?;
            crypto::hash_password(new.expose())
        })
        .await?;
    writer
        .run(move |batch| {
            store::users::set_password_hash(batch.conn(), user, &hash)?;
            let others = store::sessions::ids_of_user_except(batch.conn(), user, keep)?;
            for &session in &others {
                store::sessions::delete(batch.conn(), session)?;
                tokens::revoke_in(batch, session)?;
            }
            Ok(others)
        })
        .await
}

/// A user as `GET /api/v1/users/{id}` shows them to a viewer: with their presence where the
/// viewer may see it (themselves, friends, direct-room partners), null elsewhere.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Profile {
    #[serde(flatten)]
    pub user: User,
    /// Whether they are online; false when they don't share their presence; null when the
    /// viewer may not see it.
    pub online: Option<bool>,
    /// When they came online (online) or their last stream ended (offline); null when never
    /// seen, not shared, or not visible to the viewer.
    pub last_seen_at: Option<Time>,
}

/// `id` as `viewer` may see them (404 `user_not_found`).
pub async fn profile(db: &Db, viewer: Id, id: Id) -> Result<Profile> {
    db.run(move |conn| {
        let user = store::users::find(conn, id)?
            .map(|u| User::from(&u))
            .ok_or_else(|| Error::not_found("user_not_found", "no such user"))?;
        let seen = presence::seen_by(conn, viewer, id)?;
        Ok(Profile {
            user,
            online: seen.online,
            last_seen_at: seen.last_seen_at,
        })
    })
    .await
}

/// The caller as `GET /api/v1/me` shows them: their user, and whether they are a server
/// administrator (only they see that).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub user: User,
    /// Whether they may use `/api/v1/admin/`.
    pub admin: bool,
    /// Whether their friends and direct-room partners see when they are online (`PATCH
    /// /api/v1/me`; default true).
    pub share_presence: bool,
}

/// The caller, with their administrator flag (401 if the account is gone).
pub async fn me(db: &Db, id: Id) -> Result<Me> {
    db.run(move |conn| {
        let row = store::users::find(conn, id)?.ok_or_else(Error::unauthenticated)?;
        let share_presence = store::presence::state(conn, id)?.is_none_or(|p| p.share);
        Ok(Me {
            user: User::from(&row),
            admin: row.admin && row.deactivated_at.is_none() && row.deleted_at.is_none(),
            share_presence,
        })
    })
    .await
}

/// Changes the caller's profile. `user.updated` goes to the user, their friends and everyone
/// who shares a room with them.
/// `avatar` must be an image the user uploaded; once set, anyone signed in may fetch it.
pub async fn update_profile(
    writer: &Writer,
    me: Id,
    display_name: Option<String>,
    avatar: Option<Id>,
) -> Result<User> {
    let display = match display_name {
        Some(d) => {
            Some(DisplayName::parse(&d).map_err(|why| Error::validation("display_name", why))?)
        }
        None => None,
    };
    let changes = display.is_some() || avatar.is_some();
    writer
        .run(move |batch| {
            let now = Time::now();
            if let Some(name) = display {
                store::users::set_display_name(batch.conn(), me, &name.into_inner())?;
            }
            if let Some(avatar) = avatar {
                match store::attachments::find(batch.conn(), avatar)? {
                    Some(file) if file.owner_id == me => {
                        store::users::set_avatar(batch.conn(), me, Some(avatar))?
                    }
                    _ => {
                        return Err(Error::validation(
                            "avatar_attachment_id",
                            "must be an image you uploaded",
                        ))
                    }
                }
            }
            let row = store::users::find(batch.conn(), me)?.ok_or_else(Error::unauthenticated)?;
            let user = User::from(&row);
            if !changes {
                return Ok(user);
            }
            let mut audience = store::rooms::co_members(batch.conn(), me)?;
            audience.extend(
                store::social::friends_of(batch.conn(), me)?
                    .into_iter()
                    .map(|(id, _)| id),
            );
            audience.push(me);
            event::append(
                batch,
                &Event::UserUpdated(UserUpdated { user: user.clone() }),
                To::Users(&audience),
                now,
            )?;
            Ok(user)
        })
        .await
}

/// The most users one search page returns.
pub const MAX_SEARCH: i64 = 50;

/// Users whose username starts with `prefix`, by username, after `after` (paging), without
/// those who block the caller. `(users, next_after)`.
pub async fn search(
    db: &Db,
    me: Id,
    prefix: &str,
    after: Option<String>,
    limit: i64,
) -> Result<(Vec<User>, Option<String>)> {
    let prefix = prefix.trim().to_lowercase();
    if prefix.is_empty() || prefix.chars().count() > 32 {
        return Err(Error::bad_request(
            "invalid_query",
            "prefix must be 1 to 32 characters",
        ));
    }
    // Both are (the start of) a username, so anything else matches nothing; say so rather than
    // hand a NUL to PostgreSQL, which refuses it in text.
    for (field, value) in [("prefix", Some(&prefix)), ("after", after.as_ref())] {
        if value.is_some_and(|v| !v.chars().all(Username::allowed)) {
            return Err(Error::bad_request(
                "invalid_query",
                format!("{field} may contain only letters a-z, digits, '_', '.' and '-'"),
            )
            .and(
                field,
                "may contain only letters a-z, digits, '_', '.' and '-'",
            ));
        }
    }
    db.run(move |conn| {
        let rows = store::users::search(conn, &prefix, after.as_deref(), limit + 1)?;
        let more = rows.len() as i64 > limit;
        let mut users = Vec::new();
        for row in rows.iter().take(limit as usize) {
            if !store::social::blocks_user(conn, row.id, me)? {
                users.push(User::from(row));
            }
        }
        let next = if more {
            rows.get(limit as usize - 1).map(|r| r.username.clone())
        } else {
            None
        };
        Ok((users, next))
    })
    .await
}
