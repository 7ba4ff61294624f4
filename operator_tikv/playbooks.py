"""Playbooks: deterministic diagnosis rules per incident kind, as TiKV operators handle them.

Used when there is no Anthropic key or Claude fails, and as the baseline of the evaluation set.
Two steps, so the rules stay pure:

1. `gather(problem, observation, pd)` reads the little the rules need beyond one observation,
   read-only and bounded (at most `MAX_GATHER_REQUESTS` PD requests, none of which lists every
   region of the cluster): the evict-leader list, max-replicas, the schedule config, the hottest
   region's peers, or one store's largest regions. A failed read becomes a note, never an
   exception.
2. `run(problem, observation, context)` applies the rules: a summary, likely causes (kept apart
   from the evidence), evidence with numbers, a confidence, and zero or more registered actions
   with typed parameters and the reason for each.

The rules:

- slow store (`write_latency`): drain it (evict its leaders) when only that store is slow, it
  is Up and holds leaders, no other store is drained, and at least max-replicas other Up stores
  can take its leaders.
- hot writes (`hot_write_skew`): move the hottest region's leader to the least-loaded store
  holding a healthy voter of it, or split the region when it alone carries most of the store's
  hot writes (moving it would only move the hotspot) or no such store exists.
- disk over threshold (`disk_usage`): move the peer of the store's largest healthy region to
  the emptiest Up store without a peer of it; otherwise explain (add capacity, free space).
- store Disconnected: wait and watch, no action. Store Down: explain the effect (down peers,
  PD re-creates them after max-store-down-time) and propose nothing.
- unhealthy regions: explain PD's own repair. PD unreachable, metrics gaps: explain.

`operator_tikv` does not know the engine: `PlaybookResult` is our own plain result, adapted
into `engine.model.Diagnosis` by `engine.playbook_diagnoser`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from operator_tikv.actions import ActionError, get_action
from operator_tikv.errors import PDError
from operator_tikv.invariants import Violation, ViolationKind
from operator_tikv.models.config import ReplicationConfig, ScheduleConfig
from operator_tikv.models.hotspot import HotPeerStat
from operator_tikv.models.region import Region, RegionsInfo
from operator_tikv.models.store import StoreInfo, StoreStateName
from operator_tikv.observation import Observation, RegionProblem

PLAYBOOKS_VERSION = "playbooks-1"
"""Recorded with every playbook diagnosis; bump when a rule changes what it proposes."""

MAX_GATHER_REQUESTS = 4
"""Upper bound on the PD requests `gather` makes for one problem."""

DEFAULT_MAX_STORE_DOWN_MIN = 30.0
DEFAULT_LOW_SPACE_RATIO = 0.8


class DiagnosisKind(StrEnum):
    """What kind of problem a diagnosis says it is (scored by the evaluation set)."""

    SLOW_STORE = "slow_store"
    HOT_REGION = "hot_region"
    DISK_FULL = "disk_full"
    STORE_DOWN = "store_down"
    STORE_DISCONNECTED = "store_disconnected"
    UNHEALTHY_REGIONS = "unhealthy_regions"
    PD_UNREACHABLE = "pd_unreachable"
    METRICS_GAP = "metrics_gap"
    UNKNOWN = "unknown"


KIND_MEANINGS: Mapping[DiagnosisKind, str] = {
    DiagnosisKind.SLOW_STORE: "one store serves writes slowly (disk, host, write stall)",
    DiagnosisKind.HOT_REGION: "writes concentrate on a few hot regions led by one store",
    DiagnosisKind.DISK_FULL: "a store is running out of disk space",
    DiagnosisKind.STORE_DOWN: "a store is Down (no heartbeat past max-store-down-time)",
    DiagnosisKind.STORE_DISCONNECTED: "a store stopped sending heartbeats recently",
    DiagnosisKind.UNHEALTHY_REGIONS: "regions have down, pending, missing or extra peers",
    DiagnosisKind.PD_UNREACHABLE: "PD itself cannot be reached",
    DiagnosisKind.METRICS_GAP: "store metrics cannot be read; the cluster may be fine",
    DiagnosisKind.UNKNOWN: "none of the above, or not enough data to say",
}
"""One line per kind, for Claude's tool description and the evaluation table."""


# --------------------------------------------------------------------------- inputs


class Problem(BaseModel):
    """What a playbook is asked about: an incident, in operator_tikv's own terms."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="the invariant's kind, e.g. write_latency")
    store_id: int | None = None
    region_id: int | None = None
    value: float | None = None
    threshold: float | None = None
    region_ids: tuple[int, ...] = ()
    title: str = ""

    @classmethod
    def from_violation(cls, violation: Violation) -> Problem:
        return cls(
            kind=violation.kind.value,
            store_id=violation.store_id,
            region_id=violation.region_id,
            value=violation.value,
            threshold=violation.threshold,
            region_ids=violation.region_ids,
            title=violation.message,
        )

    @classmethod
    def from_fields(
        cls,
        kind: str,
        subject: str,
        *,
        value: float | None = None,
        threshold: float | None = None,
        details: Mapping[str, Any] | None = None,
        title: str = "",
    ) -> Problem:
        """From an incident's fields: `subject` is `store:<id>`, `region:<id>` or `cluster`;
        `details` may hold `store_id` and `region_ids` (anything malformed is ignored)."""
        details = details or {}
        prefix, _, ident = subject.partition(":")
        store_id = _as_id(ident) if prefix == "store" else None
        region_id = _as_id(ident) if prefix == "region" else None
        if store_id is None:
            store_id = _as_id(details.get("store_id"))
        raw_ids = details.get("region_ids")
        region_ids: tuple[int, ...] = ()
        if isinstance(raw_ids, list | tuple):
            region_ids = tuple(i for i in (_as_id(r) for r in raw_ids[:50]) if i is not None)
        return cls(
            kind=kind,
            store_id=store_id,
            region_id=region_id,
            value=value,
            threshold=threshold,
            region_ids=region_ids,
            title=title,
        )


def _as_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value) or None
    return None


class PlaybookLimits(BaseModel):
    """Knobs of the rules (defaults match the preflight defaults and PD's)."""

    model_config = ConfigDict(frozen=True)

    max_drained_stores: int = Field(default=1, ge=1)
    hot_split_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="a hot region carrying at least this share of its store's hot write flow "
        "is split rather than moved",
    )
    slow_cluster_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="when at least this share of the other stores are slow too, the slowness "
        "is cluster-wide and no store is drained",
    )
    disk_candidates: int = Field(default=20, ge=1, description="largest regions considered")
    disk_moves: int = Field(default=1, ge=1, le=5, description="transfer-peers proposed at most")
    hot_regions_read: int = Field(default=1, ge=1, le=2)


class PlaybookPD(Protocol):
    """The read-only PD calls `gather` makes (`operator_tikv.pd.PDClient` provides them)."""

    async def get_region(self, region_id: int) -> Region: ...

    async def get_store_regions(self, store_id: int) -> RegionsInfo: ...

    async def evicted_leader_store_ids(self) -> list[int]: ...

    async def get_replication_config(self) -> ReplicationConfig: ...

    async def get_schedule_config(self) -> ScheduleConfig: ...


class PlaybookContext(BaseModel):
    """What `gather` read beyond the observation. `None` means "not read" (see `notes`)."""

    model_config = ConfigDict(frozen=True)

    evicted_store_ids: tuple[int, ...] | None = None
    max_replicas: int | None = None
    schedule: ScheduleConfig | None = None
    regions: Mapping[int, Region] = Field(default_factory=dict)
    largest_regions: tuple[Region, ...] | None = Field(
        default=None, description="the subject store's largest regions, largest first"
    )
    notes: tuple[str, ...] = ()
    requests: int = 0


# --------------------------------------------------------------------------- outputs


class Cause(BaseModel):
    model_config = ConfigDict(frozen=True)

    statement: str
    confidence: float | None = Field(default=None, ge=0, le=1)


class Fact(BaseModel):
    model_config = ConfigDict(frozen=True)

    fact: str
    value: float | None = None
    unit: str | None = None
    source: str | None = None


class Suggestion(BaseModel):
    """A registered action with parameters already validated by the registry."""

    model_config = ConfigDict(frozen=True)

    action: str
    params: dict[str, JsonValue]
    reason: str


class PlaybookResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    playbook: str = Field(description="which rule set answered, e.g. slow-store")
    kind: DiagnosisKind
    summary: str
    causes: tuple[Cause, ...] = ()
    evidence: tuple[Fact, ...] = ()
    confidence: float = Field(default=0.5, ge=0, le=1)
    actions: tuple[Suggestion, ...] = ()
    notes: tuple[str, ...] = Field(default=(), description="data the rules could not read")


# --------------------------------------------------------------------------- gather


_STORE_KINDS_NEEDING_SCHEDULE = {
    ViolationKind.STORE_DOWN.value,
    ViolationKind.STORE_DISCONNECTED.value,
    ViolationKind.DISK_USAGE.value,
    ViolationKind.REGION_DOWN_PEER.value,
    ViolationKind.REGION_MISS_PEER.value,
    ViolationKind.REGION_PENDING_PEER.value,
    ViolationKind.REGION_EXTRA_PEER.value,
}


async def gather(
    problem: Problem,
    observation: Observation,
    pd: PlaybookPD | None,
    limits: PlaybookLimits | None = None,
) -> PlaybookContext:
    """Read what the rules for `problem` need; at most `MAX_GATHER_REQUESTS` PD reads, all
    read-only. Never raises for PD failures: they become notes."""
    limits = limits or PlaybookLimits()
    if pd is None or not observation.pd_reachable:
        return PlaybookContext()
    notes: list[str] = []
    calls: dict[str, Any] = {}

    kind = problem.kind
    if kind in {ViolationKind.WRITE_LATENCY.value, ViolationKind.HOT_WRITE_SKEW.value}:
        calls["evicted"] = pd.evicted_leader_store_ids()
    if kind == ViolationKind.WRITE_LATENCY.value:
        calls["replication"] = pd.get_replication_config()
    if kind in _STORE_KINDS_NEEDING_SCHEDULE:
        calls["schedule"] = pd.get_schedule_config()
    if kind == ViolationKind.HOT_WRITE_SKEW.value and problem.store_id is not None:
        for peer in _hot_peers(observation, problem.store_id)[: limits.hot_regions_read]:
            calls[f"region:{peer.region_id}"] = pd.get_region(peer.region_id)
    if kind == ViolationKind.DISK_USAGE.value and problem.store_id is not None:
        calls["store_regions"] = pd.get_store_regions(problem.store_id)
    assert len(calls) <= MAX_GATHER_REQUESTS

    results = await asyncio.gather(*calls.values(), return_exceptions=True)
    found: dict[str, Any] = {}
    for name, result in zip(calls, results, strict=True):
        if isinstance(result, PDError):
            notes.append(f"Could not read {_READ_NAMES.get(name, name)} from PD: {result}")
        elif isinstance(result, BaseException):
            raise result
        else:
            found[name] = result

    regions = {int(n.split(":")[1]): r for n, r in found.items() if n.startswith("region:")}
    largest: tuple[Region, ...] | None = None
    if "store_regions" in found:
        info: RegionsInfo = found["store_regions"]
        ordered = sorted(info.regions, key=lambda r: (-r.approximate_size, r.id))
        largest = tuple(ordered[: limits.disk_candidates])
    evicted = found.get("evicted")
    replication: ReplicationConfig | None = found.get("replication")
    return PlaybookContext(
        evicted_store_ids=tuple(sorted(evicted)) if evicted is not None else None,
        max_replicas=replication.max_replicas if replication is not None else None,
        schedule=found.get("schedule"),
        regions=regions,
        largest_regions=largest,
        notes=tuple(notes),
        requests=len(calls),
    )


_READ_NAMES = {
    "evicted": "the evict-leader scheduler's stores",
    "replication": "the replication config (max-replicas)",
    "schedule": "the schedule config",
    "store_regions": "the store's regions",
}


async def diagnose(
    problem: Problem,
    observation: Observation,
    pd: PlaybookPD | None,
    limits: PlaybookLimits | None = None,
) -> PlaybookResult:
    """`gather` then `run`."""
    context = await gather(problem, observation, pd, limits)
    return run(problem, observation, context, limits)


# --------------------------------------------------------------------------- run


def run(
    problem: Problem,
    observation: Observation,
    context: PlaybookContext | None = None,
    limits: PlaybookLimits | None = None,
) -> PlaybookResult:
    """Apply the playbook for `problem.kind` (pure)."""
    context = context or PlaybookContext()
    limits = limits or PlaybookLimits()
    rule = _RULES.get(problem.kind, _unknown)
    if not observation.pd_reachable and problem.kind != ViolationKind.PD_UNREACHABLE.value:
        rule = _pd_unreachable
    result = rule(problem, observation, context, limits)
    if context.notes:
        result = result.model_copy(update={"notes": result.notes + context.notes})
    return result


# ---- helpers ---------------------------------------------------------------------------


def _label(store_id: int, observation: Observation) -> str:
    store = observation.store(store_id)
    if store is not None and store.address:
        return f"store {store_id} ({store.address})"
    return f"store {store_id}"


def _p99_ms(observation: Observation, store_id: int) -> float | None:
    if observation.metrics is None:
        return None
    p99 = observation.metrics.for_store(store_id).write_p99_seconds
    if p99 is None or math.isnan(p99):
        return None
    return p99 * 1000.0


def _used_ratio(observation: Observation, store: StoreInfo) -> float | None:
    if observation.metrics is not None:
        ratio = observation.metrics.for_store(store.id).disk_used_ratio
        if ratio is not None and math.isfinite(ratio):
            return ratio
    return store.used_ratio


def _up(store: StoreInfo | None) -> bool:
    return store is not None and store.state_name is StoreStateName.UP


def _heartbeat_age(store: StoreInfo, now: float) -> float | None:
    beat = store.last_heartbeat
    return None if beat is None else max(0.0, now - beat.timestamp())


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _ms(value: float) -> str:
    return "above the largest bucket" if math.isinf(value) else f"{value:.0f} ms"


def _span(values: Iterable[float]) -> str:
    """ "20 ms" or "18–25 ms"."""
    ordered = sorted(values)
    low, high = _ms(ordered[0]), _ms(ordered[-1])
    if low == high:
        return low
    return f"{low.removesuffix(' ms')}–{high}" if high.endswith(" ms") else f"{low}–{high}"


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids) or "none"


def _hot_peers(observation: Observation, store_id: int) -> list[HotPeerStat]:
    """The store's hot write leader peers, hottest first."""
    if observation.hot_write is None:
        return []
    stat = observation.hot_write.as_leader.get(store_id)
    if stat is None:
        return []
    return sorted(stat.statistics, key=lambda p: (-p.flow_bytes, p.region_id))


def _hot_counts(observation: Observation) -> dict[int, int]:
    if observation.hot_write is None:
        return {}
    return {
        sid: stat.regions_count or len(stat.statistics)
        for sid, stat in observation.hot_write.as_leader.items()
    }


def _suggest(action: str, params: Mapping[str, Any], reason: str) -> Suggestion:
    """A suggestion whose params went through the registry (a bug here fails loudly in tests)."""
    try:
        call = get_action(action).call(get_action(action).validate(params))
    except ActionError as exc:  # pragma: no cover - the rules only build valid params
        raise AssertionError(f"playbook built an invalid {action}: {exc}") from exc
    return Suggestion(action=call.action, params=dict(call.params), reason=reason)


def _max_store_down_seconds(context: PlaybookContext) -> tuple[float, bool]:
    """max-store-down-time in seconds, and whether it was read (else PD's default)."""
    if context.schedule is not None:
        return context.schedule.max_store_down_time.total_seconds(), True
    return DEFAULT_MAX_STORE_DOWN_MIN * 60.0, False


def _down_peer_regions(observation: Observation, store_id: int) -> int:
    """Regions whose down peer is on the store, from the observation's down-peer list."""
    down = observation.region_checks.get(RegionProblem.DOWN_PEER)
    return down.peer_stores.get(store_id, 0) if down else 0


Rule = Callable[[Problem, Observation, PlaybookContext, PlaybookLimits], PlaybookResult]


# ---- slow store ------------------------------------------------------------------------


def _slow_store(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    sid = problem.store_id
    store = obs.store(sid) if sid is not None else None
    if sid is None or store is None:
        return _missing_store("slow-store", DiagnosisKind.SLOW_STORE, problem, obs)
    label = _label(sid, obs)
    threshold = problem.threshold or 100.0
    p99 = problem.value if problem.value is not None else _p99_ms(obs, sid)
    evidence = []
    if p99 is not None:
        evidence.append(
            Fact(
                fact=f"write P99 on {label} is {_ms(p99)} (threshold {threshold:g} ms)",
                value=None if math.isinf(p99) else round(p99, 1),
                unit="ms",
                source="metrics",
            )
        )
    others = [s for s in obs.live_stores if s.id != sid and _up(s)]
    measured = {s.id: v for s in others if (v := _p99_ms(obs, s.id)) is not None}
    slow_others = sorted(i for i, v in measured.items() if v > threshold)
    if measured:
        shown = ", ".join(f"store {i}: {_ms(v)}" for i, v in sorted(measured.items()))
        evidence.append(Fact(fact=f"write P99 on the other Up stores: {shown}", source="metrics"))
    evidence.append(
        Fact(
            fact=f"{label} leads {store.leader_count:,} regions and holds "
            f"{store.region_count:,} replicas",
            value=float(store.leader_count),
            unit="leaders",
            source="pd:/stores",
        )
    )
    if store.status.slow_score > 1:
        evidence.append(
            Fact(
                fact=f"PD's slow score for store {sid} is {store.status.slow_score:g} "
                "(1 is healthy, 100 is the slowest)",
                value=store.status.slow_score,
                source="pd:/stores",
            )
        )
    hot = _hot_counts(obs)
    hot_total = sum(hot.values())
    hot_here = hot.get(sid, 0)
    hot_led = hot_total >= 2 and hot_here * 2 > hot_total
    if hot_total:
        evidence.append(
            Fact(
                fact=f"store {sid} leads {hot_here} of the {hot_total} hot write regions",
                value=float(hot_here),
                unit="regions",
                source="pd:/hotspot/regions/write",
            )
        )

    cluster_wide = bool(measured) and len(slow_others) >= max(
        1, math.ceil(limits.slow_cluster_share * len(measured))
    )
    causes = []
    if cluster_wide:
        causes.append(
            Cause(
                statement="The load on the whole cluster is too high for its disks or CPU "
                f"(stores {_ids([sid, *slow_others])} are all above {threshold:g} ms)",
                confidence=0.6,
            )
        )
    else:
        causes.append(
            Cause(
                statement=f"The disk or host of store {sid} is slow (I/O latency, a write "
                "stall, or a noisy neighbour): only this store is above the threshold",
                confidence=0.5 if hot_led else 0.7,
            )
        )
    if hot_led:
        causes.append(
            Cause(
                statement=f"Hot write regions are concentrated on store {sid} "
                f"({hot_here} of {hot_total}), so it serves more writes than the others",
                confidence=0.4,
            )
        )

    def result(
        summary: str, actions: tuple[Suggestion, ...] = (), conf: float = 0.6
    ) -> PlaybookResult:
        return PlaybookResult(
            playbook="slow-store",
            kind=DiagnosisKind.SLOW_STORE,
            summary=summary,
            causes=tuple(causes),
            evidence=tuple(evidence),
            confidence=conf,
            actions=actions,
        )

    headline = f"Writes on {label} are slow" + (f" (P99 {_ms(p99)})" if p99 is not None else "")
    if not _up(store):
        return result(
            f"{headline}, but the store is {store.state_name.value} now: nothing to move while "
            "it is not serving. Watch whether it comes back."
        )
    if cluster_wide:
        return result(
            f"{headline}, and so are stores {_ids(slow_others)}: the slowdown is cluster-wide, "
            "so draining one store would only push its load onto slow stores. Look at the "
            "workload and the cluster's capacity instead.",
            conf=0.5,
        )
    if store.leader_count == 0:
        return result(
            f"{headline}, but it leads no regions, so draining it would change nothing. Check "
            "the host's disk and the TiKV log for write stalls."
        )
    evicted = ctx.evicted_store_ids
    if evicted is None or ctx.max_replicas is None:
        return result(
            f"{headline}. Draining its leaders would relieve it, but PD's scheduler list or "
            "replication config could not be read to check that the rest of the cluster can "
            "take them; check with `tikvops check` and propose a drain by hand if it can.",
            conf=0.5,
        )
    if sid in evicted:
        return result(
            f"{headline}. It is already drained (under evict-leader-scheduler) and still leads "
            f"{store.leader_count:,} regions: PD is moving them away; watch the leader count "
            "fall.",
        )
    drained = [s for s in evicted if s != sid]
    if len(drained) >= limits.max_drained_stores:
        return result(
            f"{headline}. Store(s) {_ids(drained)} are already drained, and at most "
            f"{limits.max_drained_stores} may be drained at once, so draining store {sid} too "
            "is not proposed. Undrain the other store first if it has recovered.",
        )
    targets = sorted(s.id for s in others if s.id not in evicted)
    if len(targets) < ctx.max_replicas:
        return result(
            f"{headline}. A drain needs at least max-replicas ({ctx.max_replicas}) other Up "
            f"stores to take its leaders, and only {len(targets)} can ({_ids(targets)}), so "
            "none is proposed. Check the host's disk and the TiKV log for write stalls; add a "
            "store if this keeps happening.",
        )
    p99_text = f"write P99 is {_ms(p99)} (threshold {threshold:g} ms)" if p99 else "writes slow"
    others_text = (
        f" while the other Up stores are at {_span(measured.values())}" if measured else ""
    )
    reason = (
        f"Store {sid}'s {p99_text}{others_text}. Evicting its {store.leader_count:,} leaders "
        f"to stores {_ids(targets)} ({len(targets)} Up stores, max-replicas "
        f"{ctx.max_replicas}, no other store drained) takes client reads and writes off it; "
        "its data stays in place and undrain reverses it."
    )
    return result(
        f"{headline}{others_text}. Drain its leaders while the disk or host is investigated.",
        actions=(_suggest("drain", {"store_id": sid}, reason),),
        conf=0.5 if hot_led else 0.7,
    )


# ---- hot region ------------------------------------------------------------------------


def _hot_region(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    sid = problem.store_id
    if sid is None:
        return _unknown(problem, obs, ctx, limits)
    label = _label(sid, obs)
    hot = _hot_counts(obs)
    total = sum(hot.values())
    peers = _hot_peers(obs, sid)
    evidence = [
        Fact(
            fact=f"{label} leads {hot.get(sid, 0)} of the {total} hot write regions",
            value=float(hot.get(sid, 0)),
            unit="regions",
            source="pd:/hotspot/regions/write",
        )
    ]
    causes = [
        Cause(
            statement=f"The workload writes to a narrow key range whose regions are led by "
            f"store {sid} (e.g. a sequential key or a small, hot table)",
            confidence=0.6,
        )
    ]

    def result(
        summary: str, actions: tuple[Suggestion, ...] = (), conf: float = 0.6
    ) -> PlaybookResult:
        return PlaybookResult(
            playbook="hot-region",
            kind=DiagnosisKind.HOT_REGION,
            summary=summary,
            causes=tuple(causes),
            evidence=tuple(evidence),
            confidence=conf,
            actions=actions,
        )

    if not peers:
        return result(
            f"Hot writes are concentrated on {label}, but PD's hot-region list shows no region "
            "to act on now. PD's hot-region scheduler balances this on its own; watch it.",
            conf=0.4,
        )
    top = peers[0]
    stat = obs.hot_write.as_leader[sid] if obs.hot_write else None
    store_flow = (stat.total_flow_bytes if stat else 0.0) or sum(p.flow_bytes for p in peers)
    share = top.flow_bytes / store_flow if store_flow > 0 else 1.0
    evidence.append(
        Fact(
            fact=f"region {top.region_id} is the hottest: {_rate(top.flow_bytes)} written, "
            f"{share:.0%} of store {sid}'s hot write flow",
            value=round(top.flow_bytes, 1),
            unit="B/s",
            source="pd:/hotspot/regions/write",
        )
    )
    region = ctx.regions.get(top.region_id)
    if region is not None and region.leader_store_id not in (None, sid):
        return result(
            f"Region {top.region_id}, the hottest on {label}, is now led by store "
            f"{region.leader_store_id}: the hotspot is already moving. Watch it.",
            conf=0.5,
        )
    voters = region.voter_store_ids if region is not None else list(top.stores)
    unhealthy = set(region.down_store_ids) | set(region.pending_store_ids) if region else set()
    evicted = set(ctx.evicted_store_ids or ())
    candidates = [
        v
        for v in voters
        if v != sid and v not in unhealthy and v not in evicted and _up(obs.store(v))
    ]
    can_move = region is not None and ctx.evicted_store_ids is not None and bool(candidates)

    def load(store_id: int) -> tuple[int, int, int]:
        info = obs.store(store_id)
        return (hot.get(store_id, 0), info.leader_count if info else 0, store_id)

    if can_move and share < limits.hot_split_share:
        target = min(candidates, key=load)
        evidence.append(
            Fact(
                fact=f"store {target} holds a healthy voter of region {top.region_id} and leads "
                f"{hot.get(target, 0)} hot write regions",
                value=float(hot.get(target, 0)),
                unit="regions",
                source="pd:/region",
            )
        )
        reason = (
            f"Region {top.region_id} writes {_rate(top.flow_bytes)} ({share:.0%} of store "
            f"{sid}'s hot write flow). Store {target} holds a healthy voter of it and is the "
            f"least loaded candidate ({hot.get(target, 0)} hot write leaders vs "
            f"{hot.get(sid, 0)} on store {sid}); moving the leader spreads the writes without "
            "copying data, and can be moved back."
        )
        return result(
            f"Hot writes are concentrated on {label}. Move the leader of its hottest region, "
            f"{top.region_id}, to store {target}.",
            actions=(
                _suggest(
                    "transfer-leader", {"region_id": top.region_id, "to_store_id": target}, reason
                ),
            ),
        )
    if share >= limits.hot_split_share:
        why = (
            f"it alone carries {share:.0%} of store {sid}'s hot write flow, so moving its "
            "leader would only move the hotspot"
        )
    elif region is None or ctx.evicted_store_ids is None:
        why = "its peers or the drained stores could not be read to pick a leader target"
    else:
        why = "no other Up, undrained store holds a healthy voter of it to take the leader"
    reason = (
        f"Region {top.region_id} writes {_rate(top.flow_bytes)}; {why}. Splitting it in two "
        "lets PD's hot-region scheduler place the halves on different stores; no data moves "
        "between stores."
    )
    return result(
        f"Hot writes are concentrated on {label}. Split its hottest region, {top.region_id}.",
        actions=(_suggest("split", {"region_id": top.region_id}, reason),),
        conf=0.55,
    )


def _rate(bytes_per_s: float) -> str:
    if bytes_per_s >= 1024 * 1024:
        return f"{bytes_per_s / 1024 / 1024:.1f} MiB/s"
    if bytes_per_s >= 1024:
        return f"{bytes_per_s / 1024:.0f} KiB/s"
    return f"{bytes_per_s:.0f} B/s"


# ---- disk ------------------------------------------------------------------------------


def _disk(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    sid = problem.store_id
    store = obs.store(sid) if sid is not None else None
    if sid is None or store is None:
        return _missing_store("disk-full", DiagnosisKind.DISK_FULL, problem, obs)
    label = _label(sid, obs)
    ratio = problem.value if problem.value is not None else _used_ratio(obs, store)
    threshold = problem.threshold or 0.7
    low_space = ctx.schedule.low_space_ratio if ctx.schedule else DEFAULT_LOW_SPACE_RATIO
    evidence = []
    if ratio is not None:
        evidence.append(
            Fact(
                fact=f"disk on {label} is {ratio:.0%} used (threshold {threshold:.0%}, PD's "
                f"low-space-ratio {low_space:.0%})",
                value=round(ratio, 4),
                unit="ratio",
                source="metrics" if obs.metrics else "pd:/stores",
            )
        )
    if store.capacity_bytes:
        evidence.append(
            Fact(
                fact=f"store {sid}: {_gib(store.available_bytes)} free of "
                f"{_gib(store.capacity_bytes)}, {store.region_count:,} replicas",
                value=float(store.available_bytes),
                unit="bytes",
                source="pd:/stores",
            )
        )
    if store.status.receiving_snap_count:
        evidence.append(
            Fact(
                fact=f"store {sid} is receiving {store.status.receiving_snap_count} snapshots",
                value=float(store.status.receiving_snap_count),
                source="pd:/stores",
            )
        )
    causes = [
        Cause(
            statement=f"Data on store {sid} grew faster than the cluster rebalanced it (write "
            "volume, or replicas moved onto it)",
            confidence=0.5,
        )
    ]
    critical = ratio is not None and ratio >= low_space
    effect = (
        "PD treats it as low on space: it stops placing replicas there, and writes fail if "
        "the disk fills completely"
        if critical
        else "PD weighs its free space in region scores and moves regions away slowly"
    )

    def result(
        summary: str, actions: tuple[Suggestion, ...] = (), conf: float = 0.6
    ) -> PlaybookResult:
        return PlaybookResult(
            playbook="disk-full",
            kind=DiagnosisKind.DISK_FULL,
            summary=summary,
            causes=tuple(causes),
            evidence=tuple(evidence),
            confidence=conf,
            actions=actions,
        )

    used = f" is {ratio:.0%} full" if ratio is not None else " is filling"
    headline = f"Disk on {label}{used}; {effect}"
    advice = "Add capacity or free space (drop unused tables, check GC), or add a store."
    if store.status.receiving_snap_count:
        advice += " Data is still arriving: lowering region-schedule-limit slows the moves onto it."
    # Targets: Up stores other than the full one, with room, emptiest first.
    targets: list[tuple[float, int, StoreInfo]] = []
    for other in obs.live_stores:
        if other.id == sid or not _up(other):
            continue
        other_ratio = _used_ratio(obs, other)
        if other_ratio is None or other_ratio >= min(low_space, threshold):
            continue
        if ratio is not None and other_ratio >= ratio:
            continue
        targets.append((other_ratio, other.region_count, other))
    targets.sort(key=lambda t: (t[0], t[1], t[2].id))
    if not targets:
        return result(
            f"{headline}. No other Up store has room below the {threshold:.0%} threshold, so "
            f"moving data is not proposed. {advice}",
        )
    if ctx.largest_regions is None:
        return result(
            f"{headline}. The store's regions could not be read to pick one to move. {advice}",
            conf=0.5,
        )
    moves: list[Suggestion] = []
    unhealthy = covered = 0
    for region in ctx.largest_regions:
        if len(moves) >= limits.disk_moves:
            break
        if sid not in region.store_ids:
            continue
        if region.leader_store_id is None or region.down_peers or region.pending_peers:
            unhealthy += 1  # its other peers must be healthy: moving one would risk quorum
            continue
        free = [(r, t) for r, _, t in targets if t.id not in region.store_ids]
        if not free:
            covered += 1
            continue
        other_ratio, target = free[0]
        size = f"{region.approximate_size:,} MiB"
        used_now = f" is {ratio:.0%} used" if ratio is not None else " is filling"
        reason = (
            f"Store {sid}{used_now}; region {region.id} is among its largest ({size}, "
            f"{region.approximate_keys:,} keys) and all its peers (stores "
            f"{_ids(region.store_ids)}) are healthy. Store {target.id} is the emptiest Up "
            f"store without a peer of it ({other_ratio:.0%} used). Moving the peer frees about "
            f"{size} on store {sid}; it copies the region's data, and can be moved back."
        )
        params = {"region_id": region.id, "from_store_id": sid, "to_store_id": target.id}
        moves.append(_suggest("transfer-peer", params, reason))
    if not moves:
        room = _ids([t.id for _, _, t in targets])
        why = []
        if covered:
            why.append(f"{covered} already have a peer on every store with room ({room})")
        if unhealthy:
            why.append(f"{unhealthy} have a down or pending peer or no leader")
        detail = f" ({'; '.join(why)})" if why else ""
        return result(
            f"{headline}. None of its {len(ctx.largest_regions)} largest regions can be moved "
            f"safely now{detail}, so nothing is proposed. {advice}",
        )
    names = ", ".join(str(m.params["region_id"]) for m in moves)
    return result(
        f"{headline}. Move region {names} off it to free space while capacity is added.",
        actions=tuple(moves),
    )


def _gib(value: float) -> str:
    return f"{value / 1024**3:,.1f} GiB"


# ---- store down / disconnected ---------------------------------------------------------


def _store_down(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    sid = problem.store_id
    store = obs.store(sid) if sid is not None else None
    if sid is None or store is None:
        return _missing_store("store-down", DiagnosisKind.STORE_DOWN, problem, obs)
    label = _label(sid, obs)
    age = _heartbeat_age(store, obs.at)
    down_after, known = _max_store_down_seconds(ctx)
    down_regions = _down_peer_regions(obs, sid)
    evidence = []
    if age is not None:
        evidence.append(
            Fact(
                fact=f"{label} sent its last heartbeat {_duration(age)} ago",
                value=round(age, 1),
                unit="s",
                source="pd:/stores",
            )
        )
    evidence.append(
        Fact(
            fact=f"max-store-down-time is {_duration(down_after)}"
            + ("" if known else " (PD's default; the config could not be read)"),
            value=down_after,
            unit="s",
            source="pd:/config/schedule" if known else None,
        )
    )
    if down_regions:
        evidence.append(
            Fact(
                fact=f"{down_regions:,} regions report their peer on store {sid} as down",
                value=float(down_regions),
                unit="regions",
                source="pd:/regions/check/down-peer",
            )
        )
    miss = obs.region_checks.get(RegionProblem.MISS_PEER)
    if miss is not None and miss.count:
        evidence.append(
            Fact(
                fact=f"{miss.count:,} regions have fewer replicas than configured",
                value=float(miss.count),
                unit="regions",
                source="pd:/regions/check/miss-peer",
            )
        )
    down_check = obs.region_checks.get(RegionProblem.DOWN_PEER)
    lost = down_check.quorum_lost if down_check else ()
    summary = (
        f"{label} is Down: no heartbeat for {_duration(age) if age is not None else 'a while'}, "
        f"past max-store-down-time ({_duration(down_after)}). Its "
        f"{down_regions or store.region_count:,} replicas count as down; the other replicas "
        "of each region keep serving (Raft elected new leaders within seconds), and PD's "
        "replica checker is re-creating the lost replicas on the remaining stores, at the "
        "pace of replica-schedule-limit. Nothing to approve: bring the store back if the host "
        "can be repaired, or take it offline deliberately once it is gone for good."
    )
    if lost:
        summary += (
            f" {len(lost)} region(s) lost a majority of their voters and cannot serve writes "
            f"(e.g. {_ids(lost[:5])}); PD cannot repair those alone: restore the stores, or "
            "use unsafe recovery as a last resort."
        )
    causes = [
        Cause(
            statement=f"The TiKV process on store {sid} stopped, or its host or network failed",
            confidence=0.8,
        )
    ]
    return PlaybookResult(
        playbook="store-down",
        kind=DiagnosisKind.STORE_DOWN,
        summary=summary,
        causes=tuple(causes),
        evidence=tuple(evidence),
        confidence=0.85,
    )


def _store_disconnected(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    sid = problem.store_id
    store = obs.store(sid) if sid is not None else None
    if sid is None or store is None:
        return _missing_store("store-disconnected", DiagnosisKind.STORE_DISCONNECTED, problem, obs)
    label = _label(sid, obs)
    age = _heartbeat_age(store, obs.at)
    down_after, known = _max_store_down_seconds(ctx)
    evidence = []
    if age is not None:
        evidence.append(
            Fact(
                fact=f"{label} sent its last heartbeat {_duration(age)} ago",
                value=round(age, 1),
                unit="s",
                source="pd:/stores",
            )
        )
    left = max(0.0, down_after - age) if age is not None else None
    evidence.append(
        Fact(
            fact=f"max-store-down-time is {_duration(down_after)}"
            + ("" if known else " (PD's default; the config could not be read)"),
            value=down_after,
            unit="s",
            source="pd:/config/schedule" if known else None,
        )
    )
    when = f" in about {_duration(left)}" if left is not None else " after max-store-down-time"
    summary = (
        f"{label} is Disconnected: PD has had no heartbeat from it for "
        f"{_duration(age) if age is not None else 'a short while'}. This is often a restart "
        "or a network blip. Regions it led elect new leaders on other stores within seconds; "
        f"PD only starts replacing its replicas once it is Down{when}. Wait and watch: check "
        "the TiKV process, its host and the network to PD. No action is proposed."
    )
    return PlaybookResult(
        playbook="store-disconnected",
        kind=DiagnosisKind.STORE_DISCONNECTED,
        summary=summary,
        causes=(
            Cause(
                statement=f"The TiKV process on store {sid} is restarting, overloaded, or cut "
                "off from PD by the network",
                confidence=0.6,
            ),
        ),
        evidence=tuple(evidence),
        confidence=0.7,
    )


def _missing_store(
    playbook: str, kind: DiagnosisKind, problem: Problem, obs: Observation
) -> PlaybookResult:
    which = f"store {problem.store_id}" if problem.store_id else "the store"
    return PlaybookResult(
        playbook=playbook,
        kind=kind,
        summary=f"PD no longer lists {which} (it may have been removed), so there is nothing "
        "to act on. Check the store list with `tikvops check`.",
        confidence=0.3,
    )


# ---- unhealthy regions -----------------------------------------------------------------


_REGION_PROBLEMS: Mapping[str, RegionProblem] = {
    ViolationKind.REGION_DOWN_PEER.value: RegionProblem.DOWN_PEER,
    ViolationKind.REGION_PENDING_PEER.value: RegionProblem.PENDING_PEER,
    ViolationKind.REGION_MISS_PEER.value: RegionProblem.MISS_PEER,
    ViolationKind.REGION_EXTRA_PEER.value: RegionProblem.EXTRA_PEER,
}

_REGION_WORDING: Mapping[RegionProblem, str] = {
    RegionProblem.DOWN_PEER: "a down peer",
    RegionProblem.PENDING_PEER: "a pending peer",
    RegionProblem.MISS_PEER: "fewer replicas than configured",
    RegionProblem.EXTRA_PEER: "more replicas than configured",
}

_REPAIR: Mapping[RegionProblem, str] = {
    RegionProblem.DOWN_PEER: "A down peer stops counting once its store has been Down for "
    "max-store-down-time ({down}); PD's replica checker then adds a new replica on a healthy "
    "store and removes the down one, at the pace of replica-schedule-limit ({replica}).",
    RegionProblem.PENDING_PEER: "A pending peer is behind on the Raft log; it usually catches "
    "up by itself once its store has I/O to spare, or receives a snapshot.",
    RegionProblem.MISS_PEER: "PD's replica checker adds the missing replicas on healthy stores "
    "with room, at the pace of replica-schedule-limit ({replica}); it needs enough Up stores "
    "for max-replicas.",
    RegionProblem.EXTRA_PEER: "PD's replica checker removes the extra replicas; this is normal "
    "for a short while after a peer move or a store coming back.",
}


def _regions(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    region_problem = _REGION_PROBLEMS[problem.kind]
    check = obs.region_checks.get(region_problem)
    count = check.count if check else int(problem.value or 0)
    sample = check.region_ids[:10] if check else problem.region_ids[:10]
    noun = "region has" if count == 1 else "regions have"
    evidence = [
        Fact(
            fact=f"{count:,} {noun} {_REGION_WORDING[region_problem]} (e.g. {_ids(sample)})",
            value=float(count),
            unit="regions",
            source=f"pd:/regions/check/{region_problem.value}",
        )
    ]
    causes: list[Cause] = []
    if check and check.peer_stores:
        worst, n = max(check.peer_stores.items(), key=lambda kv: (kv[1], -kv[0]))
        where = ", ".join(f"store {s}: {k}" for s, k in sorted(check.peer_stores.items()))
        evidence.append(Fact(fact=f"those peers are on {where}", source="pd:/regions/check"))
        worst_store = obs.store(worst)
        state = worst_store.state_name.value if worst_store else "not listed"
        causes.append(
            Cause(
                statement=f"Store {worst} ({state}) holds {n} of them: its failure or slowness "
                "is the likely cause",
                confidence=0.7 if state != "Up" else 0.5,
            )
        )
    bad_stores = [s.id for s in obs.live_stores if not _up(s)]
    if bad_stores and not causes:
        causes.append(
            Cause(
                statement=f"Stores {_ids(bad_stores)} are not Up, which leaves their regions "
                "short of replicas",
                confidence=0.6,
            )
        )
    down_after, _ = _max_store_down_seconds(ctx)
    replica = str(ctx.schedule.replica_schedule_limit) if ctx.schedule else "64 by default"
    repair = _REPAIR[region_problem].format(down=_duration(down_after), replica=replica)
    lost = check.quorum_lost if check else ()
    summary = f"{count:,} {noun} {_REGION_WORDING[region_problem]}. {repair}"
    if lost:
        summary += (
            f" {len(lost)} of them lost a majority of their voters and cannot serve writes "
            f"(e.g. {_ids(lost[:5])}): PD cannot repair those alone; restore their stores."
        )
    summary += " No action is proposed: PD repairs this itself; watch the count fall."
    return PlaybookResult(
        playbook="unhealthy-regions",
        kind=DiagnosisKind.UNHEALTHY_REGIONS,
        summary=summary,
        causes=tuple(causes),
        evidence=tuple(evidence),
        confidence=0.6,
    )


# ---- PD, metrics, unknown --------------------------------------------------------------


def _pd_unreachable(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    error = obs.pd_error or "no answer"
    return PlaybookResult(
        playbook="pd-unreachable",
        kind=DiagnosisKind.PD_UNREACHABLE,
        summary=(
            f"PD at {obs.pd_url} cannot be reached ({error}). Until it answers, stores and "
            "regions cannot be checked and no action can be taken. TiKV keeps serving reads and "
            "writes for regions whose leaders are known to clients, but nothing is scheduled "
            "or repaired. Check the PD processes (`pd-ctl health`, `pd-ctl member`) and the "
            "network from the bot to PD."
        ),
        causes=(
            Cause(
                statement="PD's processes are down or have no leader (lost quorum, disk full, "
                "restart)",
                confidence=0.5,
            ),
            Cause(
                statement="The network path or address from the bot to PD is wrong or broken",
                confidence=0.4,
            ),
        ),
        evidence=(Fact(fact=f"GET /pd/api/v1/stores failed: {error}", source="pd"),),
        confidence=0.6,
    )


def _metrics_gap(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    error = obs.metrics_error
    if problem.store_id is not None and obs.metrics is not None:
        error = obs.metrics.for_store(problem.store_id).error or error
    where = f"store {problem.store_id}" if problem.store_id is not None else "the stores"
    return PlaybookResult(
        playbook="metrics-gap",
        kind=DiagnosisKind.METRICS_GAP,
        summary=(
            f"Metrics for {where} cannot be read from {obs.metrics_source or 'the source'}"
            f"{f' ({error})' if error else ''}. PD still reports the stores, so the cluster may "
            "be fine, but write latency is not being watched. Check the metrics source and that "
            "the `instance` label matches each TiKV's status address."
        ),
        causes=(
            Cause(
                statement="The metrics source (Prometheus or a TiKV status port) is down or "
                "misconfigured",
                confidence=0.6,
            ),
        ),
        evidence=(Fact(fact=f"metrics error: {error or 'no series'}", source="metrics"),),
        confidence=0.5,
    )


def _unknown(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    return PlaybookResult(
        playbook="generic",
        kind=DiagnosisKind.UNKNOWN,
        summary=(
            f"No playbook covers '{problem.kind}'. "
            + (f"{problem.title} " if problem.title else "")
            + "No action is proposed; look at the incident's details."
        ),
        confidence=0.2,
    )


_RULES: Mapping[str, Rule] = {
    ViolationKind.WRITE_LATENCY.value: _slow_store,
    ViolationKind.HOT_WRITE_SKEW.value: _hot_region,
    ViolationKind.DISK_USAGE.value: _disk,
    ViolationKind.STORE_DOWN.value: _store_down,
    ViolationKind.STORE_DISCONNECTED.value: _store_disconnected,
    ViolationKind.REGION_DOWN_PEER.value: _regions,
    ViolationKind.REGION_PENDING_PEER.value: _regions,
    ViolationKind.REGION_MISS_PEER.value: _regions,
    ViolationKind.REGION_EXTRA_PEER.value: _regions,
    ViolationKind.PD_UNREACHABLE.value: _pd_unreachable,
    ViolationKind.METRICS_UNAVAILABLE.value: _metrics_gap,
    ViolationKind.STORE_METRICS_MISSING.value: _metrics_gap,
}

__all__ = [
    "KIND_MEANINGS",
    "MAX_GATHER_REQUESTS",
    "PLAYBOOKS_VERSION",
    "Cause",
    "DiagnosisKind",
    "Fact",
    "PlaybookContext",
    "PlaybookLimits",
    "PlaybookPD",
    "PlaybookResult",
    "Problem",
    "Suggestion",
    "diagnose",
    "gather",
    "run",
]
