"""A URL with credentials (`http://user:pw@pd:2379`) is refused at start with one clear line
that never shows the password: in `tikvops run`, `tikvops check`, a grammar command, and the
PD client itself."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from operator_tikv.pd import PDClient
from operator_tikv.urls import has_credentials, redact_url
from tikvops.cli import main
from tikvops.settings import ConfigError, load_settings

SECRET = "s3cr3t-Pa55"
URL = f"http://ops:{SECRET}@pd0:2379"


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("TIKVOPS_PD_URL", "pd_url"),
        ("TIKVOPS_PROMETHEUS_URL", "prometheus_url"),
        ("SLACK_API_URL", "slack_api_url"),
    ],
)
def test_a_url_with_credentials_is_refused_with_one_masked_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str
) -> None:
    monkeypatch.setenv(variable, URL)
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None)
    assert len(info.value.problems) == 1
    (line,) = info.value.problems
    assert line.startswith(f"{variable}: must not contain a user name or password")
    assert "http://***@pd0:2379" in line
    assert SECRET not in line and "ops:" not in line


def test_credentials_in_any_member_of_a_pd_list_are_refused_and_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIKVOPS_PD_URL", f"http://pd0:2379,{URL}")
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None)
    (line,) = info.value.problems
    assert line.startswith("TIKVOPS_PD_URL: must not contain a user name or password")
    assert "http://***@pd0:2379" in line
    assert SECRET not in line and "ops:" not in line


def test_a_non_http_url_with_credentials_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKVOPS_PD_URL", f"ops:{SECRET}@pd0:2379")
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None)
    assert "must start with http://" in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--pd", URL, "--json"],
        ["--pd", URL, "status"],
        ["run"],
        ["monitor"],
    ],
)
def test_commands_stop_at_start_without_printing_the_password(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("TIKVOPS_PD_URL", URL)
    monkeypatch.setenv("TIKVOPS_DB", str(tmp_path / "db.sqlite"))
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert lines == [
        "tikvops: configuration: TIKVOPS_PD_URL: must not contain a user name or password "
        "(got 'http://***@pd0:2379'): tikvops never sends credentials taken from a URL (PD's "
        "API has no password authentication); remove the 'user:password@' part"
    ]
    assert not (tmp_path / "db.sqlite").exists()  # stopped before opening anything


async def test_the_pd_client_refuses_credentials_without_showing_them() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError) as info:
            PDClient(http, URL)
    assert "http://***@pd0:2379" in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("url", "masked", "secret"),
    [
        ("http://u:p@pd:2379", "http://***@pd:2379", True),
        ("https://only-user@[::1]:2379/pd", "https://***@[::1]:2379/pd", True),
        ("http://a:b@c@pd/", "http://***@pd/", True),
        ("http://pd:2379/x?who=a@b", "http://pd:2379/x?who=a@b", False),
        ("http://pd:2379", "http://pd:2379", False),
    ],
)
def test_redact_url(url: str, masked: str, secret: bool) -> None:
    assert redact_url(url) == masked
    assert has_credentials(url) is secret
