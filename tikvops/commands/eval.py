"""`tikvops eval`: score diagnoses on the evaluation set and print a table.

With `ANTHROPIC_API_KEY` set, Claude is scored (its own answer: a failed call counts as a failed
case, the playbook fallback is not used); without a key, or with `--playbooks`, the built-in
playbooks are scored and the output says so. CI never has a key, so it never calls Claude.

Each case (`tests/eval/cases/*.yml` by default, see `diagnosis.eval`) runs in its own simulator
on 127.0.0.1: the scenario and steps are applied in virtual time, the cluster is observed twice
(`WINDOW` virtual seconds apart, so the write P99 is known), the invariants are checked without
grace periods, and the case's incident is diagnosed and scored; every proposed action is
preflighted against the simulator. Exit codes: 0 every case passed, 1 some failed, 2 the
evaluation could not run.

Steps (`{"op": ..., ...}`, values may be `$store`/`$region` from the scenario): `advance
{seconds}`, `scenario {name}`, `stop_store {store}`, `start_store {store}`, `slow_store {store,
p99_ms}`, `fill_disk {store, ratio, over_seconds}`, `hot_regions {leader_store, count}` (binds
`$hot` to the regions made hot), `drain {store}` (evict-leader through PD), `partition
{seconds}` (PD refuses connections).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx2

from diagnosis.claude import ClaudeDiagnoser
from diagnosis.client import ClaudeClient
from diagnosis.eval import (
    DiagnoseFn,
    EvalCase,
    EvalError,
    EvalReport,
    Situation,
    SituationFactory,
    format_table,
    incident_for,
    load_cases,
    run_eval,
)
from engine.clock import SystemClock
from engine.model import Diagnosis
from engine.playbook_diagnoser import PlaybookDiagnoser
from engine.ports import Clock
from operator_tikv.invariants import Thresholds, evaluate
from operator_tikv.models.writes import PDWrite
from operator_tikv.observation import observe
from operator_tikv.pd import PDClient
from operator_tikv.playbooks import DiagnosisKind
from sim.server import SimServer
from tikvops.cluster_settings import chosen_cluster
from tikvops.settings import ConfigError, Settings, load_settings
from tikvops.wiring import open_metrics_source, open_pd

DEFAULT_CASES = Path("tests/eval/cases")
SIM_START = 1_795_400_000.0  # fixed virtual start time: every run sees the same cluster
WINDOW = 15.0


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "eval",
        help="score diagnoses (Claude with a key, else the playbooks) on the evaluation set",
        description=(
            "Run every evaluation case in its own simulator, diagnose its incident and score "
            "the kind of diagnosis and the safety of the proposed actions. Uses Claude when "
            "ANTHROPIC_API_KEY is set, the built-in playbooks otherwise."
        ),
    )
    parser.add_argument(
        "--cases", type=Path, default=DEFAULT_CASES, help=f"case directory ({DEFAULT_CASES})"
    )
    parser.add_argument(
        "--case", action="append", default=[], metavar="NAME", help="run only this case"
    )
    parser.add_argument(
        "--playbooks", action="store_true", help="score the playbooks even when a key is set"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        help="build the cases' PD clients with this cluster's options (pd_timeout, pd_retries); "
        "the cases bring their own simulated clusters",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(config_file=args.config, env_file=args.env_file)
    try:
        # eval needs no cluster; a named one must exist (one line listing them otherwise)
        cluster = chosen_cluster(settings, args.cluster, command="eval") if args.cluster else None
    except ConfigError as exc:
        print(f"tikvops eval: {exc}", file=sys.stderr)
        return 2
    try:
        cases = load_cases(args.cases, args.case)
    except EvalError as exc:
        print(f"tikvops eval: {exc}", file=sys.stderr)
        return 2
    use_claude = settings.anthropic_api_key is not None and not args.playbooks
    if not use_claude:
        why = "--playbooks was given" if args.playbooks else "no ANTHROPIC_API_KEY is set"
        print(f"tikvops eval: {why}: scoring the built-in playbooks, not Claude.", file=sys.stderr)
    else:
        print(
            f"tikvops eval: scoring Claude ({settings.anthropic_model}) on {len(cases)} cases.",
            file=sys.stderr,
        )
    if cluster is not None:
        print(f"tikvops eval: PD clients built as cluster {cluster.name}'s.", file=sys.stderr)
    report = asyncio.run(
        evaluate_cases(
            cases,
            settings if use_claude else None,
            cluster=cluster.settings if cluster is not None else None,
        )
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(report) + "\n")
    return 0 if report.all_passed else 1


async def evaluate_cases(
    cases: list[EvalCase],
    claude: Settings | None = None,
    *,
    base_url: str | None = None,
    http_client: httpx2.AsyncClient | None = None,
    cluster: Settings | None = None,
) -> EvalReport:
    """Score the playbooks, or Claude with these settings (`base_url`/`http_client` for tests).
    `cluster`: the chosen cluster's settings, whose PD client options the cases' clients
    take."""
    clock = SystemClock()
    situations = simulator(cluster)
    if claude is None or claude.anthropic_api_key is None:
        return await run_eval(cases, situations, playbook_diagnose(clock), mode="playbooks")
    client = ClaudeClient(
        claude.anthropic_api_key.get_secret_value(),
        model=claude.anthropic_model,
        timeout=claude.anthropic_timeout,
        max_retries=claude.anthropic_max_retries,
        base_url=base_url,
        http_client=http_client,
    )
    async with client:
        return await run_eval(
            cases, situations, claude_diagnose(client, clock), mode=f"Claude ({client.model})"
        )


def playbook_diagnose(clock: Clock) -> DiagnoseFn:
    async def diagnose(situation: Situation) -> tuple[Diagnosis, DiagnosisKind | None]:
        diagnoser = PlaybookDiagnoser(situation.pd, clock)
        diagnosis, result = await diagnoser.run(situation.incident, situation.observation)
        return diagnosis, result.kind

    return diagnose


def claude_diagnose(client: ClaudeClient, clock: Clock) -> DiagnoseFn:
    async def diagnose(situation: Situation) -> tuple[Diagnosis, DiagnosisKind | None]:
        diagnoser = ClaudeDiagnoser(client, situation.pd, clock)
        attempt = await diagnoser.attempt(situation.incident, situation.observation)
        return attempt.diagnosis, attempt.kind

    return diagnose


# --------------------------------------------------------------------------- situations


def simulator(cluster: Settings | None = None) -> SituationFactory:
    """`simulate` whose PD client takes `cluster`'s options (timeout, retries)."""
    if cluster is None:
        return simulate
    return partial(simulate, pd_timeout=cluster.pd_timeout, pd_retries=cluster.pd_retries)


@asynccontextmanager
async def simulate(
    case: EvalCase, *, pd_timeout: float = 5.0, pd_retries: int = 2
) -> AsyncIterator[Situation]:
    """The case's cluster in a fresh simulator on 127.0.0.1, observed, with its incident."""
    server = SimServer(
        stores=case.cluster.stores,
        regions=case.cluster.regions,
        seed=case.cluster.seed,
        auto_tick=False,
        start_time=SIM_START,
    )
    await server.start(host="127.0.0.1", port=0)
    try:
        # Built like every command's (tikvops.wiring), from settings naming the simulator
        # only: the environment is not read, so a configured Prometheus cannot leak in.
        settings = Settings.model_construct(
            pd_url=server.pd_url, pd_timeout=pd_timeout, pd_retries=pd_retries
        )
        async with (
            open_pd(settings) as pd,
            open_metrics_source(settings) as scrape,
        ):
            variables: dict[str, Any] = {}
            if case.scenario:
                result = server.apply_scenario(case.scenario)
                variables.update(
                    {
                        k: v
                        for k, v in (("store", result.store_id), ("region", result.region_id))
                        if v is not None
                    }
                )
            for step in case.steps:
                await apply_step(step, server, pd, variables)
            await observe(pd, scrape, at=server.cluster.now, pd_url=server.pd_url)
            server.cluster.advance(WINDOW)
            observation = await observe(pd, scrape, at=server.cluster.now, pd_url=server.pd_url)
            evaluation = evaluate(observation, Thresholds(**case.thresholds), ignore_grace=True)
            subject = _subject(case.incident.subject, variables)
            found = [
                v
                for v in evaluation.violations
                if v.kind.value == case.incident.kind and v.subject == subject
            ]
            if not found:
                seen = ", ".join(f"{v.kind.value} {v.subject}" for v in evaluation.violations)
                raise EvalError(
                    f"the situation did not produce a {case.incident.kind} incident on "
                    f"{subject} (it produced: {seen or 'nothing'})"
                )
            at = datetime.fromtimestamp(observation.at, UTC)
            yield Situation(
                incident=incident_for(found[0], at),
                observation=observation,
                pd=pd,
                variables=variables,
            )
    finally:
        await server.stop()


def _subject(subject: str, variables: Mapping[str, Any]) -> str:
    for name, value in variables.items():
        subject = subject.replace(f"${name}", str(value))
    return subject


def _arg(step: Mapping[str, Any], name: str, variables: Mapping[str, Any]) -> Any:
    if name not in step:
        raise EvalError(f"step {dict(step)} needs {name!r}")
    value = step[name]
    if isinstance(value, str) and value.startswith("$"):
        if value[1:] not in variables:
            raise EvalError(f"step {dict(step)}: unknown variable {value}")
        return variables[value[1:]]
    return value


async def apply_step(
    step: Mapping[str, Any], server: SimServer, pd: PDClient, variables: dict[str, Any]
) -> None:
    """Apply one case step to the simulator (see the module docstring)."""
    op = step.get("op")
    faults = server.faults
    if op == "advance":
        server.cluster.advance(float(_arg(step, "seconds", variables)))
    elif op == "scenario":
        server.apply_scenario(str(_arg(step, "name", variables)))
    elif op == "stop_store":
        faults.stop_store(int(_arg(step, "store", variables)))
    elif op == "start_store":
        faults.start_store(int(_arg(step, "store", variables)))
    elif op == "slow_store":
        faults.slow_store(int(_arg(step, "store", variables)), float(step.get("p99_ms", 250.0)))
    elif op == "fill_disk":
        faults.fill_disk(
            int(_arg(step, "store", variables)),
            float(_arg(step, "ratio", variables)),
            float(step.get("over_seconds", 0.0)),
        )
    elif op == "hot_regions":
        leader = int(_arg(step, "leader_store", variables))
        count = int(_arg(step, "count", variables))
        led = [r for r in server.cluster.ordered_regions() if r.leader_store == leader]
        if len(led) < count:
            raise EvalError(f"store {leader} leads only {len(led)} regions, not {count}")
        middle = len(led) // 2
        chosen = led[middle : middle + count]
        variables["hot"] = [r.id for r in chosen]
        for region in chosen:
            faults.hot_region(region.id, "write")
    elif op == "drain":
        await pd.execute(PDWrite.add_evict_leader(int(_arg(step, "store", variables))))
    elif op == "partition":
        faults.partition(float(_arg(step, "seconds", variables)))
    else:
        raise EvalError(f"unknown step op {op!r}")
