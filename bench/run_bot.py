"""`tikvops run` for the benchmarks and reliability tests: `tikvops.cli.main(["run"])` when the
command line has the subcommand, else its handler (`tikvops.commands.run.run_command`) directly,
with the settings from the environment. The code path is the same either way.

With `BENCH_PROFILE=<file>` the bot runs under cProfile and writes its stats there on exit; with
`BENCH_CONFIG=<file>` it reads that TOML file too (`--config`, e.g. `[clusters.NAME]` tables)."""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tikvops import cli
from tikvops.commands.run import run_command


def main() -> int:
    profile_to = os.environ.get("BENCH_PROFILE")
    if profile_to:
        profiler = cProfile.Profile()
        try:
            return profiler.runcall(run)
        finally:
            profiler.dump_stats(profile_to)
    return run()


def run() -> int:
    if "run" in cli.COMMAND_MODULES:
        config = os.environ.get("BENCH_CONFIG")
        extra = ["--config", config] if config else []
        return cli.main([*extra, "--env-file", "/dev/null", "run"])
    args = argparse.Namespace(config=None, env_file=None, pd=None, db=None, channel=None)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
