"""Applying a transition to a stored proposal: read it, build the transition from it, save it
with compare-and-set, and on a lost race read it again and decide afresh."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from engine.errors import NotFound, StaleVersion
from engine.model import Proposal
from engine.transitions import TransitionResult


class _ProposalStore(Protocol):
    async def get(self, proposal_id: str) -> Proposal | None: ...

    async def apply(self, result: TransitionResult) -> Proposal: ...


async def apply_transition(
    repo: _ProposalStore,
    proposal_id: str,
    build: Callable[[Proposal], TransitionResult | Awaitable[TransitionResult]],
    *,
    attempts: int = 5,
) -> TransitionResult:
    """Read the proposal, build a transition from it, save it with compare-and-set; on a lost
    race (`StaleVersion`) read it again and rebuild, so the loser of two concurrent approvals
    gets the sentence of the fresh state ("already approved by alice at 14:03 UTC").

    `build` may raise `TransitionError` (propagated as is) or return an awaitable. Raises
    `NotFound` for an unknown ID and `StaleVersion` if every attempt lost a race.
    """
    last: StaleVersion | None = None
    for _ in range(max(attempts, 1)):
        current = await repo.get(proposal_id)
        if current is None:
            raise NotFound(
                f"proposal {proposal_id} not found",
                kind="proposal",
                record_id=proposal_id,
            )
        built = build(current)
        result = built if isinstance(built, TransitionResult) else await built
        try:
            await repo.apply(result)
        except StaleVersion as exc:
            last = exc
            continue
        return result
    assert last is not None
    raise last


__all__ = ["apply_transition"]
