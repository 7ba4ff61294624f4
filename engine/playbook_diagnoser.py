"""The playbook diagnoser: `operator_tikv.playbooks` behind the engine's `Diagnoser` port.

Turns an incident into the playbooks' `Problem`, runs them (with a read-only PD client for the
little extra data some rules need), and adapts their `PlaybookResult` into an
`engine.model.Diagnosis` with `source=playbook`, `model=<playbook name>` (the flow names the
proposer `playbook:<name>` from it) and `prompt_version=PLAYBOOKS_VERSION`. Never raises for
PD failures: the playbooks record what they could not read and propose accordingly.
"""

from __future__ import annotations

from datetime import datetime

from engine.model import Diagnosis, DiagnosisSource, Evidence, Hypothesis, Incident, ProposedAction
from engine.ports import Clock
from operator_tikv.observation import Observation
from operator_tikv.playbooks import (
    PLAYBOOKS_VERSION,
    PlaybookContext,
    PlaybookLimits,
    PlaybookPD,
    PlaybookResult,
    Problem,
    gather,
    run,
)


def problem_of(incident: Incident) -> Problem:
    """The playbooks' view of an incident (kind, subject, value, threshold, region sample)."""
    message = incident.details.get("message")
    return Problem.from_fields(
        incident.kind,
        incident.subject,
        value=incident.value,
        threshold=incident.threshold,
        details=incident.details,
        title=message if isinstance(message, str) and message else incident.title,
    )


def to_diagnosis(result: PlaybookResult, incident_id: str, created_at: datetime) -> Diagnosis:
    """A playbook result as the engine's Diagnosis (notes become evidence without a value)."""
    evidence = [
        Evidence(fact=f.fact, value=f.value, unit=f.unit, source=f.source) for f in result.evidence
    ]
    evidence += [Evidence(fact=note, source="playbook") for note in result.notes]
    return Diagnosis(
        incident_id=incident_id,
        source=DiagnosisSource.PLAYBOOK,
        model=result.playbook,
        prompt_version=PLAYBOOKS_VERSION,
        summary=result.summary,
        causes=[Hypothesis(statement=c.statement, confidence=c.confidence) for c in result.causes],
        evidence=evidence,
        confidence=result.confidence,
        actions=[
            ProposedAction(action=a.action, params=dict(a.params), reason=a.reason)
            for a in result.actions
        ],
        created_at=created_at,
    )


class PlaybookDiagnoser:
    """`Diagnoser` over the built-in playbooks. `pd` is any read-only client with the calls of
    `operator_tikv.playbooks.PlaybookPD` (`operator_tikv.pd.PDClient` has them); without it
    the rules use the observation alone and propose only what it can justify."""

    def __init__(
        self, pd: PlaybookPD | None, clock: Clock, *, limits: PlaybookLimits | None = None
    ) -> None:
        self.pd = pd
        self.clock = clock
        self.limits = limits or PlaybookLimits()

    async def diagnose(self, incident: Incident, observation: Observation) -> Diagnosis:
        diagnosis, _ = await self.run(incident, observation)
        return diagnosis

    async def run(
        self,
        incident: Incident,
        observation: Observation,
        context: PlaybookContext | None = None,
    ) -> tuple[Diagnosis, PlaybookResult]:
        """The diagnosis and the playbook's own result (its `kind`, for the evaluation).
        With `context`, reuse data already gathered (e.g. for Claude's prompt)."""
        problem = problem_of(incident)
        if context is None:
            context = await gather(problem, observation, self.pd, self.limits)
        result = run(problem, observation, context, self.limits)
        return to_diagnosis(result, incident.id, self.clock.now()), result


__all__ = ["PlaybookDiagnoser", "problem_of", "to_diagnosis"]
