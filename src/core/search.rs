//! Message search: the messages the caller may see now (the rule of history: every message of
//! the rooms they are a current member of), whose words begin with every search word, newest
//! first, each with a snippet that marks what matched.

use serde::Serialize;

use crate::core::views::message_views;
use crate::core::views::Message;
use crate::domain::search::{snippet, SearchQuery, Segment};
use crate::domain::Id;
use crate::error::{Class, Error, Result};
use crate::store::{self, Db};

/// The most hits one page returns.
pub const MAX_PAGE: i64 = 50;

/// A search as the client asked for it (`q` not parsed yet).
pub struct Find {
    pub q: String,
    pub room: Option<Id>,
    /// A message id: hits older than it.
    pub before: Option<Id>,
    pub limit: i64,
}

/// One hit: the message as history shows it, and its snippet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Hit {
    #[serde(flatten)]
    pub message: Message,
    /// The part of the body around the first match, as plain-text pieces; `hit: true` marks
    /// the matched start of a word. A cut end is "…".
    pub snippet: Vec<Segment>,
}

/// A page of hits, newest first, and the cursor of the next (older) page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Hits {
    pub hits: Vec<Hit>,
    /// The id of the page's oldest hit when more may follow (give it as `before`), else null.
    pub next_before: Option<Id>,
}

/// 422 `invalid_search_query` for `q`.
pub fn invalid_query(why: impl Into<String>) -> Error {
    Error::new(
        Class::Invalid,
        "invalid_search_query",
        "the search query can't be used",
    )
    .and("q", why)
}

/// Searches the messages `user` may see.
pub async fn find(db: &Db, user: Id, find: Find, timeout_ms: u64) -> Result<Hits> {
    let query = SearchQuery::parse(&find.q).map_err(invalid_query)?;
    db.run(move |conn| {
        if let Some(room) = find.room {
            store::rooms::find_for_member(conn, room, user)?.ok_or_else(Error::room_not_found)?;
        }
        let before_seq = match find.before {
            None => None,
            Some(id) => Some(store::search::visible_seq(conn, user, id)?.ok_or_else(|| {
                Error::bad_request("invalid_cursor", "before must be a message id you can see")
            })?),
        };
        let ids = store::search::search(
            conn,
            &store::search::Search {
                terms: query.terms(),
                user,
                room: find.room,
                before_seq,
                // One more than the page: whether another page follows.
                limit: find.limit + 1,
                timeout_ms,
            },
        )
        .map_err(|e| {
            if store::search::timed_out(&e) {
                Error::new(
                    Class::Invalid,
                    "search_too_broad",
                    "the search took too long; use longer or more words, or a room_id",
                )
            } else {
                e.into()
            }
        })?;
        let more = ids.len() as i64 > find.limit;
        let ids = &ids[..ids.len().min(find.limit as usize)];
        let mut rows = store::messages::find_many(conn, ids)?;
        // Newest first, as the search found them.
        rows.sort_by_key(|r| std::cmp::Reverse(r.seq));
        let messages = message_views(conn, &rows)?;
        let hits: Vec<Hit> = messages
            .into_iter()
            .map(|message| {
                let snippet = snippet(message.body.as_deref().unwrap_or(""), &query);
                Hit { message, snippet }
            })
            .collect();
        let next_before = if more {
            hits.last().map(|h| h.message.id)
        } else {
            None
        };
        Ok(Hits { hits, next_before })
    })
    .await
}
