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

-- A proposal may end `unverified`: PD accepted its write, but reading PD to verify it failed
-- until the action's deadline. The state's CHECK changes, so the table is rebuilt (SQLite's
-- documented procedure: foreign keys off for this migration, checked before the commit).
-- tikvops: foreign_keys off
CREATE TABLE proposals_v4 (
    id TEXT PRIMARY KEY,
    incident_id TEXT REFERENCES incidents (id),
    action TEXT NOT NULL,
    params TEXT NOT NULL CHECK (json_valid(params)),
    risk TEXT NOT NULL CHECK (risk IN ('low', 'medium', 'high')),
    reversible INTEGER NOT NULL CHECK (reversible IN (0, 1)),
    undo TEXT CHECK (undo IS NULL OR json_valid(undo)),
    reason TEXT NOT NULL DEFAULT '',
    origin TEXT NOT NULL,
    proposed_by TEXT NOT NULL CHECK (json_valid(proposed_by)),
    requested_by TEXT NOT NULL CHECK (json_valid(requested_by)),
    state TEXT NOT NULL CHECK (state IN ('proposed', 'approved', 'executing', 'succeeded',
                                         'failed', 'unverified', 'rejected', 'expired',
                                         'cancelled')),
    version INTEGER NOT NULL CHECK (version >= 1),
    decided_by TEXT CHECK (decided_by IS NULL OR json_valid(decided_by)),
    decided_at TEXT,
    decision_reason TEXT,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    preflight TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(preflight)),
    preview TEXT CHECK (preview IS NULL OR json_valid(preview)),
    outcome TEXT
);
INSERT INTO proposals_v4 SELECT * FROM proposals;
DROP TABLE proposals;
ALTER TABLE proposals_v4 RENAME TO proposals;
CREATE INDEX proposals_by_state ON proposals (state, expires_at);
CREATE INDEX proposals_by_incident ON proposals (incident_id);
CREATE INDEX proposals_by_created ON proposals (created_at);
