"""`tikvops eval`: playbooks without a key; Claude (a stand-in Messages API behind the SDK's
`http_client` seam, never the real API) with one."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

import tikvops.commands.eval as eval_command
from diagnosis.eval import load_cases
from tests.diagnosis.builders import api_error, message, proposal, tool_use
from tests.diagnosis.messages_api import MessagesAPI
from tikvops.cli import main
from tikvops.commands.eval import evaluate_cases
from tikvops.settings import Settings

CASES_DIR = Path(__file__).parent / "cases"


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env or default case directory
    yield


def cli(*args: str) -> int:
    return main(["--env-file", "missing.env", "eval", "--cases", str(CASES_DIR), *args])


def test_without_a_key_the_playbooks_are_scored(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli("--case", "slow-store-five-stores", "--case", "store-disconnected")
    out, err = capsys.readouterr()
    assert code == 0
    assert "no ANTHROPIC_API_KEY is set: scoring the built-in playbooks, not Claude" in err
    assert "slow-store-five-stores" in out and "drain(2)" in out
    assert "store-disconnected" in out
    assert "Diagnosis by playbooks, 2 cases:" in out
    assert "cases passed      2/2 (100%)" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--case", "disk-filling-three-stores", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "playbooks"
    assert report["totals"] == {
        "cases": 1,
        "kind_ok": 1,
        "actions_ok": 1,
        "safe": 1,
        "preflight_ok": 1,
        "passed": 1,
    }
    assert report["cases"][0]["kind"] == "disk_full"


def test_unknown_case_or_missing_directory_cannot_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--case", "nope") == 2
    assert "unknown case(s): nope" in capsys.readouterr().err
    assert main(["--env-file", "missing.env", "eval"]) == 2
    assert "no evaluation cases at tests/eval/cases" in capsys.readouterr().err


def claude_settings() -> Settings:
    return Settings.model_validate({"anthropic_api_key": "sk-ant-test", "anthropic_max_retries": 0})


def through(monkeypatch: pytest.MonkeyPatch, api: MessagesAPI) -> None:
    """Make the eval command's Claude client talk to `api` (the SDK's http_client seam)."""
    original = eval_command.evaluate_cases
    monkeypatch.setattr(
        eval_command, "evaluate_cases", functools.partial(original, http_client=api.http_client())
    )


def reply(actions: list[dict[str, Any]], kind: str) -> httpx2.Response:
    return httpx2.Response(200, json=message([tool_use(proposal(actions, kind=kind))]))


async def test_claude_is_scored_on_its_own_answer() -> None:
    cases = load_cases(CASES_DIR, ["slow-store-five-stores", "store-down"])
    good = reply([{"action": "drain", "params": {"store_id": 2}, "reason": "slow"}], "slow_store")
    unsafe = reply([{"action": "drain", "params": {"store_id": 5}, "reason": "down"}], "store_down")
    api = MessagesAPI(good, unsafe)
    report = await evaluate_cases(cases, claude_settings(), http_client=api.http_client())
    assert api.call_count == 2
    assert report.mode == "Claude (claude-sonnet-5-5)"
    by_case = {s.case: s for s in report.scores}
    assert by_case["slow-store-five-stores"].passed
    down = by_case["store-down"]
    assert down.kind_ok and not down.safe and not down.passed


async def test_an_unavailable_claude_fails_the_case_not_the_run() -> None:
    cases = load_cases(CASES_DIR, ["store-disconnected"])
    overloaded = httpx2.Response(529, json=api_error("overloaded_error", "Overloaded"))
    api = MessagesAPI(overloaded)
    report = await evaluate_cases(cases, claude_settings(), http_client=api.http_client())
    [score] = report.scores
    assert not score.passed and score.kind is None
    assert score.error is not None and "overloaded (529)" in score.error


def test_the_cli_uses_claude_when_a_key_is_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("TIKVOPS_ANTHROPIC_MAX_RETRIES", "0")
    api = MessagesAPI(reply([], "store_disconnected"))
    through(monkeypatch, api)
    code = cli("--case", "store-disconnected")
    assert api.call_count == 1
    request = api.requests[-1]
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "scoring Claude (claude-sonnet-5-5) on 1 cases" in err
    assert "Diagnosis by Claude (claude-sonnet-5-5)" in out
    assert request.headers["authorization"] == "Bearer sk-ant-test"


def test_playbooks_flag_overrides_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    api = MessagesAPI(reply([], "store_down"))
    through(monkeypatch, api)
    assert cli("--case", "store-down", "--playbooks") == 0
    assert api.call_count == 0
    assert "--playbooks was given" in capsys.readouterr().err
