DROP INDEX events_expiring;
ALTER TABLE events DROP COLUMN expires_at;
