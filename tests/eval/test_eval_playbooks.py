"""The evaluation set, scored with the playbooks: every case must pass in CI.

Each case runs in its own simulator (see `tikvops.commands.eval.simulate`); a failure prints the
case's score, the diagnosis summary and any preflight refusal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnosis.eval import EvalCase, format_table, load_cases, run_eval
from engine.clock import SystemClock
from tikvops.commands.eval import playbook_diagnose, simulate

CASES_DIR = Path(__file__).parent / "cases"
CASES = load_cases(CASES_DIR)


def test_the_set_covers_every_simulator_scenario_and_both_answers() -> None:
    scenarios = {c.scenario for c in CASES}
    assert {"store-down", "slow-store", "disk-filling", "hot-region"} <= scenarios
    assert {c.expect.actions for c in CASES} >= {"required", "none"}
    assert all(c.unacceptable for c in CASES), "every case names what must not be proposed"
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_the_playbooks_pass_the_case(case: EvalCase) -> None:
    report = await run_eval([case], simulate, playbook_diagnose(SystemClock()), mode="playbooks")
    [score] = report.scores
    assert score.passed, f"{format_table(report)}\n\nsummary: {score.summary}"
