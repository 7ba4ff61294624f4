-- Schema version 3: which notifications have been queued. A notification (a record's change
-- told to Slack) is queued in the same transaction as its mark, so it is queued once; a change
-- whose mark is missing after a crash is found and told at the next start (`bot.catchup`).

CREATE TABLE notified (
    mark TEXT PRIMARY KEY,   -- e.g. slack:proposal:P-7:v3, slack:incident:I-2:opened
    at TEXT NOT NULL
);

-- Everything stored before this version was told already (or is too old to tell now): mark it,
-- so an upgrade does not post it again.
INSERT OR IGNORE INTO notified (mark, at)
    SELECT 'slack:proposal:' || id || ':made', updated_at FROM proposals;
INSERT OR IGNORE INTO notified (mark, at)
    SELECT 'slack:proposal:' || id || ':v' || version, updated_at FROM proposals;
INSERT OR IGNORE INTO notified (mark, at)
    SELECT 'slack:incident:' || id || ':opened', updated_at FROM incidents;
INSERT OR IGNORE INTO notified (mark, at)
    SELECT 'slack:incident:' || id || ':v' || version, updated_at FROM incidents;
INSERT OR IGNORE INTO notified (mark, at)
    SELECT 'slack:incident:' || id || ':resolved', updated_at FROM incidents
    WHERE status = 'resolved';
INSERT OR IGNORE INTO notified (mark, at)
    SELECT 'slack:diagnosis:' || id, created_at FROM diagnoses;
