"""Run every benchmark in turn (`make bench`), printing each one's figures as they come, and
write the whole output to `bench/last_run.txt` (the source of `bench/RESULTS.md`).

    .venv/bin/python bench/run_all.py [--quick]

`--quick` runs smaller variants (fewer trials, no 200k-region sizes, 100 long cycles) to check
that every benchmark works; its figures are not the ones RESULTS.md reports. Exit code 1 when a
benchmark failed to run (a missed target is a figure, not a failure).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

FULL: list[list[str]] = [
    ["click_to_ack.py", "--rounds", "3"],
    ["approve_to_pd.py", "--trials", "7"],
    ["startup.py", "--trials", "3"],
    ["region_lists.py"],
    ["monitor_cost.py"],
    ["fault_to_slack.py", "--trials", "3"],
    ["incident_at_scale.py", "--baseline-rev", "2f23c18"],
    ["approvals_per_backend.py", "--trials", "3"],
    ["replicas.py", "--kills", "10"],  # long: ~13 replica starts
    ["many_clusters.py", "--ack"],
]
QUICK: list[list[str]] = [
    ["click_to_ack.py", "--burst", "20"],
    ["approve_to_pd.py", "--trials", "2"],
    ["startup.py", "--trials", "1"],
    ["region_lists.py", "--regions", "5000", "--repeats", "1"],
    ["monitor_cost.py", "--sizes", "3x1000", "10x1000", "--cycles", "5", "--long", "100"],
    ["fault_to_slack.py", "--trials", "1", "--polls", "5"],
    ["incident_at_scale.py", "--quick"],
    ["approvals_per_backend.py", "--proposals", "50", "--trials", "1"],
    ["replicas.py", "--quick"],
    ["many_clusters.py", "--clusters", "5", "--cycles", "5"],
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCH / "last_run.txt")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    failed: list[str] = []
    started = time.time()
    with args.out.open("w") as out:
        command = " ".join(["python", "bench/run_all.py", *(["--quick"] if args.quick else [])])
        out.write(f"$ {command}\n")
        for script, *options in plan:
            line = f"\n$ python bench/{script} {' '.join(options)}".rstrip()
            print(line, flush=True)
            out.write(line + "\n")
            begun = time.time()
            process = subprocess.Popen(
                [sys.executable, str(BENCH / script), *options],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            for text in process.stdout:
                print(text, end="", flush=True)
                out.write(text)
            code = process.wait()
            tail = f"   ({script}: {time.time() - begun:.0f} s, exit code {code})"
            print(tail, flush=True)
            out.write(tail + "\n")
            if code != 0:
                failed.append(script)
        total = f"\nall benchmarks: {time.time() - started:.0f} s; failed: {failed or 'none'}"
        print(total)
        out.write(total + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
