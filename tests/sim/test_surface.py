"""The package surface other code imports."""

from __future__ import annotations

import sim


def test_all_lists_each_public_name_once() -> None:
    assert len(set(sim.__all__)) == len(sim.__all__)  # ruff (RUF022) keeps it sorted
    for name in sim.__all__:
        assert hasattr(sim, name), name
    assert sim.SimServer.__module__ == "sim.server"
