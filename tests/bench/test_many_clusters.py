"""bench/many_clusters.py runs end to end at a small size: the simulator child process serves
several clusters, one monitor per cluster ticks against each, and the table has a row per size
with the requests of every cluster counted. (Durations are the benchmark's business.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_small_run_prints_a_row_per_size() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "many_clusters.py"),
            "--clusters",
            "3",
            "--stores",
            "2",
            "--regions",
            "50",
            "--cycles",
            "2",
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {}
    for line in done.stdout.splitlines():
        cells = line.split("|")
        first = cells[0].split()
        if len(first) == 2 and first[0].isdigit():
            rows[int(first[0])] = float(cells[1])
    assert set(rows) == {1, 3}
    # every cluster is read each cycle: three clusters cost three times one cluster's requests
    assert rows[1] > 0
    assert rows[3] == pytest.approx(3 * rows[1], rel=0.2)
