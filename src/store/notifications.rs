//! What decides who is notified of a message: the users it mentions (`message_mentions`, beside
//! the message and deleted with its body) and each member's setting per room
//! (`room_notifications`: no row means level `all`, not muted). The push worker reads both
//! (`mentions_of`, `levels_for`); room views count the caller's mentions (`mention_counts`).

use diesel::prelude::*;

use super::schema::{message_mentions, messages, room_memberships, room_notifications};
use super::DbConnection;
use crate::domain::{Id, NotifyLevel, Time};

/// A user mentioned by a message, with the message's room and place in the log (its `seq`),
/// so that counting a member's mentions after their read marker needs no other table.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_mentions)]
pub struct MentionRow {
    pub message_id: Id,
    pub user_id: Id,
    pub room_id: Id,
    pub seq: i64,
}

/// A member's notification setting for a room.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = room_notifications, treat_none_as_default_value = false)]
pub struct SettingRow {
    pub room_id: Id,
    pub user_id: Id,
    pub level: NotifyLevel,
    pub muted_until: Option<Time>,
}

/// The most mentions one statement inserts: at 4 parameters each, below PostgreSQL's 65,535. A
/// full writer batch (256 sends of 50 mentions: 12,800) is still one statement.
const MENTIONS_PER_INSERT: usize = 16_000;

/// Inserts the mentions of a group of sends (`insert_many!`).
pub fn insert_mentions(conn: &mut DbConnection, rows: &[MentionRow]) -> QueryResult<()> {
    for chunk in rows.chunks(MENTIONS_PER_INSERT) {
        super::insert_many!(&mut *conn, message_mentions::table, chunk)?;
    }
    Ok(())
}

/// The mentions of these messages, as (message, user), in one query.
pub fn mentions_on(conn: &mut DbConnection, ids: &[Id]) -> QueryResult<Vec<(Id, Id)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    message_mentions::table
        .filter(message_mentions::message_id.eq_any(ids))
        .select((message_mentions::message_id, message_mentions::user_id))
        .load(conn)
}

/// The users a message mentions (none once it is deleted). The author is among them if they
/// mentioned themselves: whoever notifies skips the author.
pub fn mentions_of(conn: &mut DbConnection, message: Id) -> QueryResult<Vec<Id>> {
    let mut users: Vec<Id> = message_mentions::table
        .filter(message_mentions::message_id.eq(message))
        .select(message_mentions::user_id)
        .load(conn)?;
    users.sort();
    Ok(users)
}

/// Mentions of `user` per room, for a room view: in live messages by others after the
/// member's read marker. Rooms without any are left out.
pub fn mention_counts(
    conn: &mut DbConnection,
    user: Id,
    rooms: &[Id],
) -> QueryResult<Vec<(Id, i64)>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    message_mentions::table
        .inner_join(
            room_memberships::table.on(room_memberships::room_id
                .eq(message_mentions::room_id)
                .and(room_memberships::user_id.eq(user))
                .and(room_memberships::left_event_id.is_null())),
        )
        .inner_join(messages::table.on(messages::id.eq(message_mentions::message_id)))
        .filter(message_mentions::user_id.eq(user))
        .filter(message_mentions::room_id.eq_any(rooms))
        .filter(message_mentions::seq.gt(room_memberships::last_read_seq))
        .filter(messages::author_id.ne(user))
        .filter(messages::deleted_at.is_null())
        .group_by(message_mentions::room_id)
        .select((message_mentions::room_id, diesel::dsl::count_star()))
        .load(conn)
}

/// The settings of these users in `room`, as (user, level, muted until): only the rows that
/// exist; a user without one gets everything (`all`, not muted).
pub fn levels_for(
    conn: &mut DbConnection,
    room: Id,
    users: &[Id],
) -> QueryResult<Vec<(Id, NotifyLevel, Option<Time>)>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    room_notifications::table
        .filter(room_notifications::room_id.eq(room))
        .filter(room_notifications::user_id.eq_any(users))
        .select((
            room_notifications::user_id,
            room_notifications::level,
            room_notifications::muted_until,
        ))
        .load(conn)
}

/// `user`'s settings in these rooms (only the rows that exist), for their room views.
pub fn settings_of(
    conn: &mut DbConnection,
    user: Id,
    rooms: &[Id],
) -> QueryResult<Vec<SettingRow>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    room_notifications::table
        .filter(room_notifications::user_id.eq(user))
        .filter(room_notifications::room_id.eq_any(rooms))
        .select(SettingRow::as_select())
        .load(conn)
}

/// Replaces the member's setting. The default (`all`, not muted) is stored as no row.
pub fn set(conn: &mut DbConnection, row: &SettingRow) -> QueryResult<()> {
    forget(conn, row.room_id, row.user_id)?;
    if row.level == NotifyLevel::All && row.muted_until.is_none() {
        return Ok(());
    }
    diesel::insert_into(room_notifications::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Deletes the member's setting (they left: a later stay starts from the default).
pub fn forget(conn: &mut DbConnection, room: Id, user: Id) -> QueryResult<()> {
    diesel::delete(room_notifications::table.find((room, user)))
        .execute(conn)
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{database, room, stay, user};

    #[test]
    fn a_setting_reads_back_and_the_default_is_no_row() {
        // Arrange
        let mut conn = database();
        let (ada, bob) = (user(&mut conn, "ada"), user(&mut conn, "bob"));
        let r = room(&mut conn, ada);
        let until = Time::now();

        // Act
        let muted = SettingRow {
            room_id: r,
            user_id: ada,
            level: NotifyLevel::Mentions,
            muted_until: Some(until),
        };
        set(&mut conn, &muted).unwrap();

        // Assert
        assert_eq!(
            levels_for(&mut conn, r, &[ada, bob]).unwrap(),
            [(ada, NotifyLevel::Mentions, Some(until))],
            "bob has no row: everything"
        );
        assert_eq!(settings_of(&mut conn, ada, &[r]).unwrap(), [muted]);
        let default = SettingRow {
            room_id: r,
            user_id: ada,
            level: NotifyLevel::All,
            muted_until: None,
        };
        set(&mut conn, &default).unwrap();
        assert!(levels_for(&mut conn, r, &[ada]).unwrap().is_empty());
    }

    #[test]
    fn mentions_count_after_the_marker_and_never_the_authors_own() {
        // Arrange: ada's marker at 5; mentions of her at 3 (read), 7 (by bob), 8 (by herself).
        let mut conn = database();
        let (ada, bob) = (user(&mut conn, "ada"), user(&mut conn, "bob"));
        let r = room(&mut conn, ada);
        stay(&mut conn, r, ada, 0, None);
        crate::store::rooms::advance_read(&mut conn, r, ada, 5).unwrap();
        let mut mentions = Vec::new();
        for (seq, author) in [(3, bob), (7, bob), (8, ada)] {
            let row = crate::store::messages::MessageRow {
                id: Id::new(),
                room_id: r,
                seq,
                author_id: author,
                body: "@ada".into(),
                reply_to: None,
                created_at: Time::now(),
                edited_at: None,
                deleted_at: None,
            };
            crate::store::insert_many!(&mut conn, messages::table, std::slice::from_ref(&row))
                .unwrap();
            mentions.push(MentionRow {
                message_id: row.id,
                user_id: ada,
                room_id: r,
                seq,
            });
        }

        // Act
        insert_mentions(&mut conn, &mentions).unwrap();

        // Assert
        assert_eq!(mention_counts(&mut conn, ada, &[r]).unwrap(), [(r, 1)]);
        assert_eq!(
            mentions_of(&mut conn, mentions[1].message_id).unwrap(),
            [ada]
        );
        assert_eq!(
            mention_counts(&mut conn, bob, &[r]).unwrap(),
            [],
            "bob isn't a member"
        );
    }
}
