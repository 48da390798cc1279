DROP TABLE push_subscriptions;
DROP TABLE room_notifications;
DROP TABLE message_mentions;
