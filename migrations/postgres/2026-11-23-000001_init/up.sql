-- hubbub schema, PostgreSQL flavour: native uuid and timestamptz.
CREATE TABLE users (
    id UUID PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    -- 'user', or 'bot' (no password: it signs in with tokens only).
    kind TEXT NOT NULL DEFAULT 'user' CHECK (kind IN ('user', 'bot')),
    -- The user who created a bot.
    owner_id UUID REFERENCES users(id),
    -- An uploaded image shown as the user's picture.
    avatar_attachment_id UUID,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE sessions (
    id UUID PRIMARY KEY NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expiry ON sessions(expires_at);

-- API tokens (bots, scripts): random, shown once, stored as SHA-256.
CREATE TABLE api_tokens (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

-- Single-use tickets for opening the stream without a cookie; they live ~30 seconds.
CREATE TABLE stream_tickets (
    ticket_hash TEXT PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id UUID NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE rooms (
    id UUID PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('group', 'direct')),
    name TEXT,
    dm_key TEXT UNIQUE,
    created_by UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL,
    last_message_id UUID,
    last_activity_at TIMESTAMPTZ NOT NULL
);

-- One row per stay in a room: [joined_event_id, left_event_id] bounds the events a member may see.
CREATE TABLE room_memberships (
    room_id UUID NOT NULL REFERENCES rooms(id),
    user_id UUID NOT NULL REFERENCES users(id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_event_id BIGINT NOT NULL,
    left_event_id BIGINT,
    -- The position (message seq) up to which this member has read.
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id, joined_event_id)
);
CREATE INDEX room_memberships_user ON room_memberships(user_id, room_id);
CREATE UNIQUE INDEX room_memberships_current ON room_memberships(room_id, user_id) WHERE left_event_id IS NULL;

CREATE TABLE messages (
    id UUID PRIMARY KEY NOT NULL,
    room_id UUID NOT NULL REFERENCES rooms(id),
    seq BIGINT NOT NULL UNIQUE,
    author_id UUID NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    reply_to UUID,
    created_at TIMESTAMPTZ NOT NULL,
    edited_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ
);
CREATE INDEX messages_room_seq ON messages(room_id, seq);

-- The event log. Appends are serialized by an advisory lock so ids become visible in id order.
CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    room_id UUID,
    payload TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_room ON events(room_id, id);
CREATE INDEX events_created ON events(created_at);

-- Uploaded files (images). The bytes live under <data dir>/attachments/<id>; a row exists
-- only once they are safely there. message_id: the message that carries it (one at most).
CREATE TABLE attachments (
    id UUID PRIMARY KEY NOT NULL,
    owner_id UUID NOT NULL REFERENCES users(id),
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    thumb_content_type TEXT NOT NULL,
    message_id UUID REFERENCES messages(id),
    -- Its place among the message's attachments, as the sender listed them.
    position INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX attachments_message ON attachments(message_id);
CREATE INDEX attachments_unattached ON attachments(created_at) WHERE message_id IS NULL;

-- Who receives an event that belongs to no room (friend and profile events).
CREATE TABLE event_audience (
    event_id BIGINT NOT NULL,
    user_id UUID NOT NULL,
    PRIMARY KEY (event_id, user_id)
);
CREATE INDEX event_audience_user ON event_audience(user_id, event_id);

CREATE TABLE reactions (
    message_id UUID NOT NULL REFERENCES messages(id),
    user_id UUID NOT NULL REFERENCES users(id),
    emoji TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

-- Pending friend requests only: accepting, declining or cancelling deletes the row.
CREATE TABLE friend_requests (
    id UUID PRIMARY KEY NOT NULL,
    from_user UUID NOT NULL REFERENCES users(id),
    to_user UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (from_user, to_user)
);
CREATE INDEX friend_requests_to ON friend_requests(to_user);

-- One row per friendship, stored once with user_low < user_high.
CREATE TABLE friendships (
    user_low UUID NOT NULL REFERENCES users(id),
    user_high UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_low, user_high)
);
CREATE INDEX friendships_high ON friendships(user_high);

CREATE TABLE blocks (
    blocker UUID NOT NULL REFERENCES users(id),
    blocked UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (blocker, blocked)
);
CREATE INDEX blocks_blocked ON blocks(blocked);

CREATE TABLE idempotency_keys (
    user_id UUID NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);

CREATE TABLE server_state (
    name TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);

CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BYTEA NOT NULL
);
