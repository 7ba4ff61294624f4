"""drain and undrain: move every leader off a store with PD's evict-leader scheduler, and back.

drain: `POST /pd/api/v1/schedulers {"name":"evict-leader-scheduler","store_id":S}` (creates the
scheduler or adds the store to it; pd-api.md §2.1). undrain:
`DELETE /pd/api/v1/schedulers/evict-leader-scheduler-{S}`, which removes only that store
(§2.3). Leaders only: no data moves, so this is the least invasive drain (§6.4), and it needs
no more stores than leaders have somewhere to go: the preflight (`preflight.drain_checks`)
refuses only a store that is not Up, no other store able to take leaders, too many drained
stores, or leaders that certainly have no other voter to move to, and shows the leader load
each remaining store would carry, warning when one would lead most of them. Verification
watches the store's leader count fall to zero.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from operator_tikv.actions import preflight as checks
from operator_tikv.actions import state
from operator_tikv.actions.base import (
    Action,
    ActionCall,
    ActionParams,
    PreflightContext,
    PreflightReport,
    Risk,
    Snapshot,
    Verification,
)
from operator_tikv.actions.params import StoreId
from operator_tikv.models.writes import PDWrite

if TYPE_CHECKING:
    from operator_tikv.actions.ports import PDApi

SCHEDULER = "evict-leader-scheduler"


class DrainParams(ActionParams):
    """The store whose leaders move away."""

    store_id: StoreId


class UndrainParams(ActionParams):
    """The store that may hold leaders again."""

    store_id: StoreId


class Drain(Action[DrainParams]):
    name = "drain"
    summary = "Move every leader off a store (evict-leader-scheduler); data stays in place"
    params_model = DrainParams
    risk = Risk.HIGH
    reversible = True
    undo_action = "undrain"
    deadline_seconds = 1800.0
    poll_interval = 10.0
    example = DrainParams(store_id=4)

    def describe(self, p: DrainParams) -> str:
        return f"Drain store {p.store_id}: evict all its leaders ({SCHEDULER})"

    def requests(self, p: DrainParams) -> tuple[PDWrite, ...]:
        return (PDWrite.add_evict_leader(p.store_id),)

    def undo_sentence(self, p: DrainParams) -> str:
        return (
            f"undrain {p.store_id}: remove store {p.store_id} from {SCHEDULER}; PD's "
            "balance-leader scheduler then moves leaders back over time."
        )

    def undo(self, p: DrainParams, before: Snapshot) -> ActionCall | None:
        if p.store_id in before.evicted_store_ids:
            return None  # it was drained before we started: undoing must not undrain it
        return UNDRAIN.call(UndrainParams(store_id=p.store_id))

    async def preflight(self, p: DrainParams, pd: PDApi, ctx: PreflightContext) -> PreflightReport:
        # The three reads are independent: send them together.
        stores, evicted, max_replicas = await asyncio.gather(
            state.read_stores(pd), state.read_evicted(pd), state.read_max_replicas(pd)
        )
        found = checks.drain_checks(p.store_id, stores, evicted, max_replicas, ctx)
        return PreflightReport(action=self.name, checks=tuple(found))

    async def expected_effect(self, p: DrainParams, pd: PDApi) -> str:
        stores, evicted = await asyncio.gather(state.read_stores(pd), state.read_evicted(pd))
        store = stores.get(p.store_id)
        if store is None:
            return f"nothing: store {p.store_id} does not exist"
        targets = checks.leader_targets(p.store_id, stores, evicted)
        return (
            f"{store.leader_count:,} leaders would move off store {p.store_id} to stores "
            f"{', '.join(map(str, targets))}; its {store.region_count:,} replicas stay"
        )

    async def snapshot(self, p: DrainParams, pd: PDApi) -> Snapshot:
        return await _store_snapshot(pd)

    async def verify(self, p: DrainParams, pd: PDApi, before: Snapshot) -> Verification:
        if p.store_id not in await state.read_evicted(pd):
            return Verification.failed(
                f"store {p.store_id} is no longer under {SCHEDULER}: it was removed while "
                "leaders were moving"
            )
        store = await state.read_store(pd, p.store_id)
        if store is None:
            return Verification.failed(f"store {p.store_id} no longer exists")
        start = before.store_leader_counts.get(p.store_id)
        progress = f"leaders on store {p.store_id}: " + (
            f"{start:,} → {store.leader_count:,}"
            if start is not None
            else f"{store.leader_count:,}"
        )
        if store.leader_count == 0:
            return Verification.succeeded(progress)
        return Verification.pending(progress)

    async def reconcile(self, p: DrainParams, pd: PDApi, before: Snapshot) -> Verification | None:
        if p.store_id not in await state.read_evicted(pd):
            return None
        return await self.verify(p, pd, before)


class Undrain(Action[UndrainParams]):
    name = "undrain"
    summary = "Let a drained store hold leaders again (removes it from evict-leader-scheduler)"
    params_model = UndrainParams
    risk = Risk.MEDIUM
    reversible = True
    undo_action = "drain"
    deadline_seconds = 30.0
    poll_interval = 1.0
    example = UndrainParams(store_id=4)

    def describe(self, p: UndrainParams) -> str:
        return f"Undrain store {p.store_id}: remove it from {SCHEDULER} so it can hold leaders"

    def requests(self, p: UndrainParams) -> tuple[PDWrite, ...]:
        return (PDWrite.remove_evict_leader_store(p.store_id),)

    def undo_sentence(self, p: UndrainParams) -> str:
        return f"drain {p.store_id}: put store {p.store_id} back under {SCHEDULER}."

    def undo(self, p: UndrainParams, before: Snapshot) -> ActionCall | None:
        if p.store_id not in before.evicted_store_ids:
            return None
        return DRAIN.call(DrainParams(store_id=p.store_id))

    async def preflight(
        self, p: UndrainParams, pd: PDApi, ctx: PreflightContext
    ) -> PreflightReport:
        evicted = await state.read_evicted(pd)
        return PreflightReport(action=self.name, checks=(checks.is_drained(p.store_id, evicted),))

    async def expected_effect(self, p: UndrainParams, pd: PDApi) -> str:
        store = await state.read_store(pd, p.store_id)
        held = f" (it holds {store.leader_count:,} leaders now)" if store is not None else ""
        return (
            f"store {p.store_id} would accept leaders again{held}; PD's balance-leader "
            "scheduler moves leaders back to it over time"
        )

    async def snapshot(self, p: UndrainParams, pd: PDApi) -> Snapshot:
        return await _store_snapshot(pd)

    async def verify(self, p: UndrainParams, pd: PDApi, before: Snapshot) -> Verification:
        if p.store_id in await state.read_evicted(pd):
            return Verification.failed(
                f"store {p.store_id} is still under {SCHEDULER} after PD accepted the removal"
            )
        return Verification.succeeded(
            f"store {p.store_id} is no longer under {SCHEDULER} and can hold leaders again"
        )

    async def reconcile(self, p: UndrainParams, pd: PDApi, before: Snapshot) -> Verification | None:
        if p.store_id in await state.read_evicted(pd):
            return None
        return await self.verify(p, pd, before)


async def _store_snapshot(pd: PDApi) -> Snapshot:
    stores, evicted = await asyncio.gather(state.read_stores(pd), state.read_evicted(pd))
    return Snapshot(
        store_leader_counts={s.id: s.leader_count for s in stores.values()},
        evicted_store_ids=evicted,
    )


DRAIN = Drain()
UNDRAIN = Undrain()
