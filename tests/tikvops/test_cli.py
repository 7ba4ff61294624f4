"""The command line's own parsing: global --pd/--db before the subcommand, usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tikvops.cli import main


def test_global_db_reaches_a_database_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-dir" / "global.db"
    assert main(["--db", str(missing), "incidents", "--json"]) == 0
    captured = capsys.readouterr()
    assert f"no database at {missing}" in captured.err
    assert '"incidents": []' in captured.out


def test_global_pd_reaches_a_grammar_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 1 on loopback refuses at once: the refusal must name PD, proving --pd was used.
    code = main(["--pd", "http://127.0.0.1:1", "--db", str(tmp_path / "x.db"), "stores"])
    assert code == 1
    assert "PD is unavailable" in capsys.readouterr().out


def test_global_option_that_does_not_apply_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--pd", "http://127.0.0.1:1", "sim", "--help-not-an-option"])
    assert info.value.code == 2


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: tikvops" in capsys.readouterr().out
