"""Settings: environment names, defaults, secrets and one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from tikvops.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_match_the_documented_values() -> None:
    s = load_settings()
    assert s.poll_interval == 15
    assert s.latency_threshold_ms == 100
    assert s.latency_grace == 60
    assert s.disk_threshold == 0.70
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.pd_url is None and s.anthropic_api_key is None


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKVOPS_PD_URL", "http://127.0.0.1:2379")
    monkeypatch.setenv("TIKVOPS_APPROVERS", "U1, S2 ,U3")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A1-secret")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9999/api")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    s = load_settings()
    assert s.pd_url == "http://127.0.0.1:2379"
    assert s.approvers == ["U1", "S2", "U3"]
    assert s.slack_api_url == "http://127.0.0.1:9999/api/"
    assert s.uses_real_slack
    text = repr(s) + str(s) + s.model_dump_json()
    for secret in ("xoxb-very-secret", "xapp-1-A1-secret", "sk-ant-secret"):
        assert secret not in text


def test_one_line_per_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKVOPS_DISK_THRESHOLD", "1.5")
    monkeypatch.setenv("TIKVOPS_PD_URL", "pd:2379")
    monkeypatch.setenv("TIKVOPS_POLL_INTERVAL", "soon")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xapp-wrong-kind")
    with pytest.raises(ConfigError) as info:
        load_settings()
    problems = info.value.problems
    assert len(problems) == 4
    joined = "\n".join(problems)
    for name in (
        "TIKVOPS_DISK_THRESHOLD",
        "TIKVOPS_PD_URL",
        "TIKVOPS_POLL_INTERVAL",
        "SLACK_BOT_TOKEN",
    ):
        assert name in joined
    assert "xapp-wrong-kind" not in joined


def test_toml_file_and_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "tikvops.toml"
    config.write_text('pd_url = "http://pd-from-toml:2379"\npoll_interval = 5\n')
    assert load_settings(config_file=config).pd_url == "http://pd-from-toml:2379"
    monkeypatch.setenv("TIKVOPS_PD_URL", "http://pd-from-env:2379")
    s = load_settings(config_file=config)
    assert s.pd_url == "http://pd-from-env:2379"
    assert s.poll_interval == 5
    assert load_settings(config_file=config, pd_url="http://flag:2379").pd_url == "http://flag:2379"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TIKVOPS_CHANNEL=ops-alerts\n")
    assert load_settings().channel == "ops-alerts"


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config_file=tmp_path / "nope.toml")


def test_malformed_toml_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("pd_url = [unclosed\n")
    with pytest.raises(ConfigError, match="could not be read"):
        load_settings(config_file=bad)
