"""Reliability suite: prints how many generated inputs each bad-input target tried."""

from __future__ import annotations

import pytest

from tests.reliability.support import INPUT_COUNTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not INPUT_COUNTS:
        return
    terminalreporter.section("bad input: generated inputs tried per target")
    for target, count in sorted(INPUT_COUNTS.items()):
        terminalreporter.write_line(f"{target}: {count}")
