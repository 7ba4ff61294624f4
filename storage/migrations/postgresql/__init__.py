"""The PostgreSQL text of each numbered migration (same file names as the SQLite ones)."""
