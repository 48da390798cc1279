//! The tables, as diesel sees them. Written by hand: the UUID and time columns use the
//! portable types of `sql_types`, which `diesel print-schema` can't name.

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    users (id) {
        id -> DbUuid,
        username -> Text,
        display_name -> Text,
        password_hash -> Text,
        kind -> Text,
        owner_id -> Nullable<DbUuid>,
        avatar_attachment_id -> Nullable<DbUuid>,
        created_at -> DbTime,
        admin -> Bool,
        deactivated_at -> Nullable<DbTime>,
        deleted_at -> Nullable<DbTime>,
        last_export_at -> Nullable<DbTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    api_tokens (id) {
        id -> DbUuid,
        user_id -> DbUuid,
        name -> Text,
        token_hash -> Text,
        scopes -> Text,
        created_at -> DbTime,
        expires_at -> Nullable<DbTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    stream_tickets (ticket_hash) {
        ticket_hash -> Text,
        user_id -> DbUuid,
        credential_id -> DbUuid,
        expires_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    sessions (id) {
        id -> DbUuid,
        key_hash -> Text,
        user_id -> DbUuid,
        state -> Text,
        expires_at -> DbTime,
        created_at -> DbTime,
        user_agent -> Nullable<Text>,
        last_seen_at -> Nullable<DbTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    rooms (id) {
        id -> DbUuid,
        kind -> Text,
        name -> Nullable<Text>,
        dm_key -> Nullable<Text>,
        created_by -> DbUuid,
        created_at -> DbTime,
        last_message_id -> Nullable<DbUuid>,
        last_activity_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::DbUuid;

    room_memberships (room_id, user_id, joined_event_id) {
        room_id -> DbUuid,
        user_id -> DbUuid,
        role -> Text,
        joined_event_id -> BigInt,
        left_event_id -> Nullable<BigInt>,
        last_read_seq -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    messages (id) {
        id -> DbUuid,
        room_id -> DbUuid,
        seq -> BigInt,
        author_id -> DbUuid,
        body -> Text,
        reply_to -> Nullable<DbUuid>,
        created_at -> DbTime,
        edited_at -> Nullable<DbTime>,
        deleted_at -> Nullable<DbTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    events (id) {
        id -> BigInt,
        kind -> Text,
        room_id -> Nullable<DbUuid>,
        payload -> Text,
        created_at -> DbTime,
        expires_at -> Nullable<DbTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    idempotency_keys (user_id, key) {
        user_id -> DbUuid,
        key -> Text,
        request_hash -> Text,
        outcome -> Text,
        created_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::DbUuid;

    event_audience (event_id, user_id) {
        event_id -> BigInt,
        user_id -> DbUuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    reactions (message_id, user_id, emoji) {
        message_id -> DbUuid,
        user_id -> DbUuid,
        emoji -> Text,
        created_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    friend_requests (id) {
        id -> DbUuid,
        from_user -> DbUuid,
        to_user -> DbUuid,
        created_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    friendships (user_low, user_high) {
        user_low -> DbUuid,
        user_high -> DbUuid,
        created_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    blocks (blocker, blocked) {
        blocker -> DbUuid,
        blocked -> DbUuid,
        created_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    attachments (id) {
        id -> DbUuid,
        owner_id -> DbUuid,
        content_type -> Text,
        size -> BigInt,
        width -> Integer,
        height -> Integer,
        thumb_content_type -> Text,
        message_id -> Nullable<DbUuid>,
        position -> Integer,
        created_at -> DbTime,
    }
}

diesel::table! {
    server_state (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Binary,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::DbUuid;

    message_mentions (message_id, user_id) {
        message_id -> DbUuid,
        user_id -> DbUuid,
        room_id -> DbUuid,
        seq -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    room_notifications (room_id, user_id) {
        room_id -> DbUuid,
        user_id -> DbUuid,
        level -> Text,
        muted_until -> Nullable<DbTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    push_subscriptions (id) {
        id -> DbUuid,
        user_id -> DbUuid,
        credential_id -> DbUuid,
        kind -> Text,
        target -> Text,
        p256dh -> Nullable<Text>,
        auth -> Nullable<Text>,
        created_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    invites (id) {
        id -> DbUuid,
        code_hash -> Text,
        uses -> Integer,
        uses_left -> Integer,
        created_by -> Nullable<DbUuid>,
        created_at -> DbTime,
        expires_at -> Nullable<DbTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    reports (id) {
        id -> DbUuid,
        reporter_id -> DbUuid,
        target_user_id -> DbUuid,
        message_id -> Nullable<DbUuid>,
        room_id -> Nullable<DbUuid>,
        message_body -> Nullable<Text>,
        reason -> Text,
        created_at -> DbTime,
        resolved_at -> Nullable<DbTime>,
        resolved_by -> Nullable<DbUuid>,
        resolution -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    presence_nodes (node_id) {
        node_id -> DbUuid,
        heartbeat_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::DbUuid;

    presence_streams (node_id, user_id) {
        node_id -> DbUuid,
        user_id -> DbUuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::store::sql_types::{DbTime, DbUuid};

    presence_states (user_id) {
        user_id -> DbUuid,
        share -> Bool,
        online -> Bool,
        last_seen_at -> Nullable<DbTime>,
        left_at -> Nullable<DbTime>,
        announced_at -> Nullable<DbTime>,
        due_at -> Nullable<DbTime>,
    }
}

diesel::joinable!(room_memberships -> rooms (room_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    api_tokens,
    stream_tickets,
    sessions,
    rooms,
    room_memberships,
    messages,
    events,
    event_audience,
    reactions,
    attachments,
    friend_requests,
    friendships,
    blocks,
    idempotency_keys,
    message_mentions,
    room_notifications,
    push_subscriptions,
    invites,
    reports,
    presence_nodes,
    presence_streams,
    presence_states,
);
