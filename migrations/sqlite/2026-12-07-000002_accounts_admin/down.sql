DROP TABLE reports;
DROP TABLE invites;
ALTER TABLE users DROP COLUMN last_export_at;
ALTER TABLE users DROP COLUMN deleted_at;
ALTER TABLE users DROP COLUMN deactivated_at;
ALTER TABLE users DROP COLUMN admin;
