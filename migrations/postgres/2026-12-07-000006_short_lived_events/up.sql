-- Short-lived events (typing, presence): when an event stops mattering. NULL: a permanent event.
-- Replay skips an event once it has expired; maintenance deletes it soon after.
ALTER TABLE events ADD COLUMN expires_at TIMESTAMPTZ;
CREATE INDEX events_expiring ON events(expires_at) WHERE expires_at IS NOT NULL;
