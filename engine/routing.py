"""Several clusters behind one bot: every cluster's engine joined, and a command, decision or run
handed to the engine of its cluster (by name, by channel, or by its record's cluster).

`ClusterRouting` is a base of `engine.service.Engine`; it holds no state of its own beyond the
peers the composition root joins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from engine.attention_commands import AttentionCommand
from engine.commands import ActionCommand, DecisionCommand, KillSwitchCommand, ReadCommand
from engine.engine_repos import EngineRepos
from engine.errors import StorageError
from engine.knowledge import Known
from engine.model import Proposal
from engine.policy import ApprovalPolicy
from engine.reads import Reads
from engine.results import ClusterHealth, ClustersView, RefusalKind, Refused


class ClusterRouting:
    """Routing between the engines of every cluster (see the module docstring)."""

    cluster: str
    channel: str | None
    peers: dict[str, Self]
    repos: EngineRepos
    reads: Reads
    policy: ApprovalPolicy

    def join(self, engines: Mapping[str, Self]) -> None:
        """Know every cluster's engine (in configuration order, this one among them); with
        several, this engine's status reads only its own cluster's records."""
        self.peers = dict(engines)
        self.reads.cluster = self.cluster if self.multi_cluster else None

    @property
    def clusters(self) -> list[str]:
        """The names of the clusters this bot watches, in configuration order."""
        return list(self.peers)

    @property
    def multi_cluster(self) -> bool:
        return len(self.peers) > 1

    def approvals_needed(self, proposal: Proposal) -> int:
        """The approvals `proposal` needs, by its own cluster's policy (each cluster has its
        approvers and quorum); a cluster this bot no longer watches: this engine's."""
        return self.peers.get(proposal.cluster, self).policy.approvals_needed(proposal.risk)

    def cluster_of_channel(self, channel: str | None) -> str | None:
        """The cluster whose incident channel `channel` is (ID or name), if any."""
        if channel is None:
            return None
        wanted = channel.lstrip("#")
        for name, engine in self.peers.items():
            if engine.channel is not None and engine.channel.lstrip("#") == wanted:
                return name
        return None

    def engine_for(self, cluster: str | None) -> Self | Refused:
        """The engine of `cluster`; with one cluster, it whatever the name is not given; else a
        refusal saying which clusters there are."""
        names = ", ".join(self.peers)
        if cluster is None:
            if not self.multi_cluster:
                return self
            return Refused(
                reason=f"this bot watches several clusters ({names}) and this command does not "
                "say which: run it in a cluster's incident channel, or name the cluster first, "
                f"e.g. /tikv {next(iter(self.peers))} status (tikvops --cluster NAME ... at the "
                "terminal)",
                kind=RefusalKind.INVALID,
            )
        found = self.peers.get(cluster)
        if found is None:
            return Refused(
                reason=f"there is no cluster '{cluster}': the clusters are {names}",
                kind=RefusalKind.INVALID,
            )
        return found

    async def _owner_of_proposal(self, proposal_id: str) -> Self:
        """The engine of the proposal's cluster (this one with one cluster, or when the
        proposal is unknown: the refusal is then this engine's to give)."""
        if not self.multi_cluster:
            return self
        try:
            proposal = await self.repos.proposals.get(proposal_id)
        except StorageError:
            return self
        if proposal is None:
            return self
        return self.peers.get(proposal.cluster, self)

    async def _owner_of_incident(self, incident_id: str) -> Self:
        if not self.multi_cluster:
            return self
        try:
            incident = await self.repos.incidents.get(incident_id)
        except StorageError:
            return self
        if incident is None:
            return self
        return self.peers.get(incident.cluster, self)

    async def clusters_view(self) -> ClustersView:
        """Every cluster at a glance, from each monitor's last cycle and the open incidents."""
        try:
            settings = await self.repos.settings.get()
            open_incidents = await self.repos.incidents.list_open()
        except StorageError:
            settings, open_incidents = None, []
        out = []
        for name, engine in self.peers.items():
            count = sum(1 for i in open_incidents if i.cluster == name)
            switch = settings is not None and settings.switch_for(name).on
            known = engine.reads.knowledge.current if engine.reads.knowledge else None
            out.append(_cluster_health(name, engine.channel, known, count, switch))
        return ClustersView(clusters=tuple(out))

    async def _route(
        self,
        command: ReadCommand
        | ActionCommand
        | DecisionCommand
        | KillSwitchCommand
        | AttentionCommand,
    ) -> Self | Refused:
        """The engine that answers `command`: a decision or an attention command goes to the
        engine of its record's cluster; a command naming a cluster to that cluster's; a read of
        the cluster or an action needs a cluster when there are several. Reads of records
        (incidents, proposals, audit) and the kill switch without a cluster are answered here
        (all clusters; the global switch)."""
        if isinstance(command, DecisionCommand):
            return await self._owner_of_proposal(command.proposal_id)
        if isinstance(command, AttentionCommand):
            return await self._owner_of_incident(command.incident_id)
        if (
            isinstance(command, ReadCommand)
            and command.view == "proposal"
            and command.cluster is None
        ):
            return await self._owner_of_proposal(command.proposal_id or "")
        if command.cluster is not None:
            return self.engine_for(command.cluster)
        needs_cluster = isinstance(command, ActionCommand) or (
            isinstance(command, ReadCommand)
            and command.view in {"status", "stores", "store", "region"}
        )
        return self.engine_for(None) if needs_cluster else self


def _cluster_health(
    name: str, channel: str | None, known: Known | None, open_incidents: int, switch: bool
) -> ClusterHealth:
    """One cluster's line of `/tikv clusters`, from what its monitor last saw."""
    if known is None or known.cycle_at is None:
        return ClusterHealth(
            name=name,
            channel=channel,
            state="unknown",
            open_incidents=open_incidents,
            kill_switch=switch,
            sentence="no monitor cycle yet"
            + (f"; {open_incidents} open incident(s)" if open_incidents else ""),
        )
    stores = len(known.stores) if known.stores_at is not None else None
    up = sum(1 for s in known.stores if s.state_name.value == "Up") if stores is not None else None
    counted = f"{up}/{stores} stores Up" if stores is not None else "no stores read yet"
    if known.pd_failing:
        state: str = "pd-unreachable"
        sentence = f"PD unreachable ({known.error or 'no answer'}); last read {counted}"
    elif open_incidents:
        state = "incidents"
        sentence = f"{open_incidents} open incident(s); {counted}"
    else:
        state = "ok"
        sentence = f"OK, {counted}"
    return ClusterHealth.model_validate(
        {
            "name": name,
            "channel": channel,
            "state": state,
            "stores": stores,
            "stores_up": up,
            "open_incidents": open_incidents,
            "kill_switch": switch,
            "sentence": sentence,
        }
    )
