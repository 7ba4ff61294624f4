"""Deployment files: docker-compose.yml, deploy/, Dockerfile, .dockerignore and manifest.yml.

No Docker engine runs here, so these tests parse the files and check the wiring between them:
service names, pinned versions, the addresses each component advertises and the ones the others
use, volumes, secrets, and the Slack app's scopes. The Dockerfile's HEALTHCHECK command is run for
real against an ObservabilityServer.
"""

from __future__ import annotations

import ast
import asyncio
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import SecretStr

from tikvops.observability import BotMetrics, Health, ObservabilityServer, parse_host_port
from tikvops.settings import Settings, env_name, load_settings

ROOT = Path(__file__).resolve().parents[2]
# Token-shaped strings (placeholders such as `xoxb-...` in comments are fine).
TOKEN_SHAPES = re.compile(r"xox[a-z](\.xox[a-z])?-[\w-]{6,}|xapp-[\w-]{6,}|sk-ant-[\w-]{6,}")
SECRET_ENV = {
    env_name(name)
    for name, field in Settings.model_fields.items()
    if field.annotation is not None and SecretStr in getattr(field.annotation, "__args__", ())
}


def load_yaml(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml("docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    return load_yaml("deploy/prometheus.yml")


def flags(service: dict[str, Any]) -> dict[str, str]:
    """`--name=value` command-line flags of a service as a dict (each flag once)."""
    result: dict[str, str] = {}
    for arg in service["command"]:
        assert arg.startswith("--") and "=" in arg, f"expected --flag=value, got {arg!r}"
        key, value = arg[2:].split("=", 1)
        assert key not in result, f"flag --{key} given twice"
        result[key] = value
    return result


def image_tag(service: dict[str, Any]) -> tuple[str, str]:
    repo, _, tag = service["image"].rpartition(":")
    return repo, tag


def host_port(addr: str) -> tuple[str, int]:
    if "://" in addr:
        parts = urlsplit(addr)
        assert parts.hostname is not None and parts.port is not None, addr
        return parts.hostname, parts.port
    return parse_host_port(addr)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> source (named volume or ./path)."""
    result = {}
    for entry in service.get("volumes", []):
        source, target, *_ = entry.split(":")
        result[target] = source
    return result


def volume_holding(service: dict[str, Any], path: str) -> str | None:
    """The mount source whose target contains `path`."""
    p = PurePosixPath(path)
    for target, source in mounts(service).items():
        if p == PurePosixPath(target) or PurePosixPath(target) in p.parents:
            return source
    return None


def pd_services(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in services.items() if image_tag(s)[0] == "pingcap/pd"}


def tikv_services(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in services.items() if image_tag(s)[0] == "pingcap/tikv"}


# ---------------------------------------------------------------------------------------------
# docker-compose.yml


def test_services_and_pinned_images(services: dict[str, Any]) -> None:
    assert set(services) == {
        "pd0",
        "tikv0",
        "tikv1",
        "tikv2",
        "prometheus",
        "tikvops",
        "grafana",
        "postgres",
        "tikvops-a",
        "tikvops-b",
    }
    for name, service in services.items():
        if "build" in service:  # the bot is built from this repository
            continue
        repo, tag = image_tag(service)
        assert repo and tag, f"{name}: image {service['image']!r} has no tag"
        # PostgreSQL's images are tagged major.minor.
        assert tag != "latest" and re.fullmatch(r"v?\d+\.\d+(\.\d+)?", tag), f"{name}: {tag!r}"
    versions = {
        image_tag(s)[1]
        for s in [*pd_services(services).values(), *tikv_services(services).values()]
    }
    assert len(versions) == 1, f"PD and TiKV must run the same version, got {versions}"
    assert versions.pop().startswith("v8.5.")
    assert image_tag(services["prometheus"])[1].startswith("v2.")
    assert len(tikv_services(services)) == 3
    assert services["grafana"]["profiles"] == ["grafana"]
    assert services["postgres"]["profiles"] == ["replicas"]
    assert all("profiles" not in s for n, s in services.items() if n in {"tikvops", "pd0"})


def test_pd_flags_are_self_consistent(services: dict[str, Any]) -> None:
    pds = pd_services(services)
    assert list(pds) == ["pd0"]
    for name, service in pds.items():
        f = flags(service)
        assert f["name"] == name
        assert host_port(f["advertise-client-urls"]) == (name, host_port(f["client-urls"])[1])
        assert host_port(f["advertise-peer-urls"]) == (name, host_port(f["peer-urls"])[1])
        assert host_port(f["client-urls"])[0] == "0.0.0.0"
        members = dict(m.split("=", 1) for m in f["initial-cluster"].split(","))
        assert set(members) == set(pds)
        assert members[name] == f["advertise-peer-urls"]
        assert volume_holding(service, f["data-dir"]) == f"{name}-data"


def test_tikv_flags_point_at_pd_and_advertise_service_names(services: dict[str, Any]) -> None:
    pd_clients = {
        host_port(flags(s)["advertise-client-urls"]) for s in pd_services(services).values()
    }
    data_volumes = set()
    for name, service in tikv_services(services).items():
        f = flags(service)
        assert host_port(f["addr"]) == ("0.0.0.0", 20160)
        assert host_port(f["status-addr"]) == ("0.0.0.0", 20180)
        assert f["advertise-addr"] == f"{name}:20160"
        assert f["advertise-status-addr"] == f"{name}:20180"
        endpoints = {host_port(e) for e in f["pd-endpoints"].split(",")}
        assert endpoints and endpoints <= pd_clients
        volume = volume_holding(service, f["data-dir"])
        assert volume == f"{name}-data"
        data_volumes.add(volume)
        config = volume_holding(service, f["config"])
        assert config is not None and (ROOT / config).is_file()
        assert service["ulimits"]["nofile"]["soft"] >= 82920  # TiKV's open-files check
        assert "pd0" in service["depends_on"]
    assert len(data_volumes) == 3, "each store needs its own data volume"


def test_prometheus_scrapes_pd_tikv_status_addresses_and_the_bot(
    services: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    jobs = {
        job["job_name"]: {t for sc in job["static_configs"] for t in sc["targets"]}
        for job in prometheus_config["scrape_configs"]
    }
    # Job names are what the bot's PromQL selects on (tikv-metrics.md §5).
    status_addrs = {flags(s)["advertise-status-addr"] for s in tikv_services(services).values()}
    assert jobs["tikv"] == status_addrs
    pd_addrs = {
        "{}:{}".format(*host_port(flags(s)["advertise-client-urls"]))
        for s in pd_services(services).values()
    }
    assert jobs["pd"] == pd_addrs
    bot_port = parse_host_port(services["tikvops"]["environment"]["TIKVOPS_HEALTH_ADDR"])[1]
    assert jobs["tikvops"] == {f"tikvops:{bot_port}"}
    # Every target host is a service of the stack.
    for targets in jobs.values():
        assert {t.rsplit(":", 1)[0] for t in targets} <= set(services)


def test_prometheus_service_mounts_its_config_and_rules(
    services: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    prom = services["prometheus"]
    f = flags(prom)
    config_path = PurePosixPath(f["config.file"])
    assert mounts(prom)[str(config_path)] == "./deploy/prometheus.yml"
    for rule_file in prometheus_config["rule_files"]:
        in_container = config_path.parent / rule_file
        source = mounts(prom)[str(in_container)]
        assert (ROOT / source).is_file()
    assert volume_holding(prom, f["storage.tsdb.path"]) == "prometheus-data"


def test_bot_points_at_the_stack(services: dict[str, Any]) -> None:
    bot = services["tikvops"]
    env = bot["environment"]
    pd_url = flags(services["pd0"])["advertise-client-urls"]
    assert env["TIKVOPS_PD_URL"] == pd_url == "http://pd0:2379"
    prom_host, prom_port = host_port(env["TIKVOPS_PROMETHEUS_URL"])
    assert prom_host == "prometheus"
    assert any(p.endswith(f":{prom_port}") for p in services["prometheus"]["ports"])
    db = PurePosixPath(env["TIKVOPS_DB"])
    assert db == PurePosixPath("/data/tikvops.db")
    assert volume_holding(bot, str(db)) == "tikvops-data"
    host, port = parse_host_port(env["TIKVOPS_HEALTH_ADDR"])
    assert host == "0.0.0.0"
    assert f"127.0.0.1:{port}:{port}" in bot["ports"]
    assert bot["build"] == "."
    assert bot["command"] == ["run"]
    assert {"pd0", "prometheus"} <= set(bot["depends_on"])


def test_bot_environment_names_are_real_settings(services: dict[str, Any]) -> None:
    known = {env_name(name) for name in Settings.model_fields}
    env = services["tikvops"]["environment"]
    unknown = set(env) - known
    assert not unknown, f"not tikvops settings (would be silently ignored): {unknown}"
    assert {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "ANTHROPIC_API_KEY"} <= SECRET_ENV <= set(env)


def test_no_literal_secrets(services: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert not TOKEN_SHAPES.search(text)
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if key in SECRET_ENV or re.search(r"TOKEN|SECRET|PASSWORD|KEY", key):
                # Pass-through (no value: from the shell/.env, else unset) or interpolation.
                assert value is None or re.fullmatch(r"\$\{\w+(:?-)?\}", str(value)), (name, key)


def _resolve(environment: dict[str, Any], host_env: dict[str, str]) -> dict[str, str]:
    """What compose puts in the container: pass-through entries, `${X:-default}` interpolation."""
    result = {}
    for key, value in environment.items():
        if value is None:
            if key in host_env:
                result[key] = host_env[key]
            continue
        text = str(value)
        for match in re.finditer(r"\$\{(\w+)(?::-([^}]*))?\}", text):
            text = text.replace(match.group(0), host_env.get(match.group(1), match.group(2) or ""))
        result[key] = text
    return result


@pytest.mark.parametrize("with_slack", [True, False])
def test_bot_environment_loads_as_settings(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch, with_slack: bool
) -> None:
    host_env = {"TIKVOPS_APPROVERS": "U01ALICE,S02ONCALL"}
    if with_slack:
        host_env |= {"SLACK_BOT_TOKEN": "xoxb-1-2-fake", "SLACK_APP_TOKEN": "xapp-1-A1-2-fake"}
    for key in list(os.environ):
        if key.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")):
            monkeypatch.delenv(key)
    for key, value in _resolve(services["tikvops"]["environment"], host_env).items():
        monkeypatch.setenv(key, value)
    settings = load_settings(env_file=None)
    assert settings.pd_url == "http://pd0:2379"
    assert settings.prometheus_url == "http://prometheus:9090"
    assert settings.db == Path("/data/tikvops.db")
    assert settings.health_addr == "0.0.0.0:9464"
    assert settings.log_format == "json"
    assert settings.channel == "tikv-ops"
    assert settings.approvers == ["U01ALICE", "S02ONCALL"]
    assert settings.uses_real_slack is with_slack
    assert settings.anthropic_api_key is None


def test_volumes_are_declared_and_bind_sources_exist(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for service in compose["services"].values():
        for source in mounts(service).values():
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
            else:
                assert source in declared, source
                used.add(source)
    assert used == declared


def test_grafana_datasource_points_at_prometheus(services: dict[str, Any]) -> None:
    provisioning = ROOT / mounts(services["grafana"])["/etc/grafana/provisioning"]
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert host_port(source["url"]) == ("prometheus", 9090)


# ---------------------------------------------------------------------------------------------
# Dockerfile and .dockerignore


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions per stage as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), " ".join(args.split())))
    return stages


def instructions(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [args for instr, args in stage if instr == name]


def dockerfile_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for args in instructions(stage, "ENV"):
        for item in args.split():
            key, _, value = item.partition("=")
            env[key] = value
    return env


def test_dockerfile_runtime_stage() -> None:
    *_, final = dockerfile_stages()
    assert instructions(final, "FROM")[0].startswith("python:3.11-slim")
    (user,) = instructions(final, "USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert json.loads(instructions(final, "VOLUME")[0]) == ["/data"]
    env = dockerfile_env(final)
    assert PurePosixPath(env["TIKVOPS_DB"]).parent == PurePosixPath("/data")
    host, port = parse_host_port(env["TIKVOPS_HEALTH_ADDR"])
    assert host == "0.0.0.0"
    assert instructions(final, "EXPOSE") == [str(port)]
    assert json.loads(instructions(final, "ENTRYPOINT")[0]) == ["tikvops"]
    assert json.loads(instructions(final, "CMD")[0]) == ["run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "tikvops" in scripts
    (healthcheck,) = instructions(final, "HEALTHCHECK")
    assert "/healthz" in healthcheck and "TIKVOPS_HEALTH_ADDR" in healthcheck
    # Only the built venv reaches the runtime image, not the sources.
    assert all(c.startswith("--from=") for c in instructions(final, "COPY"))


def test_dockerfile_installs_every_package_without_dev_extras() -> None:
    build, *_ = dockerfile_stages()
    installs = [a for a in instructions(build, "RUN") if "pip install" in a]
    assert installs and all("[dev]" not in a and "-e " not in a for a in installs)
    copied = set()
    for args in instructions(build, "COPY"):
        *sources, _dest = args.split()
        copied.update(s.rstrip("/") for s in sources)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied, f"packages not copied into the image: {packages - copied}"
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= copied
    ignore = dockerignore_patterns()
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not ignored(source, ignore), f"{source} is excluded by .dockerignore"


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """A simplified .dockerignore matcher (no `!` exceptions, which the file does not use)."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        pattern = raw.rstrip("/")
        anywhere = pattern.startswith("**/")
        for candidate in candidates:
            names = [candidate, *([candidate.split("/")[-1]] if anywhere else [])]
            if any(fnmatch.fnmatch(n, pattern.removeprefix("**/")) for n in names):
                return True
    return False


@pytest.mark.parametrize(
    "path", [".env", ".env.local", "tikvops.db", "x/y.db-wal", ".venv/bin/python", ".git/HEAD"]
)
def test_dockerignore_keeps_secrets_and_local_state_out(path: str) -> None:
    assert ignored(path, dockerignore_patterns())


@pytest.mark.parametrize("healthy", [True, False])
async def test_dockerfile_healthcheck_command_against_a_real_server(healthy: bool) -> None:
    *_, final = dockerfile_stages()
    argv = json.loads(instructions(final, "HEALTHCHECK")[0].split("CMD ", 1)[1])
    assert argv[:2] == ["python", "-c"]
    health = Health(poll_interval=15, slack_required=False)
    health.scheduler(True)
    if healthy:
        health.pd_ok()
    async with ObservabilityServer(BotMetrics(), health, "127.0.0.1", 0) as srv:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv[1:],
            env={**os.environ, "TIKVOPS_HEALTH_ADDR": f"0.0.0.0:{srv.port}"},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert (proc.returncode == 0) is healthy, stderr.decode()
    if not healthy:
        assert b"503" in stderr


# ---------------------------------------------------------------------------------------------
# deploy/: Prometheus config and the bot's alert rules


def test_alert_rules_use_metrics_the_bot_exports() -> None:
    rules = load_yaml("deploy/tikvops.rules.yml")
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {m for e in exprs for m in re.findall(r"\btikvops_\w+", e)}
    exported = {
        m for m in re.findall(r"^(tikvops_\w+?)(?:\{| )", BotMetrics().render()[0].decode(), re.M)
    }
    assert used, "no rule uses tikvops metrics"
    assert used <= exported, f"rules use metrics the bot does not export: {used - exported}"


@pytest.mark.prometheus
@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (Debian prometheus)")
def test_promtool_accepts_config_and_rules() -> None:
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "tikvops.rules.yml"]):
        done = subprocess.run(
            ["promtool", *args],
            check=False,
            cwd=ROOT / "deploy",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------------------------------
# manifest.yml (slack.md §6)

EXPECTED_SCOPES = {
    "commands",
    "chat:write",
    "users:read",
    "usergroups:read",
    # Finding a post whose answer was lost (conversations.history/replies): public, private.
    "channels:history",
    "groups:history",
    # Incident charts uploaded into threads (files_upload_v2).
    "files:write",
    # The app_mention event the bot answers.
    "app_mentions:read",
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return load_yaml("manifest.yml")


def test_manifest_socket_mode_app(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"]["major_version"] == 1
    assert set(manifest) <= {
        "_metadata",
        "display_information",
        "features",
        "oauth_config",
        "settings",
    }
    info = manifest["display_information"]
    assert 1 <= len(info["name"]) <= 35
    assert len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"] == {"is_enabled": True}  # no request_url in Socket Mode
    assert set(settings["event_subscriptions"]) == {"bot_events"}  # no request_url: Socket Mode
    assert set(settings) <= {
        "interactivity",
        "org_deploy_enabled",
        "socket_mode_enabled",
        "token_rotation_enabled",
        "event_subscriptions",
        "allowed_ip_address_ranges",
    }
    bot = manifest["features"]["bot_user"]
    assert bot == {"display_name": "tikvops", "always_online": True}


def test_manifest_slash_command(manifest: dict[str, Any]) -> None:
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/tikv"
    assert re.fullmatch(r"/\S{1,31}", command["command"])
    assert command["description"]
    assert command["usage_hint"] == "drain 4 | ack I-3 | silence I-3 2h | status | help"
    assert "url" not in command  # Socket Mode delivers it over the WebSocket


def test_manifest_scopes_are_the_minimal_set(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]
    assert set(scopes) == {"bot"}
    assert set(scopes["bot"]) == EXPECTED_SCOPES
    assert len(scopes["bot"]) == len(EXPECTED_SCOPES)


def _registered_events() -> set[str]:
    """The event types the bot registers listeners for (`app.event("...")` in bot/)."""
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "event"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def test_manifest_subscribes_to_exactly_the_events_the_bot_handles(
    manifest: dict[str, Any],
) -> None:
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    registered = _registered_events()
    assert registered, "no event listener found in bot/: the scan is broken"
    assert subscribed == registered
    assert manifest["features"]["app_home"]["home_tab_enabled"] is ("app_home_opened" in registered)
    if "app_mention" in subscribed:
        assert "app_mentions:read" in manifest["oauth_config"]["scopes"]["bot"]


def test_the_readme_names_every_scope_the_manifest_asks_for(manifest: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for scope in manifest["oauth_config"]["scopes"]["bot"]:
        assert f"`{scope}`" in readme, scope
