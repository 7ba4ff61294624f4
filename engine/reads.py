"""Read-only views for `status`, `stores`, `store`, `region`, `incidents`, `proposals`,
`proposal` and `audit`: typed view models built from PD's models and the repositories.

Used by `Engine.handle()` for read commands. Nothing here writes, to PD or to the database. A PD
failure becomes a `Refused` of kind `pd` carrying PD's message (the status view still shows
what the database knows, with `pd_error` set); an unknown store, region or proposal becomes a
`Refused` of kind `unknown` that says how to find a valid one.
"""

from __future__ import annotations

from engine.executor import undo_from
from engine.model import TERMINAL_STATES, Proposal, ProposalState
from engine.ports import AuditLog, EngineSettingsRepo, ExecutionRepo, IncidentRepo, ProposalRepo
from engine.results import (
    AuditView,
    IncidentsView,
    OperatorSummary,
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
from operator_tikv.models.store import StoreInfo

ACTIVE_STATES = (ProposalState.PROPOSED, ProposalState.APPROVED, ProposalState.EXECUTING)
"""Proposals that are not finished: waiting for a decision, approved, or running."""

RECENT_FINISHED = 5


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
    """The read views over one PD and one set of repositories. `prog` is how the surface
    names its commands in hints (`/tikv` in Slack, `tikvops` at the terminal)."""

    def __init__(
        self,
        *,
        pd: PDApi,
        incidents: IncidentRepo,
        proposals: ProposalRepo,
        executions: ExecutionRepo,
        audit: AuditLog,
        settings: EngineSettingsRepo,
    ) -> None:
        self._pd = pd
        self._incidents = incidents
        self._proposals = proposals
        self._executions = executions
        self._audit = audit
        self._settings = settings

    async def _store_summaries(self) -> list[StoreSummary]:
        stores = await self._pd.list_stores()
        drained = set(await self._pd.evicted_leader_store_ids())
        return [store_summary(s, s.id in drained) for s in sorted(stores, key=lambda s: s.id)]

    async def status(self) -> StatusView:
        """Stores, open incidents, unfinished proposals and the safety switches; if PD cannot
        be read the view still shows the rest, with `pd_error`."""
        pd_error: str | None = None
        try:
            stores = await self._store_summaries()
        except PDError as exc:
            stores, pd_error = [], str(exc)
        counts: dict[str, int] = {}
        for summary in stores:
            counts[summary.state] = counts.get(summary.state, 0) + 1
        engine_settings = await self._settings.get()
        return StatusView(
            stores=stores,
            state_counts=counts,
            open_incidents=await self._incidents.list_open(),
            active_proposals=await self._proposals.list(states=ACTIVE_STATES),
            kill_switch=engine_settings.kill_switch,
            observe_only=engine_settings.observe_only,
            pd_error=pd_error,
        )

    async def stores(self) -> StoresView | Refused:
        try:
            return StoresView(stores=await self._store_summaries())
        except PDError as exc:
            return _pd_refusal(exc)

    async def store(self, store_id: int, *, prog: str = "/tikv") -> StoreView | Refused:
        try:
            info = await self._pd.get_store(store_id)
            drained = store_id in await self._pd.evicted_leader_store_ids()
        except StoreNotFoundError:
            return Refused(
                reason=f"store {store_id} does not exist in PD; list the stores with "
                f"`{prog} stores`",
                kind=RefusalKind.UNKNOWN,
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

    async def region(self, region_id: int, *, prog: str = "/tikv") -> RegionView | Refused:
        try:
            region = await self._pd.get_region(region_id)
            operator = await state.read_operator(self._pd, region_id)
        except RegionNotFoundError:
            return Refused(
                reason=f"region {region_id} does not exist in PD (it may have been merged or "
                f"split); look up a store's regions with `{prog} store <id>` or PD's API",
                kind=RefusalKind.UNKNOWN,
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
                reason=f"there is no proposal {proposal_id}; list proposals with "
                f"`{prog} proposals`",
                kind=RefusalKind.UNKNOWN,
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


__all__ = ["ACTIVE_STATES", "Reads", "names_store", "store_summary"]
