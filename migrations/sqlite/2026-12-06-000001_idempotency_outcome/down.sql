ALTER TABLE idempotency_keys RENAME COLUMN outcome TO response;
ALTER TABLE idempotency_keys ADD COLUMN status INTEGER NOT NULL DEFAULT 201;
