//! API tokens, bots and stream tickets.
//!
//! A token is `hb_` + 64 hex digits of randomness, shown once; only its SHA-256 is kept. It
//! carries scopes (`read`: safe methods and the stream; `send`: everything that writes) and an
//! optional expiry. Deleting a token appends `credential.revoked`, which closes the sockets
//! opened with it on every node. A bot is a user without a password, created by a person, who
//! gets its first token at creation.

use rand::RngCore;
use serde::Serialize;

use crate::core::credentials::{Credentials, Entry};
use crate::core::crypto::sha256_hex;
use crate::core::event::{self, Event, Revoked};
use crate::core::views::User;
use crate::domain::{DisplayName, Id, Label, Time, UserKind, Username};
use crate::error::{Class, Error, Result};
use crate::events::{self, To, Writer};
use crate::store::{self, tokens::TokenRow, users::UserRow, Db};

/// How long a stream ticket lives.
pub const TICKET_TTL_SECS: i64 = 30;

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes {
    pub read: bool,
    pub send: bool,
}

impl Scopes {
    pub const ALL: Scopes = Scopes {
        read: true,
        send: true,
    };

    /// Parses a list such as `["read", "send"]`.
    pub fn parse(list: &[String]) -> Result<Scopes> {
        let mut scopes = Scopes {
            read: false,
            send: false,
        };
        for s in list {
            match s.as_str() {
                "read" => scopes.read = true,
                "send" => scopes.send = true,
                other => {
                    return Err(Error::validation(
                        "scopes",
                        format!("unknown scope {other:?}: use read, send"),
                    ))
                }
            }
        }
        if !scopes.read && !scopes.send {
            return Err(Error::validation("scopes", "give at least one scope"));
        }
        Ok(scopes)
    }

    fn from_stored(text: &str) -> Scopes {
        Scopes {
            read: text.split(',').any(|s| s == "read"),
            send: text.split(',').any(|s| s == "send"),
        }
    }

    fn to_list(self) -> Vec<&'static str> {
        let mut list = Vec::new();
        if self.read {
            list.push("read");
        }
        if self.send {
            list.push("send");
        }
        list
    }
}

/// A token as listed (never with its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Token {
    pub id: Id,
    pub name: String,
    pub scopes: Vec<&'static str>,
    pub created_at: Time,
    pub expires_at: Option<Time>,
}

impl From<&TokenRow> for Token {
    fn from(row: &TokenRow) -> Token {
        Token {
            id: row.id,
            name: row.name.clone(),
            scopes: Scopes::from_stored(&row.scopes).to_list(),
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

/// A token just created, with its secret (shown this once).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewToken {
    #[serde(flatten)]
    pub token: Token,
    pub token_secret: String,
}

fn secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex = crate::core::crypto::hex(&bytes);
    format!("{prefix}{hex}")
}

fn new_token_row(
    user: Id,
    name: String,
    scopes: Scopes,
    expires_at: Option<Time>,
) -> (TokenRow, String) {
    let secret = secret("hb_");
    let row = TokenRow {
        id: Id::new(),
        user_id: user,
        name,
        token_hash: sha256_hex(secret.as_bytes()),
        scopes: scopes.to_list().join(","),
        created_at: Time::now(),
        expires_at,
    };
    (row, secret)
}

/// The longest lifetime a token may be given: ten years, in seconds.
pub const MAX_EXPIRES_IN_S: i64 = 10 * 365 * 24 * 3600;

fn check_name(name: &str) -> Result<String> {
    Label::parse(name)
        .map(Label::into_inner)
        .map_err(|why| Error::validation("name", why))
}

/// Creates a personal token for `user`, who may hold at most `max` (422 `too_many_tokens`:
/// delete one first).
pub async fn create(
    db: &Db,
    max: usize,
    user: Id,
    name: &str,
    scopes: Scopes,
    expires_in_s: Option<i64>,
) -> Result<NewToken> {
    let name = check_name(name)?;
    let expires_at = match expires_in_s {
        None => None,
        Some(s) if (1..=MAX_EXPIRES_IN_S).contains(&s) => {
            Some(Time::now() + chrono::Duration::seconds(s))
        }
        Some(_) => {
            return Err(Error::validation(
                "expires_in_s",
                "must be 1 second to 10 years",
            ))
        }
    };
    let (row, secret) = new_token_row(user, name, scopes, expires_at);
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            if store::tokens::count_locking(conn, user)? >= max as i64 {
                return Err(Error::new(
                    Class::Invalid,
                    "too_many_tokens",
                    format!("a user may hold at most {max} tokens; delete one first"),
                ));
            }
            Ok(store::tokens::insert(conn, &row)?)
        })?;
        Ok(NewToken {
            token: Token::from(&row),
            token_secret: secret,
        })
    })
    .await
}

pub async fn list(db: &Db, user: Id) -> Result<Vec<Token>> {
    db.run(move |conn| {
        Ok(store::tokens::list(conn, user)?
            .iter()
            .map(Token::from)
            .collect())
    })
    .await
}

/// Ends every session and token of `user` (and their stream tickets and push subscriptions),
/// each revoked as a logout is, so their sockets close on every node. Returns the ids revoked.
/// Deactivation and account deletion both end an account's access this way.
pub(crate) fn revoke_all_of(batch: &mut events::Batch<'_>, user: Id) -> Result<Vec<Id>> {
    let revoked = store::erasure::delete_credentials(batch.conn(), user)?;
    for &credential in &revoked {
        revoke_in(batch, credential)?;
    }
    Ok(revoked)
}

/// Ends a credential (a session or a token) and appends `credential.revoked` in the same
/// transaction, so that every node closes the sockets bound to it. The push subscriptions made
/// with it go too: a signed-out device is notified of nothing more.
pub(crate) fn revoke_in(batch: &mut events::Batch<'_>, credential: Id) -> Result<()> {
    store::push::delete_for_credentials(batch.conn(), &[credential])?;
    let revoked = Revoked {
        credential_id: credential,
    };
    event::append(
        batch,
        &Event::CredentialRevoked(revoked),
        To::Server,
        Time::now(),
    )?;
    Ok(())
}

/// Deletes one of the caller's tokens (404 if it isn't theirs).
pub async fn delete(writer: &Writer, user: Id, id: Id) -> Result<()> {
    writer
        .run(move |batch| {
            match store::tokens::find(batch.conn(), id)? {
                Some(row) if row.user_id == user => {}
                _ => return Err(Error::not_found("token_not_found", "no such token")),
            }
            store::tokens::delete(batch.conn(), id)?;
            revoke_in(batch, id)
        })
        .await
}

/// A bot just created, with its first token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewBot {
    pub bot: User,
    pub token: NewToken,
}

/// Creates a bot owned by `owner` (a person: bots can't create bots).
pub async fn create_bot(
    db: &Db,
    max: usize,
    owner: Id,
    username: &str,
    display_name: Option<String>,
) -> Result<NewBot> {
    let username = Username::parse(username).map_err(|why| Error::validation("username", why))?;
    let display = match display_name {
        Some(d) => DisplayName::parse(&d)
            .map_err(|why| Error::validation("display_name", why))?
            .into_inner(),
        None => username.as_str().to_string(),
    };
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            let creator = store::users::find(conn, owner)?.ok_or_else(Error::unauthenticated)?;
            if creator.kind == UserKind::Bot {
                return Err(Error::not_allowed("bots can't create bots"));
            }
            // Each bot has its own write bucket and tokens: uncapped, they would multiply the
            // owner's.
            if store::users::count_bots_locking(conn, owner)? >= max as i64 {
                return Err(Error::new(
                    Class::Invalid,
                    "too_many_bots",
                    format!("you may own at most {max} bots"),
                ));
            }
            let row = UserRow {
                id: Id::new(),
                username: username.as_str().to_string(),
                display_name: display,
                // Not a PHC string: no password ever matches, so a bot can't sign in by form.
                password_hash: "!".into(),
                kind: UserKind::Bot,
                avatar_attachment_id: None,
                owner_id: Some(owner),
                created_at: Time::now(),
                admin: false,
                deactivated_at: None,
                deleted_at: None,
                last_export_at: None,
            };
            match store::users::insert(conn, &row) {
                Ok(()) => {}
                Err(e) if store::is_unique_violation(&e) => {
                    return Err(Error::conflict("username_taken", "that username is taken"))
                }
                Err(e) => return Err(e.into()),
            }
            let (token, secret) =
                new_token_row(row.id, "created with the bot".into(), Scopes::ALL, None);
            store::tokens::insert(conn, &token)?;
            Ok(NewBot {
                bot: User::from(&row),
                token: NewToken {
                    token: Token::from(&token),
                    token_secret: secret,
                },
            })
        })
    })
    .await
}

/// Who a bearer token belongs to: (user, token id, scopes, expiry), if it is live. Served
/// from the node's credential cache when it can be.
pub async fn authenticate(
    db: &Db,
    cache: &Credentials,
    secret: &str,
) -> Result<Option<(Id, Id, Scopes, Option<Time>)>> {
    let hash = sha256_hex(secret.as_bytes());
    if let Some(hit) = cache.tokens.get(&hash) {
        let (user, scopes) = hit.value;
        return Ok(Some((
            user,
            hit.id,
            Scopes::from_stored(&scopes),
            hit.expires,
        )));
    }
    let key = hash.clone();
    let row = db
        .run(move |conn| Ok(store::tokens::find_live(conn, &key, Time::now())?))
        .await?;
    Ok(row.map(|row| {
        if !cache.was_revoked(row.id) {
            cache.tokens.put(
                hash,
                Entry {
                    id: row.id,
                    expires: row.expires_at,
                    value: (row.user_id, row.scopes.clone()),
                },
            );
        }
        (
            row.user_id,
            row.id,
            Scopes::from_stored(&row.scopes),
            row.expires_at,
        )
    }))
}

/// A stream ticket just issued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub ticket: String,
    pub expires_at: Time,
}

/// Issues a single-use ticket bound to the caller's credential.
pub async fn issue_ticket(db: &Db, user: Id, credential: Id) -> Result<Ticket> {
    let ticket = secret("hbt_");
    let hash = sha256_hex(ticket.as_bytes());
    let expires_at = Time::now() + chrono::Duration::seconds(TICKET_TTL_SECS);
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            store::tokens::insert_ticket(conn, &hash, user, credential, expires_at)
        })?;
        Ok(Ticket { ticket, expires_at })
    })
    .await
}

/// Redeems a ticket: (user, credential), or 401 if it is unknown, used or expired.
pub async fn redeem_ticket(db: &Db, ticket: &str) -> Result<(Id, Id)> {
    let hash = sha256_hex(ticket.as_bytes());
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            store::tokens::redeem_ticket(conn, &hash, Time::now())
        })?
        .ok_or_else(|| {
            Error::new(
                Class::Unauthenticated,
                "invalid_ticket",
                "the ticket is unknown, used or expired",
            )
        })
    })
    .await
}
