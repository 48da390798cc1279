-- Message search (docs/api.md, "Search"): a full-text index of the live messages' bodies.
-- unicode61 splits text into words (letters and digits of any script; case and diacritics
-- folded); a search term matches the words it begins (prefix query), so "서울" finds
-- "서울에서" and "hello" finds "hello,". The FTS rowid is the message's seq (unique, in the
-- log's order), so the newest hits come first without a sort. `prefix='2 3'` keeps short
-- prefixes (the usual Korean word is two syllables) to one doclist each instead of a merge of
-- every word they begin. Contentless: the bodies stay in `messages` only; contentless_delete
-- lets the triggers delete by rowid.
CREATE VIRTUAL TABLE message_search USING fts5(
    body,
    content='',
    contentless_delete=1,
    tokenize='unicode61 remove_diacritics 2',
    prefix='2 3'
);

-- Kept current in the same transaction as every write to `messages` (send, edit, delete,
-- account erasure, admin delete): a tombstone (deleted_at set, body erased) leaves the index.
CREATE TRIGGER message_search_insert AFTER INSERT ON messages
WHEN new.deleted_at IS NULL AND new.body <> ''
BEGIN
    INSERT INTO message_search(rowid, body) VALUES (new.seq, new.body);
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF body, deleted_at, seq ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.seq;
    INSERT INTO message_search(rowid, body)
        SELECT new.seq, new.body WHERE new.deleted_at IS NULL AND new.body <> '';
END;

CREATE TRIGGER message_search_delete AFTER DELETE ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.seq;
END;

INSERT INTO message_search(rowid, body)
    SELECT seq, body FROM messages WHERE deleted_at IS NULL AND body <> '';
