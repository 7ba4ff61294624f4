"""Is PD's answer believable? Checks an observation against the last one that was.

PD behind a proxy, or a PD mid-election, can answer 200 with something that cannot be true of
a running cluster. Believing it resolves every incident at once and re-opens them all when
real answers come back. The PD client already refuses a single answer that contradicts
itself (`PDClient.list_stores`: no stores, or a `count` that does not match the list); this
module adds what needs memory:

- a store that was in the last trusted answer and is missing now must have become Tombstone
  (PD's default store list hides Tombstones). It is looked up (`GET /store/{id}`): Tombstone,
  or gone entirely after being Offline, is believable; anything else is not;
- an empty store list where there were stores is not believable.

An untrustworthy observation is replaced by one that says why in `pd_error` (a
`PDUntrustworthyError`'s text), so everything downstream treats it like PD unreachable: the
invariants mark every store and region unknown, open incidents stay open (neither resolved
nor updated), and one `pd_unreachable` incident says why. The memory keeps the last trusted
store list, so the next answer is compared with it, not with the rejected one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from operator_tikv.errors import UNTRUSTWORTHY, PDError, PDUntrustworthyError, StoreNotFoundError
from operator_tikv.models import API_PREFIX
from operator_tikv.models.store import StoreInfo, StoreStateName
from operator_tikv.observation import Observation

#: At most this many vanished stores are looked up one by one; more at once is not believable.
MAX_LOOKUPS = 8


@runtime_checkable
class StoreLookup(Protocol):
    """The one PD read the check needs (`operator_tikv.pd.PDClient` provides it)."""

    async def get_store(self, store_id: int) -> StoreInfo: ...


def is_untrustworthy(observation: Observation) -> bool:
    """Whether the observation failed because PD's answer was not believable (as opposed to
    PD not answering)."""
    return observation.pd_error is not None and observation.pd_error.startswith(UNTRUSTWORTHY)


class TrustCheck:
    """Remembers the last trusted store list and vets each new observation against it. Keep
    one instance per monitor."""

    def __init__(self, pd: StoreLookup | None) -> None:
        self._pd = pd
        self._known: dict[int, StoreStateName] = {}

    @property
    def known_stores(self) -> dict[int, StoreStateName]:
        """Store id -> state in the last trusted answer."""
        return dict(self._known)

    async def vet(self, observation: Observation) -> Observation:
        """The observation itself when believable (and remembered), else one that records PD
        as untrustworthy and why."""
        if not observation.pd_reachable:
            return observation
        problem = await self._problem(observation)
        if problem is None:
            self._known = {s.id: s.state_name for s in observation.stores}
            return observation
        error = PDUntrustworthyError(
            problem, status=200, method="GET", path=f"{API_PREFIX}/stores", from_pd=False
        )
        return Observation(
            at=observation.at,
            pd_url=observation.pd_url,
            pd_error=str(error),
            metrics_source=observation.metrics_source,
        )

    async def _problem(self, observation: Observation) -> str | None:
        current = {s.id for s in observation.stores}
        if not current:
            if self._known:
                return (
                    f"it lists no stores, where its last believable answer listed "
                    f"{len(self._known)}"
                )
            return "it lists no stores at all, which a bootstrapped cluster never has"
        vanished = sorted(
            store_id
            for store_id, state in self._known.items()
            if store_id not in current and state is not StoreStateName.TOMBSTONE
        )
        if not vanished:
            return None
        if len(vanished) > MAX_LOOKUPS or self._pd is None:
            return (
                f"{_stores(vanished)} vanished from its store list without becoming Tombstone "
                f"(last seen {self._states(vanished)})"
            )
        for store_id in vanished:
            problem = await self._vanished(store_id)
            if problem is not None:
                return problem
        return None

    async def _vanished(self, store_id: int) -> str | None:
        assert self._pd is not None
        before = self._known[store_id]
        lead = (
            f"store {store_id} ({before.value} in its last believable answer) is missing from "
            "its store list"
        )
        try:
            info = await self._pd.get_store(store_id)
        except StoreNotFoundError:
            if before is StoreStateName.OFFLINE:
                return None  # decommissioned, then its Tombstone record removed
            return f"{lead}, and PD no longer knows the store at all"
        except PDError as exc:
            return f"{lead}, and looking it up failed: {exc.summary}: {exc.message}"
        if info.state_name is StoreStateName.TOMBSTONE:
            return None
        return f"{lead}, yet PD says it is {info.state_name.value}"

    def _states(self, store_ids: list[int]) -> str:
        return ", ".join(f"{sid} {self._known[sid].value}" for sid in store_ids)


def _stores(store_ids: list[int]) -> str:
    if len(store_ids) == 1:
        return f"store {store_ids[0]}"
    return "stores " + ", ".join(str(s) for s in store_ids)


__all__ = ["MAX_LOOKUPS", "StoreLookup", "TrustCheck", "is_untrustworthy"]
