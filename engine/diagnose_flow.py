"""What happens after an incident opens or worsens: diagnose it, store and report the diagnosis,
and turn the actions it suggests into proposals.

`DiagnoseFlow.run(incident, observation)`:

1. asks the `Diagnoser` port (Claude or the playbooks) for a diagnosis of the incident from the
   observation that saw it. A diagnoser that raises (it should not) becomes a stored diagnosis
   with `error` set, so the incident still shows why there is no diagnosis;
2. stores it with its `diagnosis.ready` event (`DiagnosisRepo.add`);
3. hands every suggested action to the engine's `propose` (the `Proposer` port, implemented by
   `engine.service.Engine`), which validates it against the registry and the live cluster and
   stores a proposal in state `proposed`, or refuses with the reason. Nothing is executed here.
   Each new proposal is stored with its `proposal.made` event;
4. writes the `actions.not_proposed` event for the suggested actions that did not become
   proposals, each with the engine's refusal sentence or the earlier proposal it duplicates,
   so the surfaces never announce an action that then silently does not appear.

No duplicates: an action with the same parameters (compared after the registry's validation)
is not proposed again for the same incident while an earlier proposal of it is in flight
(proposed, approved, executing) or was rejected or succeeded. After it expired, was cancelled
or failed, a new diagnosis may propose it again. Runs for the same incident are serialised, so
two concurrent diagnoses cannot both propose the same action.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from engine.events import Event, EventKind
from engine.model import (
    Diagnosis,
    DiagnosisSource,
    Identity,
    Incident,
    JsonDict,
    NotProposed,
    Proposal,
    ProposalOrigin,
    ProposalState,
)
from engine.ports import Clock, Diagnoser, DiagnosisRepo, EventLog, ProposalRepo
from engine.results import ProposalCreated, Refused
from operator_tikv.actions import ActionError, validate_params
from operator_tikv.observation import Observation

logger = logging.getLogger(__name__)

BLOCKING_STATES = frozenset(
    {
        ProposalState.PROPOSED,
        ProposalState.APPROVED,
        ProposalState.EXECUTING,
        ProposalState.REJECTED,
        ProposalState.SUCCEEDED,
    }
)
"""An earlier proposal in one of these states stops the same action being proposed again."""

MAX_EARLIER_PROPOSALS = 500


class Proposer(Protocol):
    """The engine's entry point for new proposals (`engine.service.Engine.propose`)."""

    async def propose(
        self,
        action: str,
        params: Mapping[str, object],
        *,
        actor: Identity,
        origin: ProposalOrigin,
        incident_id: str | None,
        reason: str,
    ) -> object:
        """`ProposalCreated` when stored, `Refused` (with the reason) otherwise."""
        ...


@dataclass(frozen=True)
class DiagnoseOutcome:
    """The stored diagnosis, the proposals made from it, and the actions left out."""

    diagnosis: Diagnosis
    proposals: tuple[Proposal, ...] = ()
    skipped: tuple[NotProposed, ...] = ()


def canonical_params(action: str, params: Mapping[str, object]) -> str:
    """The parameters as the registry normalises them (defaults filled, types coerced), as a
    sorted JSON string; the raw parameters when the action or parameters are invalid."""
    try:
        normal: Mapping[str, object] = validate_params(action, params).model_dump(mode="json")
    except ActionError:
        normal = params
    return json.dumps(normal, sort_keys=True, default=str)


def proposer_identity(diagnosis: Diagnosis, incident: Incident) -> tuple[Identity, ProposalOrigin]:
    """Who proposes the diagnosis' actions: Claude (with its model) or the playbook."""
    if diagnosis.source is DiagnosisSource.CLAUDE:
        return Identity.claude(diagnosis.model or "claude"), ProposalOrigin.CLAUDE
    return Identity.playbook(diagnosis.model or incident.kind), ProposalOrigin.PLAYBOOK


class DiagnoseFlow:
    """Diagnose an incident, store and report the diagnosis, propose its actions (see the
    module docstring). One per process; `run` may be called concurrently."""

    def __init__(
        self,
        *,
        diagnoser: Diagnoser,
        diagnoses: DiagnosisRepo,
        proposals: ProposalRepo,
        proposer: Proposer,
        events: EventLog,
        clock: Clock,
    ) -> None:
        self.diagnoser = diagnoser
        self.diagnoses = diagnoses
        self.proposals = proposals
        self.proposer = proposer
        self.events = events
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    async def needs_diagnosis(self, incident: Incident) -> bool:
        """True when the incident has no stored diagnosis yet (e.g. the bot stopped between
        opening it and storing its diagnosis)."""
        return await self.diagnoses.latest_for(incident.id) is None

    async def run(self, incident: Incident, observation: Observation) -> DiagnoseOutcome:
        lock = self._locks.setdefault(incident.id, asyncio.Lock())
        try:
            async with lock:
                return await self._run(incident, observation)
        finally:
            if not lock.locked() and self._locks.get(incident.id) is lock:
                del self._locks[incident.id]

    async def _run(self, incident: Incident, observation: Observation) -> DiagnoseOutcome:
        diagnosis = await self._diagnose(incident, observation)
        stored = await self.diagnoses.add(diagnosis, incident=incident)
        if stored.error or not stored.actions:
            return DiagnoseOutcome(diagnosis=stored)
        return await self._propose_all(incident, stored)

    async def _diagnose(self, incident: Incident, observation: Observation) -> Diagnosis:
        try:
            diagnosis = await self.diagnoser.diagnose(incident, observation)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("the diagnoser failed on incident %s", incident.id)
            reason = str(exc) or type(exc).__name__
            return Diagnosis(
                incident_id=incident.id,
                source=DiagnosisSource.PLAYBOOK,
                summary=f"No diagnosis: the diagnoser failed ({reason}).",
                error=f"diagnosis unavailable: {reason}",
                created_at=self.clock.now(),
            )
        if diagnosis.incident_id != incident.id:
            diagnosis = diagnosis.model_copy(update={"incident_id": incident.id})
        return diagnosis

    async def _propose_all(self, incident: Incident, diagnosis: Diagnosis) -> DiagnoseOutcome:
        earlier = await self.proposals.list(incident_id=incident.id, limit=MAX_EARLIER_PROPOSALS)
        taken: dict[tuple[str, str], str] = {
            (p.action, canonical_params(p.action, p.params)): p.id
            for p in earlier
            if p.state in BLOCKING_STATES
        }
        actor, origin = proposer_identity(diagnosis, incident)
        made: list[Proposal] = []
        skipped: list[NotProposed] = []
        for suggested in diagnosis.actions:
            key = (suggested.action, canonical_params(suggested.action, suggested.params))
            if key in taken:
                skipped.append(
                    NotProposed(
                        suggested=suggested,
                        reason=f"already proposed for {incident.id} as {taken[key]}",
                        duplicate_of=taken[key],
                    )
                )
                continue
            params: JsonDict = dict(suggested.params)
            result = await self.proposer.propose(
                suggested.action,
                params,
                actor=actor,
                origin=origin,
                incident_id=incident.id,
                reason=suggested.reason or diagnosis.summary,
            )
            if isinstance(result, ProposalCreated):
                made.append(result.proposal)
                taken[key] = result.proposal.id
            elif isinstance(result, Refused):
                logger.info(
                    "suggested %s for %s was not proposed: %s",
                    suggested.action,
                    incident.id,
                    result.reason,
                )
                skipped.append(NotProposed(suggested=suggested, reason=result.reason))
            else:  # pragma: no cover - a Proposer outside the contract
                reason = f"the engine gave an unexpected answer ({type(result).__name__})"
                skipped.append(NotProposed(suggested=suggested, reason=reason))
        if skipped:
            await self.events.append(
                Event(
                    at=self.clock.now(),
                    kind=EventKind.ACTIONS_NOT_PROPOSED,
                    subject=incident.id,
                    incident=incident,
                    diagnosis=diagnosis,
                    not_proposed=tuple(skipped),
                )
            )
        return DiagnoseOutcome(diagnosis=diagnosis, proposals=tuple(made), skipped=tuple(skipped))


__all__ = [
    "BLOCKING_STATES",
    "DiagnoseFlow",
    "DiagnoseOutcome",
    "Proposer",
    "canonical_params",
    "proposer_identity",
]
