"""Several clusters in the TOML file: `[clusters.NAME]` tables overriding the global settings,
the single-cluster settings as cluster `default`, and one line per configuration problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tikvops.cluster_settings import DEFAULT_CLUSTER, cluster_configs
from tikvops.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tikvops.toml"
    path.write_text(text)
    return path


TWO = """
approvers = "U1"
latency_threshold_ms = 150

[clusters.prod]
pd_url = "http://pd-prod:2379,http://pd-prod-2:2379"
prometheus_url = "http://prom-prod:9090"
channel = "tikv-prod"
approvers = "U2,S9"
latency_threshold_ms = 50

[clusters.staging]
pd_url = "http://pd-staging:2379"
channel = "tikv-staging"
"""


def test_cluster_tables_override_the_global_settings(tmp_path: Path) -> None:
    settings = load_settings(config_file=_toml(tmp_path, TWO))
    prod, staging = cluster_configs(settings)
    assert prod.name == "prod" and staging.name == "staging"
    assert prod.settings.pd_urls == ["http://pd-prod:2379", "http://pd-prod-2:2379"]
    assert prod.settings.prometheus_url == "http://prom-prod:9090"
    assert prod.settings.channel == "tikv-prod"
    assert prod.settings.approvers == ["U2", "S9"]
    assert prod.settings.latency_threshold_ms == 50
    # staging inherits what it does not set
    assert staging.settings.approvers == ["U1"]
    assert staging.settings.latency_threshold_ms == 150
    assert staging.settings.prometheus_url is None
    assert staging.settings.pd_url == "http://pd-staging:2379"


def test_without_cluster_tables_the_environment_is_cluster_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIKVOPS_PD_URL", "http://pd:2379")
    monkeypatch.setenv("TIKVOPS_CHANNEL", "ops")
    (only,) = cluster_configs(load_settings())
    assert only.name == DEFAULT_CLUSTER == "default"
    assert only.settings.pd_url == "http://pd:2379" and only.settings.channel == "ops"


def test_every_problem_is_one_line(tmp_path: Path) -> None:
    config = _toml(
        tmp_path,
        """
[clusters.prod]
pd_url = "http://pd-prod:2379"
channel = "ops"
slack_bot_token = "xoxb-1"
colour = "red"

[clusters.eu]
pd_url = "http://pd-eu:2379"
channel = "ops"
disk_threshold = 7

[clusters.Bad_Name]
pd_url = "http://x:2379"

[clusters.status]
pd_url = "http://y:2379"

[clusters.us]
pd_url = "http://alice:secret@pd-us:2379"
channel = "us"

[clusters.asia]
pd_url = "http://pd-asia:2379"
channel = "ops"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config)
    problems = caught.value.problems
    text = "\n".join(problems)
    assert "secret" not in text
    expected = [
        "[clusters.prod]: unknown key 'colour' (not a setting)",
        "[clusters.prod]: unknown key 'slack_bot_token' (it is global: set it outside "
        "[clusters.*])",
        "[clusters.eu] disk_threshold:",
        "[clusters.Bad_Name]: bad cluster name 'Bad_Name'",
        "[clusters.status]: 'status' is a /tikv command word",
        "[clusters.us] pd_url: must not contain a user name or password",
        "clusters prod, eu, asia share the channel 'ops'",
    ]
    for start in expected:
        assert sum(line.startswith(start) for line in problems) == 1, (start, problems)
    assert len(problems) == len(expected)
    assert all("\n" not in line for line in problems)


def test_a_duplicate_cluster_table_is_refused(tmp_path: Path) -> None:
    config = _toml(
        tmp_path,
        '[clusters.prod]\npd_url = "http://a:2379"\n[clusters.prod]\npd_url = "http://b:2379"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config)
    (line,) = caught.value.problems
    assert line.startswith("configuration could not be read:")


def test_a_cluster_without_pd_url_among_clusters_with_one(tmp_path: Path) -> None:
    config = _toml(
        tmp_path,
        '[clusters.a]\npd_url = "http://a:2379"\nchannel = "a"\n[clusters.b]\nchannel = "b"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config)
    assert caught.value.problems == ["[clusters.b]: no pd_url: every cluster needs its PD address"]


def test_cluster_secrets_stay_secret(tmp_path: Path) -> None:
    config = _toml(
        tmp_path,
        '[clusters.a]\npd_url = "http://a:2379"\nprometheus_url = "http://p:9090"\n'
        'prometheus_username = "u"\nprometheus_password = "hunter2"\n',
    )
    settings = load_settings(config_file=config)
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    (only,) = cluster_configs(settings)
    assert "hunter2" not in repr(only.settings)
    assert only.settings.prometheus_password is not None
    assert only.settings.prometheus_password.get_secret_value() == "hunter2"
