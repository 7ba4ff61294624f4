"""SQLite persistence (aiosqlite): migrations and the repositories that implement engine.ports.

Open with `db = await Database.open(path)` (applies pending migrations), then
`repos = Repositories.on(db)`; close with `await db.close()`.
"""

from engine.errors import StorageError
from storage.audit import SqliteAuditLog
from storage.db import Database
from storage.dedup import SqliteDedupRepo
from storage.diagnoses import SqliteDiagnosisRepo
from storage.events import SqliteEventLog
from storage.executions import SqliteExecutionRepo
from storage.incidents import SqliteIncidentRepo
from storage.migrate import latest_version, migrate
from storage.outbox import SqliteOutbox
from storage.proposals import SqliteProposalRepo
from storage.refs import SqliteSlackRefs
from storage.repositories import Repositories
from storage.settings import SqliteEngineSettingsRepo

__all__ = [
    "Database",
    "Repositories",
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
    "latest_version",
    "migrate",
]
