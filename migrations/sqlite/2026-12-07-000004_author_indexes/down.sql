DROP INDEX attachments_owner;
DROP INDEX messages_author;
