-- Message search (docs/api.md, "Search"): a full-text index of the live messages' bodies.
-- unicode61 splits text into words (letters and digits of any script; case folded, accents
-- kept, as PostgreSQL's `simple` does); a search term matches the words it begins (prefix query), so "서울" finds
-- "서울에서" and "hello" finds "hello,". The FTS rowid is the message's seq (unique, in the
-- log's order), so the newest hits come first without a sort. `prefix='2 3'` keeps short
-- prefixes (the usual Korean word is two syllables) to one doclist each instead of a merge of
-- every word they begin. Contentless: the bodies stay in `messages` only; contentless_delete
-- lets the triggers delete by rowid.
-- `room` holds one token per message, 'r' and the room id in hex: a search ANDs the caller's
-- rooms into the match, so the index skips other rooms' hits instead of handing each to the
-- join (a word common elsewhere but absent from the caller's rooms cost seconds without it).
-- Search words are column-filtered to `body`, so they never match it.
CREATE VIRTUAL TABLE message_search USING fts5(
    body,
    room,
    content='',
    contentless_delete=1,
    tokenize='unicode61 remove_diacritics 0',
    prefix='2 3'
);

-- Kept current in the same transaction as every write to `messages` (send, edit, delete,
-- account erasure, admin delete): a tombstone (deleted_at set, body erased) leaves the index.
CREATE TRIGGER message_search_insert AFTER INSERT ON messages
WHEN new.deleted_at IS NULL AND new.body <> ''
BEGIN
    INSERT INTO message_search(rowid, body, room)
        VALUES (new.seq, new.body, 'r' || lower(hex(new.room_id)));
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF body, deleted_at, seq, room_id ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.seq;
    INSERT INTO message_search(rowid, body, room)
        SELECT new.seq, new.body, 'r' || lower(hex(new.room_id))
        WHERE new.deleted_at IS NULL AND new.body <> '';
END;

CREATE TRIGGER message_search_delete AFTER DELETE ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.seq;
END;

INSERT INTO message_search(rowid, body, room)
    SELECT seq, body, 'r' || lower(hex(room_id)) FROM messages
    WHERE deleted_at IS NULL AND body <> '';
