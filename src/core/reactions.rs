//! Reactions: one emoji per user per message, added and removed idempotently.

use crate::core::event::{self, Event, ReactionEvent};
use crate::core::messages::for_change;
use crate::domain::{Id, Time};
use crate::error::{Error, Result};
use crate::events::{To, Writer};
use crate::store;

/// The longest reaction, in characters.
pub const MAX_EMOJI_CHARS: usize = 32;

/// Whether `c` may appear in a reaction: no whitespace, no control character.
pub fn allowed_in_emoji(c: char) -> bool {
    !c.is_whitespace() && !c.is_control()
}

/// Checks a reaction: 1–32 characters, no spaces or control characters. Any text is allowed
/// (custom shortcodes like `:party:` as well as Unicode emoji); clients decide how to show it.
pub fn check_emoji(emoji: &str) -> Result<()> {
    let n = emoji.chars().count();
    if n == 0 || n > MAX_EMOJI_CHARS || !emoji.chars().all(allowed_in_emoji) {
        return Err(Error::validation(
            "emoji",
            "must be 1 to 32 characters without spaces",
        ));
    }
    Ok(())
}

/// Adds (`add = true`) or removes the caller's reaction. Doing it twice changes nothing and
/// appends no second event.
pub async fn set(
    writer: &Writer,
    user: Id,
    room: Id,
    message: Id,
    emoji: String,
    add: bool,
) -> Result<()> {
    check_emoji(&emoji)?;
    writer
        .run(move |batch| {
            let (_, _, row) = for_change(batch.conn(), user, room, message)?;
            if row.deleted_at.is_some() {
                return Err(Error::conflict(
                    "message_deleted",
                    "this message was deleted",
                ));
            }
            let now = Time::now();
            let changed = if add {
                store::messages::add_reaction(batch.conn(), message, user, &emoji, now)?
            } else {
                store::messages::remove_reaction(batch.conn(), message, user, &emoji)?
            };
            if changed {
                let payload = ReactionEvent {
                    message_id: message,
                    room_id: room,
                    user_id: user,
                    emoji: emoji.clone(),
                };
                let reacted = if add {
                    Event::ReactionAdded(payload)
                } else {
                    Event::ReactionRemoved(payload)
                };
                event::append(batch, &reacted, To::Room(room), now)?;
            }
            Ok(())
        })
        .await
}
