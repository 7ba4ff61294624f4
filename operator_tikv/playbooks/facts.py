"""Small helpers shared by the rules: reading a store's numbers from an observation and
wording numbers, IDs and durations for people; `suggest` builds a registry-validated action."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from operator_tikv.actions import ActionError, get_action
from operator_tikv.models.hotspot import HotPeerStat
from operator_tikv.models.region import PeerRole, Region
from operator_tikv.models.store import StoreInfo, StoreStateName
from operator_tikv.observation import Observation, RegionProblem
from operator_tikv.playbooks.model import (
    DEFAULT_MAX_REPLICAS,
    DEFAULT_MAX_STORE_DOWN_MIN,
    Cause,
    DiagnosisKind,
    Fact,
    PlaybookContext,
    PlaybookResult,
    Suggestion,
)

_JOINT_ROLES = frozenset({PeerRole.INCOMING_VOTER.value, PeerRole.DEMOTING_VOTER.value})


def label(store_id: int, observation: Observation) -> str:
    store = observation.store(store_id)
    if store is not None and store.address:
        return f"store {store_id} ({store.address})"
    return f"store {store_id}"


def p99_ms(observation: Observation, store_id: int) -> float | None:
    if observation.metrics is None:
        return None
    p99 = observation.metrics.for_store(store_id).write_p99_seconds
    if p99 is None or math.isnan(p99):
        return None
    return p99 * 1000.0


def used_ratio(observation: Observation, store: StoreInfo) -> float | None:
    if observation.metrics is not None:
        ratio = observation.metrics.for_store(store.id).disk_used_ratio
        if ratio is not None and math.isfinite(ratio):
            return ratio
    return store.used_ratio


def is_up(store: StoreInfo | None) -> bool:
    return store is not None and store.state_name is StoreStateName.UP


def heartbeat_age(store: StoreInfo, now: float) -> float | None:
    beat = store.last_heartbeat
    return None if beat is None else max(0.0, now - beat.timestamp())


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def ms(value: float) -> str:
    return "above the largest bucket" if math.isinf(value) else f"{value:.0f} ms"


def span(values: Iterable[float]) -> str:
    """ "20 ms" or "18–25 ms"."""
    ordered = sorted(values)
    low, high = ms(ordered[0]), ms(ordered[-1])
    if low == high:
        return low
    return f"{low.removesuffix(' ms')}–{high}" if high.endswith(" ms") else f"{low}–{high}"


def ids(values: Sequence[int]) -> str:
    return ", ".join(str(i) for i in values) or "none"


def hot_peers(observation: Observation, store_id: int) -> list[HotPeerStat]:
    """The store's hot write leader peers, hottest first."""
    if observation.hot_write is None:
        return []
    stat = observation.hot_write.as_leader.get(store_id)
    if stat is None:
        return []
    return sorted(stat.statistics, key=lambda p: (-p.flow_bytes, p.region_id))


def hot_counts(observation: Observation) -> dict[int, int]:
    if observation.hot_write is None:
        return {}
    return {
        sid: stat.regions_count or len(stat.statistics)
        for sid, stat in observation.hot_write.as_leader.items()
    }


def suggest(action: str, params: Mapping[str, Any], reason: str) -> Suggestion:
    """A suggestion whose params went through the registry (a bug here fails loudly in tests)."""
    try:
        call = get_action(action).call(get_action(action).validate(params))
    except ActionError as exc:  # pragma: no cover - the rules only build valid params
        raise AssertionError(f"playbook built an invalid {action}: {exc}") from exc
    return Suggestion(action=call.action, params=dict(call.params), reason=reason)


class Answer(Protocol):
    """How a rule answers (see `answer_with`)."""

    def __call__(
        self, summary: str, actions: tuple[Suggestion, ...] = (), conf: float = 0.6
    ) -> PlaybookResult: ...


def answer_with(
    playbook: str, kind: DiagnosisKind, causes: Sequence[Cause], evidence: Sequence[Fact]
) -> Answer:
    """A rule's answer for its playbook and kind: `answer(summary, actions, conf)`. The causes
    and evidence are read when it answers, so facts a rule appends afterwards are included."""

    def answer(
        summary: str, actions: tuple[Suggestion, ...] = (), conf: float = 0.6
    ) -> PlaybookResult:
        return PlaybookResult(
            playbook=playbook,
            kind=kind,
            summary=summary,
            causes=tuple(causes),
            evidence=tuple(evidence),
            confidence=conf,
            actions=actions,
        )

    return answer


def heartbeat_evidence(label: str, age: float | None, down_after: float, known: bool) -> list[Fact]:
    """The last heartbeat's age (when known) and max-store-down-time (read, or PD's default)."""
    evidence = []
    if age is not None:
        evidence.append(
            Fact(
                fact=f"{label} sent its last heartbeat {duration(age)} ago",
                value=round(age, 1),
                unit="s",
                source="pd:/stores",
            )
        )
    evidence.append(
        Fact(
            fact=f"max-store-down-time is {duration(down_after)}"
            + ("" if known else " (PD's default; the config could not be read)"),
            value=down_after,
            unit="s",
            source="pd:/config/schedule" if known else None,
        )
    )
    return evidence


def max_store_down_seconds(context: PlaybookContext) -> tuple[float, bool]:
    """max-store-down-time in seconds, and whether it was read (else PD's default)."""
    if context.schedule is not None:
        return context.schedule.max_store_down_time.total_seconds(), True
    return DEFAULT_MAX_STORE_DOWN_MIN * 60.0, False


def max_replicas(context: PlaybookContext) -> int:
    """max-replicas as read from PD, else PD's default (3). With the default, a cluster that
    runs more replicas sees every region as over-replicated, so nothing is moved: safe."""
    return context.max_replicas if context.max_replicas is not None else DEFAULT_MAX_REPLICAS


def move_blocker(region: Region, context: PlaybookContext) -> str | None:
    """Why moving a peer of `region` now would be unsafe, or None when it is settled: a
    leader, no down or pending peer, only voters (no learner, no joint membership change), no
    more peers than max-replicas (an extra one means a move is half done), and no operator PD
    is running on it (when the running operators could be read)."""
    if region.leader_store_id is None:
        return "no leader"
    if region.down_peers:
        return f"a down peer (store {ids(region.down_store_ids)})"
    if region.pending_peers:
        return f"a pending peer (store {ids(region.pending_store_ids)})"
    learners = [p.store_id for p in region.peers if not p.is_voter]
    if learners:
        return f"a learner peer being added (store {ids(learners)})"
    joint = [p.store_id for p in region.peers if p.role_name in _JOINT_ROLES]
    if joint:
        return f"a membership change in progress (store {ids(joint)})"
    limit = max_replicas(context)
    if len(region.peers) > limit:
        return f"{len(region.peers)} peers, more than max-replicas {limit} (a move is half done)"
    if context.operator_region_ids is not None and region.id in context.operator_region_ids:
        return "an operator PD is running on it"
    return None


def down_peer_regions(observation: Observation, store_id: int) -> int:
    """Regions whose down peer is on the store, from the observation's down-peer list."""
    down = observation.region_checks.get(RegionProblem.DOWN_PEER)
    return down.peer_stores.get(store_id, 0) if down else 0


def rate(bytes_per_s: float) -> str:
    if bytes_per_s >= 1024 * 1024:
        return f"{bytes_per_s / 1024 / 1024:.1f} MiB/s"
    if bytes_per_s >= 1024:
        return f"{bytes_per_s / 1024:.0f} KiB/s"
    return f"{bytes_per_s:.0f} B/s"


def gib(value: float) -> str:
    return f"{value / 1024**3:,.1f} GiB"
