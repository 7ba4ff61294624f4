"""`tikvops check`: observe the cluster once, check every invariant, print a report.

Exit codes: 0 no violations, 1 violations (PD unreachable is one), 2 could not run (bad
arguments or configuration). The report is a table of stores then the violations, or with
`--json` one object `{"pd_url", "metrics_source", "checked_at", "stores": [...],
"violations": [...], "notes": [...]}`; non-finite numbers (a P99 above every bucket) are
written as `null`, the message says what they were.

One shot, so no grace period can elapse: every condition that holds is reported as a
violation at once (a write P99 over the threshold included), and the report says so. Without
`--prometheus`, metrics are scraped from each TiKV's status address; a write P99 needs two
scrapes, so the check scrapes once, waits `--window` seconds, and observes (`--window 0`
skips the P99).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import textwrap
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from operator_tikv.errors import PDError
from operator_tikv.invariants import Evaluation, Violation, evaluate
from operator_tikv.metrics import MetricsSource, StoreMetrics
from operator_tikv.models.store import StoreInfo
from operator_tikv.observation import Observation, observe, targets_of
from operator_tikv.pd import PDClient
from operator_tikv.scrape import ScrapeSource
from operator_tikv.tls import TLSFileError
from tikvops.cluster_settings import chosen_cluster
from tikvops.commands import argtypes
from tikvops.settings import ConfigError, Settings, load_settings
from tikvops.wiring import open_metrics_source, open_pd, thresholds_from_settings

DEFAULT_PD_URL = "http://127.0.0.1:2379"
DEFAULT_WINDOW = 3.0


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="observe the cluster once and report invariant violations",
        description=(
            "Read PD and the store metrics once, check every invariant, and print the stores "
            "and the violations. Exit 0 when all hold, 1 on violations, 2 when the check "
            "could not run."
        ),
    )
    parser.add_argument("--pd", metavar="URL", help=f"PD's HTTP address (default {DEFAULT_PD_URL})")
    parser.add_argument(
        "--prometheus", metavar="URL", help="Prometheus base URL (default: scrape each TiKV)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        help="the cluster to check, when the configuration has several ([clusters.NAME])",
    )
    parser.add_argument(
        "--window",
        type=argtypes.seconds,
        default=DEFAULT_WINDOW,
        metavar="SECONDS",
        help=(
            "without Prometheus: seconds between the two scrapes the write P99 is computed "
            f"from (default {DEFAULT_WINDOW:g}; 0 skips the P99)"
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    given = {"pd_url": args.pd, "prometheus_url": args.prometheus}
    loaded = load_settings(config_file=args.config, env_file=args.env_file, **given)
    # the chosen cluster's own settings ([clusters.NAME] over the global ones), with this
    # command's --pd and --prometheus over them: its PD client and metrics source; several
    # clusters and no --cluster, or an unknown name: ConfigError (exit 2), listing them
    settings = chosen_cluster(loaded, args.cluster, command="check", **given).settings
    try:
        observation, evaluation = asyncio.run(check(settings, window=args.window))
    except (TLSFileError, ConfigError) as exc:
        print(f"tikvops check: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(report_json(observation, evaluation), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_table(observation, evaluation, settings, sys.stdout)
    if not observation.pd_reachable:
        print(f"tikvops check: PD unreachable: {observation.pd_error}", file=sys.stderr)
    return 1 if evaluation.violations else 0


async def check(
    settings: Settings, *, window: float = DEFAULT_WINDOW
) -> tuple[Observation, Evaluation]:
    """One observation and its evaluation, ignoring grace periods, with the PD client and the
    metrics source of `tikvops.wiring`. Raises `ConfigError` when the TLS settings' files
    cannot be used."""
    pd_url = settings.pd_url or DEFAULT_PD_URL
    async with (
        open_pd(settings, pd_url=pd_url) as pd,
        open_metrics_source(settings) as source,
    ):
        return await _observe(settings, pd, source, pd_url, window)


async def _observe(
    settings: Settings, pd: PDClient, source: MetricsSource, pd_url: str, window: float
) -> tuple[Observation, Evaluation]:
    if isinstance(source, ScrapeSource) and window > 0:
        await _prime(pd, source, window)
    observation = await observe(pd, source, at=time.time(), pd_url=pd_url)
    return observation, evaluate(observation, thresholds_from_settings(settings), ignore_grace=True)


async def _prime(pd: PDClient, scrape: ScrapeSource, window: float) -> None:
    """First scrape of every store, so the observation's scrape yields a P99."""
    try:
        stores = await pd.list_stores()
    except PDError:
        return  # the observation will record PD as unreachable
    await scrape.read(targets_of(stores), time.time())
    await asyncio.sleep(window)


# ---------------------------------------------------------------- report


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _store_metrics(observation: Observation, store: StoreInfo) -> StoreMetrics | None:
    return observation.metrics.for_store(store.id) if observation.metrics else None


def _disk(observation: Observation, store: StoreInfo) -> tuple[float | None, str | None]:
    metrics = _store_metrics(observation, store)
    if metrics is not None and metrics.disk_used_ratio is not None:
        return metrics.disk_used_ratio, "metrics"
    if store.used_ratio is not None:
        return store.used_ratio, "pd"
    return None, None


def _p99_ms(observation: Observation, store: StoreInfo) -> float | None:
    metrics = _store_metrics(observation, store)
    if metrics is None or metrics.write_p99_seconds is None:
        return None
    return metrics.write_p99_seconds * 1000.0


def store_rows(observation: Observation) -> list[dict[str, Any]]:
    rows = []
    for store in sorted(observation.stores, key=lambda s: s.id):
        ratio, source = _disk(observation, store)
        metrics = _store_metrics(observation, store)
        rows.append(
            {
                "id": store.id,
                "address": store.address,
                "status_address": store.status_address,
                "state": store.state_name.value,
                "leaders": store.leader_count,
                "regions": store.region_count,
                "disk_used_ratio": _finite(ratio),
                "disk_source": source,
                "write_p99_ms": _finite(_p99_ms(observation, store)),
                "write_idle": bool(metrics and metrics.write_idle),
                "metrics_error": metrics.error if metrics else None,
            }
        )
    return rows


def violation_json(violation: Violation) -> dict[str, Any]:
    return {
        "kind": violation.kind.value,
        "severity": violation.severity.value,
        "store_id": violation.store_id,
        "region_id": violation.region_id,
        "value": _finite(violation.value),
        "threshold": _finite(violation.threshold),
        "unit": violation.unit,
        "region_ids": list(violation.region_ids),
        "first_seen": violation.first_seen,
        "message": violation.message,
    }


def notes(observation: Observation, evaluation: Evaluation) -> list[str]:
    lines = []
    if any(v.kind.value == "write_latency" for v in evaluation.violations):
        lines.append(
            "Write latency is reported without waiting for its grace period: a one-shot "
            "check cannot tell a lasting slowdown from a spike."
        )
    for problem, error in sorted(observation.region_check_errors.items()):
        lines.append(f"Regions with {problem.value} could not be listed: {error}")
    if observation.pd_reachable and observation.hot_write_error:
        lines.append(f"Hot write regions could not be read: {observation.hot_write_error}")
    if observation.metrics and observation.metrics.unmatched_instances:
        names = ", ".join(observation.metrics.unmatched_instances)
        lines.append(f"Metric series matched no PD store (instance labels: {names}).")
    return lines


def report_json(observation: Observation, evaluation: Evaluation) -> dict[str, Any]:
    return {
        "pd_url": observation.pd_url,
        "metrics_source": observation.metrics_source,
        "checked_at": datetime.fromtimestamp(observation.at, UTC).isoformat(),
        "stores": store_rows(observation),
        "violations": [violation_json(v) for v in evaluation.violations],
        "notes": notes(observation, evaluation),
    }


def _pct(ratio: float | None, source: str | None) -> str:
    if ratio is None:
        return "no data"
    return f"{ratio:.1%}" + (" (PD)" if source == "pd" else "")


def _ms(value: float | None) -> str:
    if value is None:
        return "no data"
    if math.isinf(value):
        return "> max bucket"
    return f"{value:.1f} ms"


def write_table(
    observation: Observation, evaluation: Evaluation, settings: Settings, out: TextIO
) -> None:
    source = observation.metrics_source or "none"
    out.write(f"PD {observation.pd_url}, metrics: {source}\n\n")
    if observation.stores:
        header = ("ID", "ADDRESS", "STATE", "LEADERS", "REGIONS", "DISK USED", "WRITE P99")
        rows = [header] + [
            (
                str(row["id"]),
                row["address"],
                row["state"],
                str(row["leaders"]),
                str(row["regions"]),
                _pct(row["disk_used_ratio"], row["disk_source"]),
                "idle (no writes)" if row["write_idle"] else _ms(row["write_p99_ms"]),
            )
            for row in store_rows(observation)
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        right = {0, 3, 4, 5, 6}
        for r in rows:
            cells = [
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ]
            out.write("  ".join(cells).rstrip() + "\n")
        out.write("\n")
    if not evaluation.violations:
        out.write(
            f"No violations. Thresholds: write P99 {settings.latency_threshold_ms:g} ms, "
            f"disk {settings.disk_threshold:.0%}.\n"
        )
    else:
        out.write(f"Violations ({len(evaluation.violations)}):\n")
        for v in evaluation.violations:
            subject = v.subject.replace(":", " ")
            out.write(f"  {v.severity.value.upper():8}  {v.kind.value}  ({subject})\n")
            for line in textwrap.wrap(v.message, width=96):
                out.write(f"      {line}\n")
    for note in notes(observation, evaluation):
        out.write("\n" + textwrap.fill(f"Note: {note}", width=100) + "\n")
