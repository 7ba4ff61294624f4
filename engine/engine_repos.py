"""The repositories and metrics one engine is built on (what the composition root injects)."""

from __future__ import annotations

from typing import Protocol

from engine.deciding import ApprovalLatency
from engine.executor import ExecutionMetrics
from engine.ports import (
    AttentionRepo,
    AuditLog,
    DedupRepo,
    EngineSettingsRepo,
    EventLog,
    ExecutionRepo,
    IncidentRepo,
    ProposalRepo,
)


class EngineRepos(Protocol):
    """The repositories the engine needs (`storage.Repositories` provides them)."""

    @property
    def incidents(self) -> IncidentRepo: ...

    @property
    def proposals(self) -> ProposalRepo: ...

    @property
    def executions(self) -> ExecutionRepo: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def dedup(self) -> DedupRepo: ...

    @property
    def settings(self) -> EngineSettingsRepo: ...

    @property
    def events(self) -> EventLog: ...

    @property
    def attention(self) -> AttentionRepo: ...


class EngineMetrics(ExecutionMetrics, ApprovalLatency, Protocol):
    """Optional metrics hook (`tikvops.observability.BotMetrics` provides it)."""


__all__ = ["EngineMetrics", "EngineRepos"]
