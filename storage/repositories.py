"""All repositories on one database (SQLite `Database` or PostgreSQL `PgDatabase`), as one
bundle for wiring and tests."""

from __future__ import annotations

from dataclasses import dataclass

from storage.audit import SqliteAuditLog
from storage.base import SqlDatabase
from storage.dedup import SqliteDedupRepo
from storage.diagnoses import SqliteDiagnosisRepo
from storage.events import SqliteEventLog
from storage.executions import SqliteExecutionRepo
from storage.incidents import SqliteIncidentRepo
from storage.outbox import SqliteOutbox
from storage.proposals import SqliteProposalRepo
from storage.refs import SqliteSlackRefs
from storage.settings import SqliteEngineSettingsRepo


@dataclass(frozen=True, slots=True)
class Repositories:
    db: SqlDatabase
    incidents: SqliteIncidentRepo
    diagnoses: SqliteDiagnosisRepo
    proposals: SqliteProposalRepo
    executions: SqliteExecutionRepo
    audit: SqliteAuditLog
    slack_refs: SqliteSlackRefs
    dedup: SqliteDedupRepo
    outbox: SqliteOutbox
    settings: SqliteEngineSettingsRepo
    events: SqliteEventLog

    @classmethod
    def on(cls, db: SqlDatabase) -> Repositories:
        return cls(
            db=db,
            incidents=SqliteIncidentRepo(db),
            diagnoses=SqliteDiagnosisRepo(db),
            proposals=SqliteProposalRepo(db),
            executions=SqliteExecutionRepo(db),
            audit=SqliteAuditLog(db),
            slack_refs=SqliteSlackRefs(db),
            dedup=SqliteDedupRepo(db),
            outbox=SqliteOutbox(db),
            settings=SqliteEngineSettingsRepo(db),
            events=SqliteEventLog(db),
        )


def _implements_ports(db: SqlDatabase) -> None:  # pragma: no cover - checked by mypy only
    """Static check that every repository implements its port."""
    from engine import ports

    _i: ports.IncidentRepo = SqliteIncidentRepo(db)
    _d: ports.DiagnosisRepo = SqliteDiagnosisRepo(db)
    _p: ports.ProposalRepo = SqliteProposalRepo(db)
    _e: ports.ExecutionRepo = SqliteExecutionRepo(db)
    _a: ports.AuditLog = SqliteAuditLog(db)
    _r: ports.SlackRefs = SqliteSlackRefs(db)
    _u: ports.DedupRepo = SqliteDedupRepo(db)
    _o: ports.Outbox = SqliteOutbox(db)
    _s: ports.EngineSettingsRepo = SqliteEngineSettingsRepo(db)
    _v: ports.EventLog = SqliteEventLog(db)
