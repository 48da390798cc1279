-- Message search (docs/api.md, "Search"): a GIN index over the words of the live messages'
-- bodies, as the `simple` text search configuration splits them (letters and digits of any
-- script, lower-cased, no stemming: the same for every language). A search term matches the
-- words it begins (`term:*`), so "서울" finds "서울에서". An expression index: PostgreSQL keeps
-- it current in the same transaction as every write to `messages`, whatever the path. A
-- tombstone's body is empty, so it has no words; the partial predicate keeps it out anyway.
CREATE INDEX messages_search ON messages
    USING gin (to_tsvector('simple'::regconfig, body))
    WHERE deleted_at IS NULL;
