"""bench/incident_at_scale.py --quick runs end to end: the real `tikvops run` process, the
simulator process and the Slack stand-in; every envelope is acked and the incident reaches
Slack. (Its figures are the benchmark's business: nothing here asserts a duration.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(360)
def test_quick_run_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "incident_at_scale.py"), "--quick"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (row,) = [line for line in done.stdout.splitlines() if line.strip().startswith("after")]
    # 20 s of /tikv status every 0.5 s (40) and 2 x 20 clicks: every one acked
    acks = re.search(r"acks n=(\d+)", row)
    assert acks is not None and int(acks.group(1)) == 80
    assert "incident beyond poll+grace never" not in row, done.stdout[-3000:]
    assert re.search(r"loop lag p99 <= [\d.]+ ms", row)
    assert re.search(r"skipped \d+", row) and re.search(r"peak RSS \d+ MiB", row)
