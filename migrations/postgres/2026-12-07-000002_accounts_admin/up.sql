-- Accounts a service can be run with (#18): administrators, deactivation, deletion, export,
-- invite codes, reports.

-- admin: may use /api/v1/admin/ (set with `hubbub admin promote`). deactivated_at: an admin
-- turned the account off (it can't sign in; its credentials were revoked); reversible.
-- deleted_at: the user deleted the account; the row stays as a tombstone so that their
-- messages keep an author, and the username stays taken until the hold ends.
-- last_export_at: when the user last exported their data (the export is rate-limited per user
-- across every node).
ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN deactivated_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN deleted_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN last_export_at TIMESTAMPTZ;

-- Invite codes (HUBBUB_REGISTRATION=invite). Only the code's SHA-256 is kept; the code is shown
-- once, when made. uses_left goes down by one in the registration's own transaction, never
-- below zero. created_by: the admin who made it, NULL when made with the CLI.
CREATE TABLE invites (
    id UUID PRIMARY KEY NOT NULL,
    code_hash TEXT NOT NULL UNIQUE,
    uses INTEGER NOT NULL CHECK (uses > 0),
    uses_left INTEGER NOT NULL CHECK (uses_left >= 0),
    created_by UUID REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);

-- Reports of a message or a user, for the admins. target_user_id is the reported user, or the
-- reported message's author; message_body is the message's text when it was reported, so the
-- report still shows it if the author deletes it.
CREATE TABLE reports (
    id UUID PRIMARY KEY NOT NULL,
    reporter_id UUID NOT NULL REFERENCES users(id),
    target_user_id UUID NOT NULL REFERENCES users(id),
    message_id UUID REFERENCES messages(id),
    room_id UUID REFERENCES rooms(id),
    message_body TEXT,
    reason TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ,
    resolved_by UUID REFERENCES users(id),
    resolution TEXT
);
CREATE INDEX reports_open ON reports(resolved_at, created_at);
