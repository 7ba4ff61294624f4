-- Schema version 4: the transactional outbox. Every change (proposal transition, execution
-- step, incident opened/changed/resolved, diagnosis) writes its event here in the same
-- transaction as the change; deliverers read the events in `seq` order. `event_cursors` holds
-- how far each durable deliverer got (Slack: advanced in the same transaction as the outbox
-- items an event became). The marks of version 3 are no longer needed: a change without its
-- event cannot be committed.

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL CHECK (json_valid(payload))
);

CREATE TABLE event_cursors (
    consumer TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);

DROP TABLE notified;
