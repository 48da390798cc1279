-- Message search (docs/api.md, "Search"): a GIN index over the words of the live messages'
-- bodies, as the `simple` text search configuration splits them (letters and digits of any
-- script, lower-cased, no stemming: the same for every language). A search term matches the
-- words it begins (`term:*`), so "서울" finds "서울에서". An expression index: PostgreSQL keeps
-- it current in the same transaction as every write to `messages`, whatever the path. A
-- tombstone's body is empty, so it has no words; the partial predicate keeps it out anyway.
--
-- The vector also holds the room, as one lexeme '#' and the room id in hex: a search ANDs the
-- caller's rooms into the tsquery, so GIN intersects the posting lists before any heap row is
-- read (a word common elsewhere but absent from the caller's rooms would otherwise cost a
-- recheck of every row that has it). No search word can match it: words never hold '#'.
CREATE INDEX messages_search ON messages
    USING gin ((to_tsvector('simple'::regconfig, body)
                || array_to_tsvector(ARRAY['#' || replace(room_id::text, '-', '')])))
    WHERE deleted_at IS NULL;
