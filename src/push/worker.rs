//! The push worker: one per deployment, reading the log from its own durable cursor.
