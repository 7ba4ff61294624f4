"""Shared pytest configuration. Fixtures live in per-area plugin modules under tests/plugins."""

from __future__ import annotations

import os

import pytest

pytest_plugins: list[str] = [
    "tests.plugins.storage",
    "tests.plugins.postgres",
    "tests.plugins.slack",
    "tests.plugins.sim",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run long soak variants")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak") or os.environ.get("TIKVOPS_SOAK") == "1":
        return
    skip = pytest.mark.skip(reason="soak variant: run with --soak or TIKVOPS_SOAK=1")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
