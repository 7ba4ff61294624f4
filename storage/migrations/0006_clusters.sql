-- Schema version 6: several clusters from one bot. Every record names the cluster it concerns;
-- rows written before (one cluster) belong to cluster 'default', so nothing is lost. An open
-- incident is unique per fingerprint within its cluster (store 4 of prod and store 4 of staging
-- are different stores). IDs stay global (`id_sequences`), so they are unique across clusters.
-- Per-cluster kill switches live beside the global one, as a JSON object keyed by cluster.
ALTER TABLE incidents ADD COLUMN cluster TEXT NOT NULL DEFAULT 'default';
ALTER TABLE proposals ADD COLUMN cluster TEXT NOT NULL DEFAULT 'default';
ALTER TABLE executions ADD COLUMN cluster TEXT NOT NULL DEFAULT 'default';
ALTER TABLE audit_log ADD COLUMN cluster TEXT NOT NULL DEFAULT 'default';
ALTER TABLE events ADD COLUMN cluster TEXT NOT NULL DEFAULT 'default';
ALTER TABLE outbox ADD COLUMN cluster TEXT NOT NULL DEFAULT 'default';
ALTER TABLE engine_settings ADD COLUMN cluster_switches TEXT NOT NULL DEFAULT '{}';
DROP INDEX incidents_one_open_per_fingerprint;
CREATE UNIQUE INDEX incidents_one_open_per_fingerprint
    ON incidents (cluster, fingerprint) WHERE status = 'open';
CREATE INDEX proposals_by_cluster ON proposals (cluster, state);
