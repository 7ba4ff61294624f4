"""Fixtures and record builders for engine and storage tests.

Fixtures: `db_path` (a temp file path), `db` (a migrated `storage.Database` on that file, closed
after the test), `repos` (all SQLite repositories on `db`).
Builders (plain functions, import them): `make_proposal`, `make_incident`, `make_execution`,
`alice`, `bob`, `T0`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.model import (
    Approval,
    Execution,
    Identity,
    Incident,
    Proposal,
    ProposalOrigin,
    ProposalState,
    RiskLevel,
    Severity,
    fingerprint,
)
from storage import Database, Repositories

T0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)


def alice() -> Identity:
    return Identity.slack("U1ALICE", name="alice", groups=("S_ONCALL",))


def bob() -> Identity:
    return Identity.slack("U2BOB", name="bob")


def make_proposal(
    state: ProposalState = ProposalState.PROPOSED,
    *,
    id: str = "P-7",
    risk: RiskLevel = RiskLevel.MEDIUM,
    requested_by: Identity | None = None,
    created_at: datetime = T0,
    ttl: timedelta = timedelta(minutes=30),
    version: int = 1,
    **changes: Any,
) -> Proposal:
    """A proposal in any state, built directly (tests only: production code uses transition())."""
    requester = requested_by or Identity.claude("claude-test")
    decided: dict[str, Any] = {}
    if state in (
        ProposalState.APPROVED,
        ProposalState.EXECUTING,
        ProposalState.SUCCEEDED,
        ProposalState.FAILED,
    ):
        decided = {
            "approvals": (Approval(by=alice(), at=created_at + timedelta(minutes=3)),),
            "decided_by": alice(),
            "decided_at": created_at + timedelta(minutes=3),
        }
    elif state in (ProposalState.REJECTED, ProposalState.CANCELLED):
        decided = {
            "decided_by": bob(),
            "decided_at": created_at + timedelta(minutes=4),
            "decision_reason": "not now",
        }
    fields: dict[str, Any] = {
        "id": id,
        "incident_id": None,
        "action": "transfer-leader",
        "params": {"region_id": 12, "to_store": 2},
        "risk": risk,
        "reversible": True,
        "reason": "store 4 is slow",
        "origin": ProposalOrigin.CLAUDE if requested_by is None else ProposalOrigin.USER,
        "proposed_by": requester,
        "requested_by": requester,
        "state": state,
        "version": version,
        "expires_at": created_at + ttl,
        "created_at": created_at,
        "updated_at": created_at + timedelta(minutes=5 if decided else 0),
        **decided,
    }
    fields.update(changes)
    return Proposal(**fields)


def make_incident(
    *,
    id: str = "I-1",
    kind: str = "store-down",
    subject: str = "store:4",
    at: datetime = T0,
    **changes: Any,
) -> Incident:
    fields: dict[str, Any] = {
        "id": id,
        "fingerprint": fingerprint(kind, subject),
        "kind": kind,
        "subject": subject,
        "severity": Severity.CRITICAL,
        "worst_severity": Severity.CRITICAL,
        "title": f"{kind} on {subject}",
        "value": 1.0,
        "threshold": 0.0,
        "details": {"store_id": 4, "down_seconds": 120},
        "opened_at": at,
        "updated_at": at,
        "last_seen_at": at,
    }
    fields.update(changes)
    return Incident(**fields)


def make_execution(proposal_id: str = "P-7", *, at: datetime = T0, **changes: Any) -> Execution:
    fields: dict[str, Any] = {"proposal_id": proposal_id, "started_at": at, "updated_at": at}
    fields.update(changes)
    return Execution(**fields)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tikvops.db"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    """A migrated database in a temporary file, closed after the test."""
    database = await Database.open(db_path)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def repos(db: Database) -> Repositories:
    """Every SQLite repository on `db`."""
    return Repositories.on(db)
