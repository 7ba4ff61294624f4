"""Operator builders: PD's `operator.Builder` logic for the operators the simulator creates.

Given a region and its wanted peers and leader, produce the same steps, brief and kind PD would:
joint consensus when more than one peer changes (add learner, enter joint, leave joint, remove),
plain add/promote/remove otherwise, and a leader transfer placed where PD places it. Refusals
carry PD's texts ("no operator step is built", "cannot create operator: target leader is not
allowed", "cannot transfer leader to 5: unhealthy").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim import pderrors
from sim.model import DEMOTING_VOTER, LEARNER, VOTER, Region
from sim.operators import (
    LEADER,
    MERGE,
    REGION,
    SPLIT,
    Operator,
    Step,
    add_learner_step,
    enter_joint_step,
    leave_joint_step,
    merge_step,
    promote_step,
    remove_peer_step,
    split_step,
    transfer_leader_step,
)

if TYPE_CHECKING:
    from sim.cluster import Cluster


class BuildError(Exception):
    """PD refused to build the operator; the message is PD's."""


def _ids(stores: list[int]) -> str:
    return "[" + " ".join(str(s) for s in sorted(stores)) + "]"


def transfer_leader(
    cluster: Cluster,
    desc: str,
    region: Region,
    to_store: int,
    kind: int,
    *,
    targets: list[int] | None = None,
) -> Operator:
    """CreateTransferLeaderOperator: one TransferLeader step (PD checks in this order)."""
    peer = region.peer_on(to_store)
    if peer is None:
        raise BuildError(f"cannot transfer leader to {to_store}: not found")
    if peer.role in (LEARNER, DEMOTING_VOTER):
        raise BuildError(f"cannot transfer leader to {to_store}: not voter")
    if to_store in cluster.unhealthy_peer_stores(region):
        raise BuildError(f"cannot transfer leader to {to_store}: unhealthy")
    valid_targets = sorted(
        t
        for t in (targets or [])
        if (p := region.peer_on(t)) is not None
        and p.role not in (LEARNER, DEMOTING_VOTER)
        and t not in cluster.unhealthy_peer_stores(region)
    )
    if to_store != region.leader_store and not cluster.allows_leader(to_store):
        raise BuildError(pderrors.TARGET_LEADER_NOT_ALLOWED)
    if to_store == region.leader_store:
        raise BuildError(pderrors.NO_OPERATOR_STEP)
    if valid_targets:
        brief = (
            f"evict leader: from store {region.leader_store} to one in {_ids(valid_targets)}, "
            f"or to {to_store} (for compatibility)"
        )
    else:
        brief = f"transfer leader: store {region.leader_store} to {to_store}"
    size = region.approximate_size
    step = transfer_leader_step(region.leader_store, to_store, size)
    return Operator(
        desc, brief, region.id, region.version, region.conf_ver, kind | LEADER, [step], size
    )


def change_peers(
    cluster: Cluster,
    desc: str,
    region: Region,
    kind: int,
    *,
    add: dict[int, int] | None = None,
    remove: list[int] | None = None,
    roles: dict[int, int] | None = None,
    leader: int = 0,
) -> Operator:
    """The general builder: `add` maps store -> role for new peers, `remove` lists stores,
    `roles` sets the final role of kept peers, `leader` the wanted leader store (0: keep/choose).
    """
    add = dict(add or {})
    remove = list(remove or [])
    size = region.approximate_size
    origin = {p.store_id: p for p in region.peers}
    target: dict[int, int] = {sid: p.role for sid, p in origin.items() if sid not in remove}
    for sid, role in (roles or {}).items():
        if sid in target:
            target[sid] = role
    for sid, role in add.items():
        if sid in target:
            raise BuildError(
                f"cannot add peer store_id:{sid} : already have peer "
                f"id:{origin[sid].id} store_id:{sid} "
            )
        target[sid] = role
    if not any(role == VOTER for role in target.values()):
        raise BuildError("cannot create operator: target peers have no voter")
    joint = bool(cluster.schedule["enable-joint-consensus"])
    to_add = sorted(sid for sid in target if sid not in origin)
    to_remove = sorted(sid for sid in origin if sid not in target)
    to_promote = sorted(
        sid
        for sid in target
        if sid in origin and origin[sid].role == LEARNER and target[sid] == VOTER
    )
    to_demote = sorted(
        sid
        for sid in target
        if sid in origin and origin[sid].role == VOTER and target[sid] == LEARNER
    )
    if leader and (leader not in target or target[leader] != VOTER):
        leader = 0
    if leader and leader != region.leader_store and not cluster.allows_leader(leader):
        raise BuildError(pderrors.TARGET_LEADER_NOT_ALLOWED)
    if len(to_add) + len(to_remove) + len(to_promote) <= 1 and not to_demote:
        joint = False

    if to_add and to_remove:
        brief = f"mv peer: store {_ids(to_remove)} to {_ids(to_add)}"
    elif to_add:
        brief = f"add peer: store {_ids(to_add)}"
    elif to_remove:
        brief = f"rm peer: store {_ids(to_remove)}"
    elif to_promote:
        brief = f"promote peer: store {_ids(to_promote)}"
    elif to_demote:
        brief = f"demote peer: store {_ids(to_demote)}"
    elif leader and leader != region.leader_store:
        brief = f"transfer leader: store {region.leader_store} to {leader}"
    else:
        brief = ""

    new_ids = {sid: cluster.alloc_id() for sid in to_add}
    steps: list[Step] = []
    current_leader = region.leader_store

    def transfer(to: int) -> None:
        nonlocal current_leader, kind
        steps.append(transfer_leader_step(current_leader, to, size))
        current_leader = to
        kind |= LEADER

    def choose_leader() -> int:
        kept = [
            sid
            for sid in sorted(target)
            if target[sid] == VOTER and (sid == current_leader or cluster.allows_leader(sid))
        ]
        if not kept:
            return 0
        kept.sort(
            key=lambda sid: (
                sid != current_leader,
                sid in to_add or sid in to_promote,
                sid,
            )
        )
        return kept[0]

    if joint:
        promotes: list[tuple[int, int]] = []
        for sid in to_add:
            steps.append(add_learner_step(new_ids[sid], sid, size))
            kind |= REGION
            if target[sid] == VOTER:
                promotes.append((new_ids[sid], sid))
        promotes += [(origin[sid].id, sid) for sid in to_promote]
        demotes = [(origin[sid].id, sid) for sid in to_demote]
        demotes += [(origin[sid].id, sid) for sid in to_remove if origin[sid].role != LEARNER]
        promotes.sort(key=lambda pair: pair[1])
        demotes.sort(key=lambda pair: pair[1])
        wanted = leader or choose_leader()
        if not wanted:
            raise BuildError("no valid leader")
        pro, dem = tuple(promotes), tuple(demotes)

        def change(transfer_inside: bool) -> None:
            if not pro and not dem:
                if transfer_inside and current_leader != wanted:
                    transfer(wanted)
                return
            steps.append(enter_joint_step(pro, dem, size))
            if transfer_inside and current_leader != wanted:
                transfer(wanted)
            if len(pro) + len(dem) != 1:
                steps.append(leave_joint_step(pro, dem, size))

        if wanted in origin and origin[wanted].role == VOTER:
            if current_leader != wanted:
                transfer(wanted)
            change(False)
        elif current_leader == 0 or target.get(current_leader) == VOTER:
            change(False)
            if current_leader != wanted:
                transfer(wanted)
        else:
            change(True)
            kind |= LEADER
        for sid in to_remove:
            steps.append(remove_peer_step(sid, size))
            kind |= REGION
    else:
        for sid in to_add:
            steps.append(add_learner_step(new_ids[sid], sid, size))
            if target[sid] == VOTER:
                steps.append(promote_step(new_ids[sid], sid, size))
            kind |= REGION
        for sid in to_promote:
            steps.append(promote_step(origin[sid].id, sid, size))
        for sid in to_remove:
            if sid == current_leader:
                wanted = leader or choose_leader()
                if not wanted:
                    raise BuildError("fail to build operator: plan is empty, maybe no valid leader")
                transfer(wanted)
            steps.append(remove_peer_step(sid, size))
            kind |= REGION
        if leader and leader != current_leader and leader in target:
            transfer(leader)
    if not steps:
        raise BuildError(pderrors.NO_OPERATOR_STEP)
    return Operator(desc, brief, region.id, region.version, region.conf_ver, kind, steps, size)


def split(desc: str, region: Region, kind: int, policy: str, keys: list[bytes]) -> Operator:
    """CreateSplitRegionOperator."""
    brief = f"split: region {region.id} use policy {policy}"
    if keys:
        brief += " and keys [" + " ".join(k.hex().upper() for k in keys) + "]"
    size = region.approximate_size
    step = split_step(policy, tuple(keys), size)
    return Operator(
        desc, brief, region.id, region.version, region.conf_ver, kind | SPLIT, [step], size
    )


def merge(desc: str, source: Region, target: Region, kind: int) -> tuple[Operator, Operator]:
    """CreateMergeRegionOperator: an active operator on the source, a passive one on the target."""
    brief = f"merge: region {source.id} to {target.id}"
    active = Operator(
        desc,
        brief,
        source.id,
        source.version,
        source.conf_ver,
        kind | MERGE,
        [merge_step(source.id, target.id, source.approximate_size, passive=False)],
        source.approximate_size,
    )
    passive = Operator(
        desc,
        brief,
        target.id,
        target.version,
        target.conf_ver,
        kind | MERGE,
        [merge_step(source.id, target.id, source.approximate_size, passive=True)],
        target.approximate_size,
    )
    active.partner = passive
    passive.partner = active
    return active, passive
