"""One cluster's view of the shared incident store: what a cluster's monitor (its incident
tracker) reads and writes. Open incidents and fingerprints are that cluster's, and the incidents
it opens are stamped with it, so two clusters' store 4 are two incidents; reads by ID and
updates pass through (a record keeps the cluster it was opened in)."""

from __future__ import annotations

import builtins
from datetime import datetime

from engine.events import EventKind, IncidentChange
from engine.model import AuditEvent, Incident, IncidentStatus, Severity
from engine.ports import IncidentRepo


class ClusterIncidents:
    """`engine.ports.IncidentRepo` limited to `cluster` (see the module docstring)."""

    def __init__(self, inner: IncidentRepo, cluster: str) -> None:
        self.inner = inner
        self.cluster = cluster

    async def next_id(self) -> str:
        return await self.inner.next_id()

    async def get(self, incident_id: str) -> Incident | None:
        return await self.inner.get(incident_id)

    async def get_open_by_fingerprint(
        self, fingerprint: str, cluster: str | None = None
    ) -> Incident | None:
        return await self.inner.get_open_by_fingerprint(fingerprint, cluster or self.cluster)

    async def list_open(self, cluster: str | None = None) -> builtins.list[Incident]:
        return await self.inner.list_open(cluster or self.cluster)

    async def list(
        self,
        *,
        status: IncidentStatus | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> builtins.list[Incident]:
        found = await self.inner.list(status=status, kind=kind, since=since, limit=limit)
        return [i for i in found if i.cluster == self.cluster]

    async def create(self, incident: Incident, *, audit: AuditEvent | None = None) -> Incident:
        stamped = incident.model_copy(update={"cluster": self.cluster})
        if audit is not None:
            audit = audit.model_copy(update={"cluster": self.cluster})
        return await self.inner.create(stamped, audit=audit)

    async def update(
        self,
        incident: Incident,
        *,
        audit: AuditEvent | None = None,
        announce: EventKind | None = None,
        notes: tuple[IncidentChange, ...] = (),
        previous_severity: Severity | None = None,
    ) -> Incident:
        return await self.inner.update(
            incident,
            audit=audit,
            announce=announce,
            notes=notes,
            previous_severity=previous_severity,
        )


__all__ = ["ClusterIncidents"]
