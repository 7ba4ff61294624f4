-- Schema version 3 (PostgreSQL twin of ../0003_notified.sql): which notifications have been
-- queued (replaced by the event log in version 4, which drops this table).

CREATE TABLE notified (
    mark TEXT PRIMARY KEY,   -- e.g. slack:proposal:P-7:v3, slack:incident:I-2:opened
    at TEXT NOT NULL
);

INSERT INTO notified (mark, at)
    SELECT 'slack:proposal:' || id || ':made', updated_at FROM proposals
    ON CONFLICT DO NOTHING;
INSERT INTO notified (mark, at)
    SELECT 'slack:proposal:' || id || ':v' || version, updated_at FROM proposals
    ON CONFLICT DO NOTHING;
INSERT INTO notified (mark, at)
    SELECT 'slack:incident:' || id || ':opened', updated_at FROM incidents
    ON CONFLICT DO NOTHING;
INSERT INTO notified (mark, at)
    SELECT 'slack:incident:' || id || ':v' || version, updated_at FROM incidents
    ON CONFLICT DO NOTHING;
INSERT INTO notified (mark, at)
    SELECT 'slack:incident:' || id || ':resolved', updated_at FROM incidents
    WHERE status = 'resolved'
    ON CONFLICT DO NOTHING;
INSERT INTO notified (mark, at)
    SELECT 'slack:diagnosis:' || id, created_at FROM diagnoses
    ON CONFLICT DO NOTHING;
