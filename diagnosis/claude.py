"""ClaudeDiagnoser: the `engine.ports.Diagnoser` that asks Claude, checks every proposed action,
and falls back to the playbooks when Claude's answer cannot be used.

One diagnosis:

1. gather the little PD data the playbooks would read for this incident (read-only, bounded;
   `operator_tikv.playbooks.gather`) and build the bounded prompt (`prompt.build_request`);
2. one Messages API call that forces the `propose_remediation` tool (`client.ClaudeClient`);
3. parse the reply (`parse.parse_reply`): known actions with registry-typed parameters only;
4. check that every ID in every action exists in the live cluster: store IDs among the
   observation's stores, region IDs through PD's `get_region`.

Any failure (timeout, API error, 429, 529 overloaded, refusal, text without the tool call, an
unknown action, wrong parameter types, an invented store or region) gives Claude's own
`Diagnosis(source=claude, error="diagnosis unavailable: <why>")` with no actions. That record is
handed to `on_unavailable` (the wiring stores it, so the failure is on record), and
`diagnose()` returns the fallback's diagnosis (the playbooks) instead. Nothing Claude says is
executed here or anywhere else without a proposal, an approval and a preflight.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from diagnosis.client import ClaudeUnavailable
from diagnosis.parse import ParsedReply, ReplyError, parse_reply
from diagnosis.prompt import MAX_SNAPSHOT_BYTES, PROMPT_VERSION, PromptRequest, build_request
from engine.model import Diagnosis, DiagnosisSource, Incident, ProposedAction
from engine.playbook_diagnoser import problem_of
from engine.ports import Clock, Diagnoser
from operator_tikv.errors import PDError, RegionNotFoundError
from operator_tikv.observation import Observation
from operator_tikv.playbooks import (
    DiagnosisKind,
    PlaybookContext,
    PlaybookLimits,
    PlaybookPD,
    gather,
)

logger = logging.getLogger(__name__)

UNAVAILABLE = "diagnosis unavailable"


class MessagesClient(Protocol):
    """What the diagnoser needs from `diagnosis.client.ClaudeClient`."""

    model: str

    async def propose(
        self, *, system: str, user: str, tool: Mapping[str, Any]
    ) -> dict[str, Any]: ...


FailureSink = Callable[[Diagnosis], Awaitable[object]]
"""Where Claude's failed diagnoses go (e.g. `DiagnosisRepo.add`)."""


@dataclass(frozen=True)
class ClaudeAttempt:
    """Claude's own answer: a diagnosis with checked actions, or one with `error` and none.
    `kind` is Claude's kind of problem (None when there was no usable answer)."""

    diagnosis: Diagnosis
    kind: DiagnosisKind | None
    request: PromptRequest | None = None

    @property
    def ok(self) -> bool:
        return self.diagnosis.error is None


@dataclass(frozen=True)
class Assessment:
    """Claude's attempt and the diagnosis actually used (the fallback's when Claude failed)."""

    claude: ClaudeAttempt
    used: Diagnosis

    @property
    def fell_back(self) -> bool:
        return not self.claude.ok


async def check_ids(
    actions: Sequence[ProposedAction], observation: Observation, pd: PlaybookPD | None
) -> list[str]:
    """One sentence per ID that does not exist in the live cluster (empty when all do).
    Stores must be in the observation's store list; regions must be known to PD now."""
    stores = {s.id for s in observation.live_stores}
    problems: list[str] = []
    regions: dict[int, str | None] = {}
    for action in actions:
        for key, value in sorted(action.params.items()):
            if not isinstance(value, int):
                continue
            if key.endswith("store_id") and value not in stores:
                known = ", ".join(str(s) for s in sorted(stores)) or "none"
                problems.append(f"{action.action}: store {value} does not exist (stores: {known})")
            elif key.endswith("region_id"):
                if value not in regions:
                    regions[value] = await _region_problem(value, pd)
                if regions[value]:
                    problems.append(f"{action.action}: {regions[value]}")
    return problems


async def _region_problem(region_id: int, pd: PlaybookPD | None) -> str | None:
    if pd is None:
        return f"region {region_id} cannot be checked without PD"
    try:
        await pd.get_region(region_id)
    except RegionNotFoundError:
        return f"region {region_id} does not exist"
    except PDError as exc:
        return f"region {region_id} could not be checked: {exc}"
    return None


class ClaudeDiagnoser:
    """`Diagnoser` backed by Claude, with checked actions and a fallback (see module doc).

    `client`: a `ClaudeClient` (or anything with `model` and `propose`). `pd`: read-only PD
    calls (`operator_tikv.pd.PDClient`). `fallback`: the diagnoser used when Claude fails
    (`engine.playbook_diagnoser.PlaybookDiagnoser`); without one, the failed diagnosis itself is
    returned. `on_unavailable`: receives each failed Claude diagnosis (store it)."""

    def __init__(
        self,
        client: MessagesClient,
        pd: PlaybookPD | None,
        clock: Clock,
        *,
        fallback: Diagnoser | None = None,
        on_unavailable: FailureSink | None = None,
        limits: PlaybookLimits | None = None,
        max_prompt_bytes: int = MAX_SNAPSHOT_BYTES,
    ) -> None:
        self.client = client
        self.pd = pd
        self.clock = clock
        self.fallback = fallback
        self.on_unavailable = on_unavailable
        self.limits = limits or PlaybookLimits()
        self.max_prompt_bytes = max_prompt_bytes

    async def diagnose(self, incident: Incident, observation: Observation) -> Diagnosis:
        return (await self.assess(incident, observation)).used

    async def assess(self, incident: Incident, observation: Observation) -> Assessment:
        """Claude's attempt, and the diagnosis to use (the fallback's when Claude failed)."""
        attempt = await self.attempt(incident, observation)
        if attempt.ok:
            return Assessment(claude=attempt, used=attempt.diagnosis)
        if self.on_unavailable is not None:
            try:
                await self.on_unavailable(attempt.diagnosis)
            except Exception:
                logger.exception("could not record the failed diagnosis of %s", incident.id)
        if self.fallback is None:
            return Assessment(claude=attempt, used=attempt.diagnosis)
        used = await self.fallback.diagnose(incident, observation)
        return Assessment(claude=attempt, used=used)

    async def attempt(self, incident: Incident, observation: Observation) -> ClaudeAttempt:
        """Ask Claude once and check the answer; never raises for Claude or PD failures."""
        request: PromptRequest | None = None
        try:
            context = await self._context(incident, observation)
            request = build_request(incident, observation, context, max_bytes=self.max_prompt_bytes)
            reply = await self.client.propose(
                system=request.system, user=request.user, tool=request.tool
            )
            parsed = parse_reply(reply)
            problems = await check_ids(parsed.actions, observation, self.pd)
            if problems:
                raise ReplyError(
                    "Claude proposed IDs that do not exist in the cluster: " + "; ".join(problems)
                )
        except (ClaudeUnavailable, ReplyError) as exc:
            return self._failed(incident, str(exc), request)
        except Exception as exc:
            logger.exception("diagnosis of %s with Claude failed unexpectedly", incident.id)
            return self._failed(incident, f"unexpected error ({type(exc).__name__})", request)
        return ClaudeAttempt(
            diagnosis=self._diagnosis(incident, parsed), kind=parsed.kind, request=request
        )

    async def _context(self, incident: Incident, observation: Observation) -> PlaybookContext:
        return await gather(problem_of(incident), observation, self.pd, self.limits)

    def _diagnosis(self, incident: Incident, parsed: ParsedReply) -> Diagnosis:
        return Diagnosis(
            incident_id=incident.id,
            source=DiagnosisSource.CLAUDE,
            model=parsed.model or self.client.model,
            prompt_version=PROMPT_VERSION,
            summary=parsed.summary,
            causes=parsed.causes,
            evidence=parsed.evidence,
            confidence=parsed.confidence,
            actions=parsed.actions,
            created_at=self.clock.now(),
        )

    def _failed(self, incident: Incident, why: str, request: PromptRequest | None) -> ClaudeAttempt:
        logger.warning("Claude could not diagnose %s: %s", incident.id, why)
        diagnosis = Diagnosis(
            incident_id=incident.id,
            source=DiagnosisSource.CLAUDE,
            model=self.client.model,
            prompt_version=PROMPT_VERSION,
            summary=f"Claude could not diagnose this incident: {why.rstrip('.')}.",
            error=f"{UNAVAILABLE}: {why}",
            created_at=self.clock.now(),
        )
        return ClaudeAttempt(diagnosis=diagnosis, kind=None, request=request)


__all__ = [
    "UNAVAILABLE",
    "Assessment",
    "ClaudeAttempt",
    "ClaudeDiagnoser",
    "FailureSink",
    "MessagesClient",
    "check_ids",
]
