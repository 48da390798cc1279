-- A key now keeps the outcome of the write (the message and its event), not an HTTP answer:
-- the server layer makes the answer from it, the same way for the first send and its retries.
-- Every stored status was 201.
ALTER TABLE idempotency_keys DROP COLUMN status;
ALTER TABLE idempotency_keys RENAME COLUMN response TO outcome;
