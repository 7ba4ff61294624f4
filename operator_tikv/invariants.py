"""Invariants: pure functions of one observation plus remembered first-seen times.

`evaluate(observation, thresholds, memory)` returns the violations (conditions that hold and
have lasted their grace period), the pending ones (holding, grace not yet over), and the new
memory to pass to the next call. No clock is read: "now" is `observation.at`.

The kinds, their subjects and severities are listed in `operator_tikv.violations`.

Unhealthy regions give one violation per kind (not per region): PD's count, the stores that
hold the down or pending peers, and up to `region_sample_size` example ids with "and N more"
(the examples and the store breakdown come from the last list read, which may be older than
the count: the message then says when it was listed). During a store
failure thousands of regions are affected at once, and one incident per region would bury
the cause; the sample gives ids to look at, and the store breakdown points at the cause.

"No data" is never "healthy": when a condition cannot be checked (PD unreachable, a failed
scrape, no writes in the window, a failed region list), its remembered state is kept as is
(a pending timer keeps running from its first-seen time; an active violation is reported
again with `stale=True`). A condition clears only when fresh data shows it cleared, or when
its store leaves PD's list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from operator_tikv.metrics import StoreMetrics
from operator_tikv.models.store import StoreInfo, StoreStateName
from operator_tikv.observation import Observation, RegionCheck, RegionProblem
from operator_tikv.violations import (
    Evaluation,
    InvariantMemory,
    Remembered,
    Severity,
    Thresholds,
    Violation,
    ViolationKind,
)

__all__ = [
    "Evaluation",
    "InvariantMemory",
    "Remembered",
    "Severity",
    "Thresholds",
    "Violation",
    "ViolationKind",
    "evaluate",
]

REGION_KINDS: Mapping[RegionProblem, ViolationKind] = {
    RegionProblem.DOWN_PEER: ViolationKind.REGION_DOWN_PEER,
    RegionProblem.PENDING_PEER: ViolationKind.REGION_PENDING_PEER,
    RegionProblem.MISS_PEER: ViolationKind.REGION_MISS_PEER,
    RegionProblem.EXTRA_PEER: ViolationKind.REGION_EXTRA_PEER,
}

_REGION_WORDING: Mapping[RegionProblem, str] = {
    RegionProblem.DOWN_PEER: "a down peer",
    RegionProblem.PENDING_PEER: "a pending peer",
    RegionProblem.MISS_PEER: "fewer replicas than configured",
    RegionProblem.EXTRA_PEER: "more replicas than configured",
}


@dataclass(frozen=True)
class _Finding:
    violation: Violation  # first_seen is filled in by evaluate()
    grace: float


@dataclass
class _Checks:
    findings: list[_Finding]
    unknown: set[str]  # keys, or "kind/*", whose condition could not be checked

    def add(self, violation: Violation, grace: float = 0.0) -> None:
        self.findings.append(_Finding(violation, grace))

    def unknown_key(self, kind: ViolationKind, subject: str) -> None:
        self.unknown.add(f"{kind.value}/{subject}")

    def unknown_kind(self, kind: ViolationKind) -> None:
        self.unknown.add(f"{kind.value}/*")

    def is_unknown(self, key: str) -> bool:
        kind = key.split("/", 1)[0]
        return "*" in self.unknown or key in self.unknown or f"{kind}/*" in self.unknown


def evaluate(
    observation: Observation,
    thresholds: Thresholds,
    memory: InvariantMemory | None = None,
    *,
    ignore_grace: bool = False,
) -> Evaluation:
    """Check every invariant. With `ignore_grace`, a holding condition is a violation at once
    (one-shot checks, where no grace period can elapse)."""
    memory = memory or InvariantMemory()
    now = observation.at
    checks = _Checks(findings=[], unknown=set())
    _check_pd(observation, checks)
    if observation.pd_reachable:
        _check_metrics_source(observation, checks)
        for store in observation.live_stores:
            _check_store(observation, store, thresholds, checks)
        _check_regions(observation, thresholds, checks)
        _check_hot_writes(observation, thresholds, checks)
    live_subjects = {f"store:{s.id}" for s in observation.live_stores}

    violations: list[Violation] = []
    pending: list[Violation] = []
    entries: dict[str, Remembered] = {}
    for finding in checks.findings:
        key = finding.violation.key
        previous = memory.entries.get(key)
        first_seen = previous.first_seen if previous else now
        violation = finding.violation.model_copy(update={"first_seen": first_seen})
        active = ignore_grace or now - first_seen >= finding.grace
        (violations if active else pending).append(violation)
        entries[key] = Remembered(first_seen=first_seen, last=violation, active=active)
    for key, entry in memory.entries.items():
        if key in entries or not checks.is_unknown(key):
            continue
        subject = entry.last.subject
        if (
            observation.pd_reachable
            and subject.startswith("store:")
            and (subject not in live_subjects)
        ):
            continue  # the store left the cluster: nothing left to watch
        stale = entry.last.model_copy(update={"stale": True})
        entries[key] = entry.model_copy(update={"last": stale})
        (violations if entry.active else pending).append(stale)
    return Evaluation(
        violations=tuple(sorted(violations, key=_order)),
        pending=tuple(sorted(pending, key=_order)),
        memory=InvariantMemory(entries=entries),
    )


def _order(v: Violation) -> tuple[int, str, int, int]:
    return (
        0 if v.severity is Severity.CRITICAL else 1,
        v.kind.value,
        v.store_id if v.store_id is not None else -1,
        v.region_id if v.region_id is not None else -1,
    )


def _check_pd(observation: Observation, checks: _Checks) -> None:
    if observation.pd_reachable:
        return
    checks.unknown.add("*")  # nothing about stores or regions can be checked
    checks.add(
        Violation(
            kind=ViolationKind.PD_UNREACHABLE,
            severity=Severity.CRITICAL,
            first_seen=observation.at,
            message=(
                f"PD at {observation.pd_url} is unreachable, so stores and regions cannot be "
                f"checked: {observation.pd_error} Check PD's processes and the network path "
                "from the bot (pd-ctl health)."
            ),
        )
    )


def _check_metrics_source(observation: Observation, checks: _Checks) -> None:
    if observation.metrics_error is None:
        if observation.metrics is None:
            checks.unknown_kind(ViolationKind.WRITE_LATENCY)
        return
    checks.unknown_kind(ViolationKind.WRITE_LATENCY)
    checks.unknown_kind(ViolationKind.STORE_METRICS_MISSING)
    checks.add(
        Violation(
            kind=ViolationKind.METRICS_UNAVAILABLE,
            severity=Severity.WARNING,
            first_seen=observation.at,
            message=(
                f"Store metrics could not be read from {observation.metrics_source}: "
                f"{observation.metrics_error} Write latency is not being watched; disk usage "
                "falls back to PD's figures. Check the metrics source."
            ),
        )
    )


def _label(store: StoreInfo, *, start: bool = False) -> str:
    word = "Store" if start else "store"
    return f"{word} {store.id} ({store.address})" if store.address else f"{word} {store.id}"


def _heartbeat_age(store: StoreInfo, now: float) -> float | None:
    beat: datetime | None = store.last_heartbeat
    if beat is None:
        return None
    age = now - beat.timestamp()
    return age if age > 0 else None  # a heartbeat "from the future" is clock skew: say nothing


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _check_store(
    observation: Observation, store: StoreInfo, t: Thresholds, checks: _Checks
) -> None:
    now = observation.at
    subject = f"store:{store.id}"
    age = _heartbeat_age(store, now)
    since = f" for {_duration(age)}" if age is not None else ""
    if store.state_name is StoreStateName.DOWN:
        checks.add(
            Violation(
                kind=ViolationKind.STORE_DOWN,
                severity=Severity.CRITICAL,
                store_id=store.id,
                value=age,
                unit="s",
                first_seen=now,
                message=(
                    f"{_label(store, start=True)} is Down: no heartbeat to PD{since}, past "
                    "max-store-down-time. PD is re-creating its replicas on other stores. "
                    "Check the TiKV process and its host; if it is gone for good, take the "
                    "store offline."
                ),
            )
        )
    elif store.state_name is StoreStateName.DISCONNECTED:
        checks.add(
            Violation(
                kind=ViolationKind.STORE_DISCONNECTED,
                severity=Severity.WARNING,
                store_id=store.id,
                value=age,
                unit="s",
                first_seen=now,
                message=(
                    f"{_label(store, start=True)} is Disconnected: no heartbeat to PD{since}. "
                    "It becomes Down after max-store-down-time (30 min by default). Check the "
                    "TiKV process, its host and the network to PD."
                ),
            ),
            t.disconnected_grace,
        )

    metrics = _store_metrics(observation, store.id)
    if metrics is not None and store.state_name is StoreStateName.UP and not metrics.has_data:
        hint = ""
        if observation.metrics and observation.metrics.unmatched_instances:
            names = ", ".join(observation.metrics.unmatched_instances[:5])
            hint = (
                f" Series exist for instances that match no PD store ({names}): the "
                "`instance` label should be the store's status address."
            )
        checks.add(
            Violation(
                kind=ViolationKind.STORE_METRICS_MISSING,
                severity=Severity.WARNING,
                store_id=store.id,
                first_seen=now,
                message=(
                    f"PD reports {_label(store)} Up, but its metrics could not be read: "
                    f"{metrics.error or 'no series'}. Its write latency and disk usage are not "
                    f"being watched.{hint}"
                ),
            )
        )

    _check_latency(store, metrics=metrics, t=t, checks=checks, now=now, subject=subject)
    _check_disk(store, metrics=metrics, t=t, checks=checks, now=now, subject=subject)


def _store_metrics(observation: Observation, store_id: int) -> StoreMetrics | None:
    if observation.metrics is None:
        return None
    return observation.metrics.for_store(store_id)


def _check_latency(
    store: StoreInfo,
    *,
    metrics: StoreMetrics | None,
    t: Thresholds,
    checks: _Checks,
    now: float,
    subject: str,
) -> None:
    p99 = metrics.write_p99_seconds if metrics else None
    if metrics is not None and metrics.up and metrics.write_idle and p99 is None:
        return  # fresh data, no writes served (e.g. drained of leaders): nothing is slow
    if p99 is None or math.isnan(p99):
        checks.unknown_key(ViolationKind.WRITE_LATENCY, subject)
        return
    p99_ms = p99 * 1000.0
    if p99_ms <= t.write_p99_ms:
        return
    shown = "above the largest bucket" if math.isinf(p99_ms) else f"{p99_ms:.0f} ms"
    checks.add(
        Violation(
            kind=ViolationKind.WRITE_LATENCY,
            severity=Severity.WARNING,
            store_id=store.id,
            value=p99_ms,
            threshold=t.write_p99_ms,
            unit="ms",
            first_seen=now,
            message=(
                f"Write latency P99 on {_label(store)} is {shown}, over the "
                f"{t.write_p99_ms:g} ms threshold. Look for a slow disk, a write stall or a hot "
                "region on this store; moving its leaders away relieves it."
            ),
        ),
        t.write_p99_grace,
    )


def _check_disk(
    store: StoreInfo,
    *,
    metrics: StoreMetrics | None,
    t: Thresholds,
    checks: _Checks,
    now: float,
    subject: str,
) -> None:
    ratio = metrics.disk_used_ratio if metrics else None
    source = "TiKV's metrics"
    if ratio is None:
        ratio = store.used_ratio
        source = "PD's store status"
    if ratio is None:
        checks.unknown_key(ViolationKind.DISK_USAGE, subject)
        return
    if ratio <= t.disk_used_ratio:
        return
    critical = ratio >= t.disk_critical_ratio
    consequence = (
        "PD treats the store as low on space and stops moving regions to it."
        if critical
        else "PD starts weighing its space in region scores."
    )
    checks.add(
        Violation(
            kind=ViolationKind.DISK_USAGE,
            severity=Severity.CRITICAL if critical else Severity.WARNING,
            store_id=store.id,
            value=ratio,
            threshold=t.disk_used_ratio,
            unit="ratio",
            first_seen=now,
            message=(
                f"Disk on {_label(store)} is {ratio:.0%} used (from {source}), over the "
                f"{t.disk_used_ratio:.0%} threshold. {consequence} Free space, add capacity, "
                "or move regions off the store."
            ),
        ),
        t.disk_grace,
    )


def _check_regions(observation: Observation, t: Thresholds, checks: _Checks) -> None:
    for problem, kind in REGION_KINDS.items():
        check = observation.region_checks.get(problem)
        if check is None:
            checks.unknown_key(kind, "cluster")
            continue
        if check.count < t.region_min_count:
            continue
        checks.add(_region_violation(observation, check, kind, t), t.region_health_grace)


def _ago(seconds: float) -> str:
    return "just now" if seconds < 1 else f"{_duration(seconds)} ago"


def _region_violation(
    observation: Observation, check: RegionCheck, kind: ViolationKind, t: Thresholds
) -> Violation:
    sample = check.region_ids[: t.region_sample_size]
    noun = "region has" if check.count == 1 else "regions have"
    head = f"{check.count:,} {noun} {_REGION_WORDING[check.problem]}"
    if sample:
        shown = ", ".join(str(r) for r in sample)
        more = check.count - len(sample)
        if more > 0:
            shown += f" and {more:,} more"
        parts = [f"{head} (e.g. {shown})."]
    else:
        parts = [f"{head}."]
    if check.peer_stores:
        where = ", ".join(
            f"store {store_id} ({n:,})"
            for store_id, n in sorted(check.peer_stores.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        if check.listed_count == check.count:
            parts.append(f"Those peers are on {where}.")
        else:
            parts.append(
                f"When last listed ({_ago(check.listed_age)}, {check.listed_count:,} regions), "
                f"those peers were on {where}."
            )
    severity = Severity.WARNING
    if check.quorum_lost_count:
        severity = Severity.CRITICAL
        lost = ", ".join(str(r) for r in check.quorum_lost[: t.region_sample_size])
        if check.quorum_lost_count > len(check.quorum_lost[: t.region_sample_size]):
            lost += ", ..."
        parts.append(
            f"{check.quorum_lost_count:,} of them lost a majority of their voters and cannot "
            f"serve writes (e.g. {lost})."
        )
    if check.note:
        parts.append(check.note)
    parts.append(
        f"See them with `pd-ctl region check {check.problem.value}` "
        f"(GET /pd/api/v1/regions/check/{check.problem.value})."
    )
    return Violation(
        kind=kind,
        severity=severity,
        value=float(check.count),
        threshold=float(t.region_min_count),
        unit="regions",
        first_seen=observation.at,
        message=" ".join(parts),
        region_ids=sample,
        peer_stores=dict(check.peer_stores),
        quorum_lost=check.quorum_lost[: t.region_sample_size],
        quorum_lost_count=check.quorum_lost_count,
    )


def _hot_counts(observation: Observation) -> dict[int, int] | None:
    if observation.hot_write is None:
        return None
    counts: dict[int, int] = {}
    for store_id, stat in observation.hot_write.as_leader.items():
        n = stat.regions_count or len(stat.statistics)
        if n > 0:
            counts[store_id] = n
    return counts


def _check_hot_writes(observation: Observation, t: Thresholds, checks: _Checks) -> None:
    counts = _hot_counts(observation)
    if counts is None:
        checks.unknown_kind(ViolationKind.HOT_WRITE_SKEW)
        return
    total = sum(counts.values())
    up_stores = [s for s in observation.live_stores if s.state_name is StoreStateName.UP]
    if total < t.hot_write_min_regions or len(up_stores) < 2:
        return
    for store_id, n in sorted(counts.items()):
        share = n / total
        if share <= t.hot_write_share:
            continue
        store = observation.store(store_id)
        label = _label(store, start=True) if store else f"Store {store_id}"
        checks.add(
            Violation(
                kind=ViolationKind.HOT_WRITE_SKEW,
                severity=Severity.WARNING,
                store_id=store_id,
                value=share,
                threshold=t.hot_write_share,
                unit="share",
                first_seen=observation.at,
                message=(
                    f"{label} leads {n} of the {total} hot write regions ({share:.0%}, "
                    f"threshold {t.hot_write_share:.0%}). Its writes are concentrated: "
                    "transfer some hot leaders to other stores or split the hottest region."
                ),
                region_ids=_hot_regions(observation, store_id, t.region_sample_size),
            )
        )


def _hot_regions(observation: Observation, store_id: int, limit: int) -> tuple[int, ...]:
    if observation.hot_write is None:
        return ()
    stat = observation.hot_write.as_leader.get(store_id)
    if stat is None:
        return ()
    peers = sorted(stat.statistics, key=lambda p: p.flow_bytes, reverse=True)
    return tuple(p.region_id for p in peers[:limit])
