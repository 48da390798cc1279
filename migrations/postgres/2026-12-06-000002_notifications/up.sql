-- Notifications (#17): mentions, per-room notification levels, push subscriptions.

-- Who a message mentions, beside it: a room view counts the caller's mentions after their read
-- marker (seq is the message's), and history shows them. A deleted message's rows go with its body.
CREATE TABLE message_mentions (
    message_id UUID NOT NULL REFERENCES messages(id),
    user_id UUID NOT NULL REFERENCES users(id),
    room_id UUID NOT NULL REFERENCES rooms(id),
    seq BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX message_mentions_user ON message_mentions(user_id, room_id, seq);

-- A member's notification setting for a room. No row: level 'all', not muted.
CREATE TABLE room_notifications (
    room_id UUID NOT NULL REFERENCES rooms(id),
    user_id UUID NOT NULL REFERENCES users(id),
    level TEXT NOT NULL CHECK (level IN ('all', 'mentions', 'none')),
    muted_until TIMESTAMPTZ,
    PRIMARY KEY (room_id, user_id)
);

-- Where to push a user's notifications: a browser's Web Push endpoint (with its keys) or a
-- device's FCM registration token. Each belongs to the session or token that made it and goes
-- when that credential ends. target: the endpoint URL or the FCM token, unique per kind.
CREATE TABLE push_subscriptions (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id UUID NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('webpush', 'fcm')),
    target TEXT NOT NULL,
    p256dh TEXT,
    auth TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, target)
);
CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);
CREATE INDEX push_subscriptions_credential ON push_subscriptions(credential_id);
