//! Accounts: registration, login and profile reads. Passwords are hashed with argon2id on the
//! blocking pool, never while holding a database connection.

use crate::core::crypto;
use crate::core::views::User;
use crate::domain::{DisplayName, Id, Password, Time, Username};
use crate::error::{Error, Result};
use crate::store::{self, users::UserRow, Db};

/// What a registration form carries, unvalidated.
pub struct Registration {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
}

/// Creates an account. 422 for invalid fields (all reported at once), 409 for a taken name.
pub async fn register(db: &Db, form: Registration) -> Result<User> {
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
    let hash = blocking(move || crypto::hash_password(password.expose())).await?;
    let row = UserRow {
        id: Id::new(),
        display_name: display
            .map(DisplayName::into_inner)
            .unwrap_or_else(|| username.as_str().to_string()),
        username: username.as_str().to_string(),
        password_hash: hash,
        created_at: Time::now(),
    };
    db.run(move |conn| {
        store::write_tx(conn, |conn| match store::users::insert(conn, &row) {
            Ok(()) => Ok(User::from(&row)),
            Err(e) if store::is_unique_violation(&e) => {
                Err(Error::conflict("username_taken", "that username is taken"))
            }
            Err(e) => Err(e.into()),
        })
    })
    .await
}

/// Checks a username and password. Unknown user and wrong password are the same 401, in the
/// same time.
pub async fn login(db: &Db, username: &str, password: &str) -> Result<User> {
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
    let ok = blocking(move || Ok(crypto::verify_password(&password, &hash))).await?;
    match found {
        Some(user) if ok => Ok(User::from(&user)),
        _ => Err(Error::invalid_credentials()),
    }
}

/// The user `id` (404 if there is none).
pub async fn get(db: &Db, id: Id) -> Result<User> {
    db.run(move |conn| {
        store::users::find(conn, id)?
            .map(|u| User::from(&u))
            .ok_or_else(|| Error::not_found("user_not_found", "no such user"))
    })
    .await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
}
