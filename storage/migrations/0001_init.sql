-- Schema version 1: incidents, diagnoses, proposals and approvals, executions, the audit log,
-- message references, processed request IDs, engine settings and ID sequences.
-- Timestamps are ISO-8601 UTC text of fixed width; JSON columns are checked with json_valid.

CREATE TABLE id_sequences (
    name TEXT PRIMARY KEY,
    next_value INTEGER NOT NULL CHECK (next_value >= 1)
);
INSERT INTO id_sequences (name, next_value) VALUES ('incident', 1), ('proposal', 1);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    severity TEXT NOT NULL,
    worst_severity TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    title TEXT NOT NULL,
    value REAL,
    threshold REAL,
    details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    clear_since TEXT,
    resolved_at TEXT,
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1)
);
-- At most one open incident per fingerprint, across processes.
CREATE UNIQUE INDEX incidents_one_open_per_fingerprint
    ON incidents (fingerprint) WHERE status = 'open';
CREATE INDEX incidents_by_opened ON incidents (opened_at);

CREATE TABLE diagnoses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    source TEXT NOT NULL,
    model TEXT,
    prompt_version TEXT,
    summary TEXT NOT NULL,
    causes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(causes)),
    evidence TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(evidence)),
    confidence REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    actions TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(actions)),
    error TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX diagnoses_by_incident ON diagnoses (incident_id, id);

CREATE TABLE proposals (
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
                                         'failed', 'rejected', 'expired', 'cancelled')),
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
CREATE INDEX proposals_by_state ON proposals (state, expires_at);
CREATE INDEX proposals_by_incident ON proposals (incident_id);
CREATE INDEX proposals_by_created ON proposals (created_at);

CREATE TABLE approvals (
    proposal_id TEXT NOT NULL REFERENCES proposals (id),
    approver TEXT NOT NULL,             -- identity key, e.g. slack:U123
    identity TEXT NOT NULL CHECK (json_valid(identity)),
    at TEXT NOT NULL,
    PRIMARY KEY (proposal_id, approver)  -- the same person counts once
);

CREATE TABLE executions (
    proposal_id TEXT PRIMARY KEY REFERENCES proposals (id),  -- one run per proposal, ever
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    requests TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(requests)),
    response TEXT CHECK (response IS NULL OR json_valid(response)),
    pd_message TEXT,
    before TEXT CHECK (before IS NULL OR json_valid(before)),
    after TEXT CHECK (after IS NULL OR json_valid(after)),
    progress TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(progress)),
    error TEXT
);
CREATE INDEX executions_by_status ON executions (status);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,                -- identity key, e.g. slack:U123, cli:alice@host, system
    actor_identity TEXT NOT NULL CHECK (json_valid(actor_identity)),
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail)),
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'refused', 'error')),
    reason TEXT
);
CREATE INDEX audit_by_subject ON audit_log (subject, id);
CREATE INDEX audit_by_actor ON audit_log (actor, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be changed');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be deleted');
END;

CREATE TABLE message_refs (
    owner_kind TEXT NOT NULL CHECK (owner_kind IN ('incident', 'proposal')),
    owner_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    ts TEXT NOT NULL,
    thread_ts TEXT,
    PRIMARY KEY (owner_kind, owner_id)
);
CREATE INDEX message_refs_by_ts ON message_refs (channel, ts);

CREATE TABLE processed_requests (
    request_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX processed_requests_by_expiry ON processed_requests (expires_at);

CREATE TABLE engine_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kill_switch TEXT NOT NULL CHECK (json_valid(kill_switch)),
    observe_only INTEGER NOT NULL CHECK (observe_only IN (0, 1)),
    updated_at TEXT
);
INSERT INTO engine_settings (id, kill_switch, observe_only) VALUES (1, '{"on":false}', 0);
