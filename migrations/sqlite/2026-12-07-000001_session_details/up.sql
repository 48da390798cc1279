-- What a user sees of their signed-in devices (GET /api/v1/sessions): the browser that signed
-- in, and when the session was last used (touched at most once a minute per node).
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
