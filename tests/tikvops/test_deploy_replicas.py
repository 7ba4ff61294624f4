"""docker-compose.yml's bot replicas (profile `replicas`): two copies of the bot on the `postgres`
service, with the same settings as the single bot but the database, each health endpoint on its
own loopback port, started once PostgreSQL is ready, and no secret written in the file."""

from __future__ import annotations

import os
from typing import Any

import pytest

from storage import PostgresUrl
from tests.tikvops.test_deploy_files import _resolve, load_yaml
from tikvops.observability import parse_host_port
from tikvops.settings import Settings, env_name, load_settings

REPLICAS = ("tikvops-a", "tikvops-b")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    services: dict[str, Any] = load_yaml("docker-compose.yml")["services"]
    return services


def test_two_replicas_on_the_postgres_service(services: dict[str, Any]) -> None:
    single = services["tikvops"]
    postgres = services["postgres"]
    ports = set()
    for name in REPLICAS:
        replica = services[name]
        assert replica["profiles"] == ["replicas"] == postgres["profiles"]
        assert replica["command"] == ["run"] and replica["build"] == "."
        assert replica["depends_on"]["postgres"] == {"condition": "service_healthy"}
        env = replica["environment"]
        unknown = set(env) - {env_name(n) for n in Settings.model_fields}
        assert not unknown, f"{name}: not tikvops settings: {unknown}"
        # The same bot as the single one, but the database.
        same = {k: v for k, v in single["environment"].items() if k != "TIKVOPS_DB"}
        assert {k: v for k, v in env.items() if k in same} == same
        host, port = parse_host_port(env["TIKVOPS_HEALTH_ADDR"])
        assert host == "0.0.0.0"  # inside the container; published on loopback
        [published] = replica["ports"]
        assert published.startswith("127.0.0.1:") and published.endswith(f":{port}")
        ports.add(published)
    assert len(ports) == 2  # each replica's /healthz on its own host port


@pytest.mark.parametrize("name", REPLICAS)
def test_replica_environment_loads_as_settings_on_postgres(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    host_env = {
        "TIKVOPS_POSTGRES_PASSWORD": "s3cret-pw",
        "SLACK_BOT_TOKEN": "xoxb-1-2-fake",
        "SLACK_APP_TOKEN": "xapp-1-A1-2-fake",
    }
    for key in list(os.environ):
        if key.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")):
            monkeypatch.delenv(key)
    for key, value in _resolve(services[name]["environment"], host_env).items():
        monkeypatch.setenv(key, value)
    settings = load_settings(env_file=None)
    assert isinstance(settings.db, PostgresUrl)
    assert settings.db.where == "postgres:5432/tikvops"
    assert settings.db.password == "s3cret-pw"
    assert "s3cret-pw" not in str(settings.db)
    assert settings.leader_poll == 5
    assert settings.uses_real_slack
    assert services["postgres"]["environment"]["POSTGRES_USER"] in settings.db.dsn
