"""Persistence: SQLite (aiosqlite, the embedded default) or PostgreSQL (psycopg 3, for several
replicas), migrations for both, and the repositories that implement engine.ports.

Open with `db = await open_database(path_or_url)` (applies pending migrations; a
`postgresql://` URL opens PostgreSQL, anything else is a SQLite file), then
`repos = Repositories.on(db)`; close with `await db.close()`.
"""

from engine.errors import StorageError
from storage.audit import SqliteAuditLog
from storage.base import SqlDatabase
from storage.connect import AnyDatabase, open_database
from storage.db import Database
from storage.dburl import PostgresUrl, database_target
from storage.dedup import SqliteDedupRepo
from storage.diagnoses import SqliteDiagnosisRepo
from storage.events import SqliteEventLog
from storage.executions import SqliteExecutionRepo
from storage.incidents import SqliteIncidentRepo
from storage.migrate import latest_version, migrate
from storage.outbox import SqliteOutbox
from storage.pg import PgDatabase
from storage.proposals import SqliteProposalRepo
from storage.refs import SqliteSlackRefs
from storage.repositories import Repositories
from storage.settings import SqliteEngineSettingsRepo

__all__ = [
    "AnyDatabase",
    "Database",
    "PgDatabase",
    "PostgresUrl",
    "Repositories",
    "SqlDatabase",
    "SqliteAuditLog",
    "SqliteDedupRepo",
    "SqliteDiagnosisRepo",
    "SqliteEngineSettingsRepo",
    "SqliteEventLog",
    "SqliteExecutionRepo",
    "SqliteIncidentRepo",
    "SqliteOutbox",
    "SqliteProposalRepo",
    "SqliteSlackRefs",
    "StorageError",
    "database_target",
    "latest_version",
    "migrate",
    "open_database",
]
