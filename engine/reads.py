"""Read-only views for `status`, `stores`, `store`, `region`, `incidents`, `proposals`,
`proposal` and `audit`: typed view models built from PD's models and the repositories.

Used by `Engine.handle()` for read commands. Nothing here writes, to PD or to the database. A PD
failure becomes a `Refused` of kind `pd` carrying PD's message (the status view still shows
what the database knows, with `pd_error` set); an unknown store, region or proposal becomes a
`Refused` of kind `unknown` that says how to find a valid one.

Answers to people never wait long on PD. Every live PD read here has a short total deadline
(`live_deadline`, 3 s by default), and when the monitor's knowledge (`engine.knowledge`,
attached by the composition root) says PD is not answering, no live read is tried at all:
`status` shows the stores as the monitor last saw them, "as of" that read, with "PD
unreachable since …"; `stores`, `store` and `region` say PD is unreachable since when and
point to `status`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

from engine.commands import ReadCommand
from engine.errors import StorageError
from engine.executor import undo_from
from engine.knowledge import ClusterKnowledge, Known
from engine.model import TERMINAL_STATES, Proposal, ProposalState
from engine.ports import AuditLog, EngineSettingsRepo, ExecutionRepo, IncidentRepo, ProposalRepo
from engine.results import (
    AuditView,
    ExecutionReport,
    IncidentsView,
    Observed,
    OperatorSummary,
    Outcome,
    PeerSummary,
    ProposalsView,
    ProposalView,
    RefusalKind,
    Refused,
    RegionView,
    StatusView,
    StoreSummary,
    StoresView,
    StoreView,
)
from operator_tikv.actions import get_action, state
from operator_tikv.actions.ports import PDApi
from operator_tikv.errors import PDError, RegionNotFoundError, StoreNotFoundError
from operator_tikv.models.region import Region
from operator_tikv.models.store import StoreInfo

ACTIVE_STATES = (ProposalState.PROPOSED, ProposalState.APPROVED, ProposalState.EXECUTING)
"""Proposals that are not finished: waiting for a decision, approved, or running."""

RECENT_FINISHED = 5

LIVE_READ_DEADLINE = 3.0
"""Seconds a live PD read for a person may take in total before the answer gives up on it."""

T = TypeVar("T")


class _PDSlow(Exception):
    """A live read did not finish within its deadline, or the monitor says PD is down."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def store_summary(store: StoreInfo, drained: bool) -> StoreSummary:
    return StoreSummary(
        id=store.id,
        address=store.address,
        state=store.state_name.value,
        leader_count=store.leader_count,
        region_count=store.region_count,
        capacity_bytes=store.capacity_bytes,
        available_bytes=store.available_bytes,
        used_ratio=store.used_ratio,
        last_heartbeat=store.last_heartbeat,
        drained=drained,
        version=store.version,
        labels=store.labels,
    )


def names_store(proposal: Proposal, store_id: int) -> bool:
    """Whether any `*store_id` parameter of the proposal is this store."""
    return any(
        key.endswith("store_id") and value == store_id for key, value in proposal.params.items()
    )


def _pd_refusal(exc: PDError) -> Refused:
    return Refused(reason=str(exc), kind=RefusalKind.PD)


class Reads:
    """The read views over one PD and one set of repositories. A record not found is a
    `Refused` naming what was looked for; the surfaces word it with their own command names
    (`bot.messages.refusal`). `prog` is kept for callers and not used in any sentence here."""

    def __init__(
        self,
        *,
        pd: PDApi,
        incidents: IncidentRepo,
        proposals: ProposalRepo,
        executions: ExecutionRepo,
        audit: AuditLog,
        settings: EngineSettingsRepo,
        knowledge: ClusterKnowledge | None = None,
        live_deadline: float = LIVE_READ_DEADLINE,
    ) -> None:
        #: What the monitor knows (None: no monitor in this process, e.g. a terminal command).
        self.knowledge = knowledge
        self.live_deadline = live_deadline
        self._pd = pd
        self._incidents = incidents
        self._proposals = proposals
        self._executions = executions
        self._audit = audit
        self._settings = settings
        #: With several clusters, the one this engine reads (set when the engines are joined):
        #: `status` lists its incidents and proposals and its kill switch; None: everything.
        self.cluster: str | None = None

    def _known(self) -> Known | None:
        return self.knowledge.current if self.knowledge is not None else None

    def _now(self) -> datetime:
        return self.knowledge.now() if self.knowledge is not None else datetime.now(UTC)

    async def _live(self, read: Awaitable[T]) -> T:
        """`read`, unless the monitor says PD is not answering (then not even tried) or it
        takes longer than `live_deadline` seconds: `_PDSlow` says which, and since when."""
        known = self._known()
        now = self._now()
        if known is not None and known.pd_failing:
            if asyncio.iscoroutine(read):
                read.close()  # never started
            raise _PDSlow(known.unreachable_sentence(now))
        try:
            async with asyncio.timeout(self.live_deadline):
                return await read
        except TimeoutError:
            raise _PDSlow(
                f"PD did not answer within {self.live_deadline:g} s, so this answer does not "
                "wait for it."
            ) from None

    def _pd_slow_refusal(self, slow: _PDSlow) -> Refused:
        return Refused(
            reason=f"{slow.reason} `status` shows the cluster as the monitor last saw it; try "
            "again once PD answers.",
            kind=RefusalKind.PD,
        )

    async def _store_summaries(self) -> list[StoreSummary]:
        stores = await self._pd.list_stores()
        drained = set(await self._pd.evicted_leader_store_ids())
        return [store_summary(s, s.id in drained) for s in sorted(stores, key=lambda s: s.id)]

    async def status(self) -> StatusView:
        """Stores, open incidents, unfinished proposals and the safety switches; if PD cannot
        be read (or not quickly) the view still shows the rest, with `pd_error` saying since
        when, and the stores as the monitor last saw them ("as of")."""
        pd_error: str | None = None
        try:
            stores = await self._live(self._store_summaries())
        except (PDError, _PDSlow) as exc:
            stores, pd_error = self._last_known(exc)
        counts: dict[str, int] = {}
        for summary in stores:
            counts[summary.state] = counts.get(summary.state, 0) + 1
        engine_settings = await self._settings.get()
        cluster = self.cluster
        return StatusView(
            stores=stores,
            state_counts=counts,
            open_incidents=await self._incidents.list_open(cluster),
            active_proposals=await self._proposals.list(states=ACTIVE_STATES, cluster=cluster),
            kill_switch=engine_settings.switch_for(cluster)
            if cluster is not None
            else engine_settings.kill_switch,
            observe_only=engine_settings.observe_only,
            pd_error=pd_error,
        )

    def _last_known(self, exc: PDError | _PDSlow) -> tuple[list[StoreSummary], str]:
        """The stores the monitor last saw and the sentence saying why and as of when."""
        now = self._now()
        known = self._known()
        reason = exc.reason if isinstance(exc, _PDSlow) else str(exc)
        if known is None:
            return [], reason
        summaries = [
            store_summary(s, drained=False) for s in sorted(known.stores, key=lambda s: s.id)
        ]
        return summaries, f"{reason} {known.as_of_sentence(now)}"

    async def stores(self) -> StoresView | Refused:
        try:
            return StoresView(stores=await self._live(self._store_summaries()))
        except PDError as exc:
            return _pd_refusal(exc)
        except _PDSlow as slow:
            return self._pd_slow_refusal(slow)

    async def _store_and_drained(self, store_id: int) -> tuple[StoreInfo, bool]:
        info = await self._pd.get_store(store_id)
        return info, store_id in await self._pd.evicted_leader_store_ids()

    async def store(self, store_id: int, *, prog: str = "/tikv") -> StoreView | Refused:
        try:
            info, drained = await self._live(self._store_and_drained(store_id))
        except _PDSlow as slow:
            return self._pd_slow_refusal(slow)
        except StoreNotFoundError:
            return Refused(
                reason=f"store {store_id} not found in PD",
                kind=RefusalKind.UNKNOWN,
                observed=Observed(record_kind="store", store_id=store_id),
            )
        except PDError as exc:
            return _pd_refusal(exc)
        subject = f"store:{store_id}"
        incidents = [i for i in await self._incidents.list_open() if i.subject == subject]
        proposals = [
            p for p in await self._proposals.list(states=ACTIVE_STATES) if names_store(p, store_id)
        ]
        return StoreView(
            store=store_summary(info, drained), incidents=incidents, proposals=proposals
        )

    async def _region_and_operator(
        self, region_id: int
    ) -> tuple[Region, state.OperatorView | None]:
        region = await self._pd.get_region(region_id)
        return region, await state.read_operator(self._pd, region_id)

    async def region(self, region_id: int, *, prog: str = "/tikv") -> RegionView | Refused:
        try:
            region, operator = await self._live(self._region_and_operator(region_id))
        except _PDSlow as slow:
            return self._pd_slow_refusal(slow)
        except RegionNotFoundError:
            return Refused(
                reason=f"region {region_id} not found in PD",
                kind=RefusalKind.UNKNOWN,
                observed=Observed(record_kind="region", region_id=region_id),
            )
        except PDError as exc:
            return _pd_refusal(exc)
        down = set(region.down_store_ids)
        pending = set(region.pending_store_ids)
        peers = [
            PeerSummary(
                peer_id=peer.id,
                store_id=peer.store_id,
                role=peer.role_name or ("Learner" if peer.is_learner else "Voter"),
                leader=peer.store_id == region.leader_store_id,
                down=peer.store_id in down,
                pending=peer.store_id in pending,
            )
            for peer in region.peers
        ]
        return RegionView(
            region_id=region.id,
            start_key=region.start_key,
            end_key=region.end_key,
            epoch_version=region.epoch.version,
            conf_ver=region.epoch.conf_ver,
            leader_store_id=region.leader_store_id,
            peers=peers,
            approximate_size_mib=region.approximate_size,
            approximate_keys=region.approximate_keys,
            operator=None
            if operator is None
            else OperatorSummary(desc=operator.desc, status=operator.status, brief=operator.brief),
        )

    async def incidents(self) -> IncidentsView:
        return IncidentsView(incidents=await self._incidents.list_open())

    async def proposals(self) -> ProposalsView:
        return ProposalsView(
            proposals=await self._proposals.list(states=ACTIVE_STATES),
            recent=await self._proposals.list(
                states=sorted(TERMINAL_STATES), limit=RECENT_FINISHED
            ),
        )

    async def proposal(self, proposal_id: str, *, prog: str = "/tikv") -> ProposalView | Refused:
        proposal = await self._proposals.get(proposal_id)
        if proposal is None:
            return Refused(
                reason=f"proposal {proposal_id} not found",
                kind=RefusalKind.UNKNOWN,
                observed=Observed(record_kind="proposal", proposal_id=proposal_id),
            )
        execution = await self._executions.get(proposal_id)
        history = await self._audit.list_recent(subject=proposal_id, limit=200)
        try:
            action = get_action(proposal.action)
            text = action.present(action.validate(proposal.params))
        except Exception:  # a record from an older catalogue still shows, without the text
            text = None
        return ProposalView(
            proposal=proposal,
            text=text,
            execution=execution,
            history=list(reversed(history)),
            undo=undo_from(proposal, execution),
        )

    async def audit(self, count: int) -> AuditView:
        return AuditView(events=await self._audit.list_recent(limit=count))

    async def answer(self, command: ReadCommand, prog: str) -> Outcome:
        """The view `command` asks for (a storage failure is a refusal saying so)."""
        try:
            if command.view == "status":
                return await self.status()
            if command.view == "stores":
                return await self.stores()
            if command.view == "store" and command.store_id is not None:
                return await self.store(command.store_id, prog=prog)
            if command.view == "region" and command.region_id is not None:
                return await self.region(command.region_id, prog=prog)
            if command.view == "incidents":
                return await self.incidents()
            if command.view == "proposals":
                return await self.proposals()
            if command.view == "proposal" and command.proposal_id is not None:
                return await self.proposal(command.proposal_id, prog=prog)
            return await self.audit(command.count or 20)
        except StorageError as exc:
            return Refused(reason=str(exc), kind=RefusalKind.STORAGE)

    async def execution_report(self, proposal_id: str) -> ExecutionReport | Refused:
        """The proposal, its execution and the undo on offer, for surfaces after a run."""
        proposal = await self._proposals.get(proposal_id)
        execution = await self._executions.get(proposal_id)
        if proposal is None or execution is None:
            return Refused(
                reason=f"proposal {proposal_id} has not been executed", kind=RefusalKind.UNKNOWN
            )
        return ExecutionReport(
            proposal=proposal, execution=execution, undo=undo_from(proposal, execution)
        )


__all__ = ["ACTIVE_STATES", "LIVE_READ_DEADLINE", "Reads", "names_store", "store_summary"]
