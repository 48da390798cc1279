-- Account deletion and export (#18) read and erase one user's messages and uploads: without
-- these, each would scan every message and every attachment (and the export, paged by seq,
-- would scan them once per page).
CREATE INDEX messages_author ON messages(author_id, seq);
CREATE INDEX attachments_owner ON attachments(owner_id, id);
