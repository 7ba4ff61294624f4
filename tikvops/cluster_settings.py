"""Several clusters in one configuration: the `[clusters.NAME]` tables checked and turned into
each cluster's effective settings (`cluster_configs`), one `ConfigError` line per problem."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from tikvops.settings import ConfigError, Settings, describe_errors

DEFAULT_CLUSTER = "default"
"""The cluster the single-cluster settings (no `[clusters.NAME]` table) are."""

CLUSTER_KEYS: frozenset[str] = frozenset(
    {
        "pd_url",
        "prometheus_url",
        "pd_timeout",
        "pd_retries",
        "channel",
        "approvers",
        "approvers_high",
        "high_risk_approvals",
        "self_approve_high",
        "auto_approve_low",
        "silence_needs_approver",
        "proposal_ttl",
        "max_drained_stores",
        "poll_interval",
        "latency_threshold_ms",
        "latency_grace",
        "disk_threshold",
        "disk_grace",
        "disconnected_grace",
        "region_health_grace",
        "hot_write_share",
        "hot_write_min_regions",
        "resolve_after",
        "tls_ca",
        "tls_cert",
        "tls_key",
        "tls_insecure_skip_verify",
        "prometheus_username",
        "prometheus_password",
        "prometheus_bearer_token",
        "prometheus_bearer_token_file",
        "prometheus_tls_ca",
        "prometheus_tls_cert",
        "prometheus_tls_key",
        "prometheus_tls_insecure_skip_verify",
    }
)
"""The settings a `[clusters.NAME]` table may set; every other key is refused at start."""

_CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

RESERVED_CLUSTER_NAMES: frozenset[str] = frozenset(
    {
        "help",
        "status",
        "clusters",
        "incidents",
        "incident",
        "proposals",
        "proposal",
        "approve",
        "reject",
        "cancel",
        "killswitch",
        "kill",
        "observe",
        "all",
    }
)
"""Names a cluster may not take: they read as a command word after `/tikv`."""


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """One cluster: its name and its effective settings (the global ones, overridden by its
    `[clusters.NAME]` table)."""

    name: str
    settings: Settings


def cluster_configs(settings: Settings) -> tuple[ClusterConfig, ...]:
    """The clusters the settings describe, in the order given: the `[clusters.NAME]` tables,
    or, without any, one cluster named `default` from the global settings. Raises ConfigError
    with one line per problem (unknown keys, a bad name, a bad value, two clusters on one
    channel, a cluster without a PD address when another has one)."""
    if not settings.clusters:
        return (ClusterConfig(DEFAULT_CLUSTER, settings),)
    problems: list[str] = []
    base = settings.model_dump(exclude={"clusters"})
    configs: list[ClusterConfig] = []
    seen: dict[str, str] = {}
    by_channel: dict[str, list[str]] = {}
    for name, table in settings.clusters.items():
        where = f"[clusters.{name}]"
        if not _CLUSTER_NAME.match(name):
            problems.append(
                f"{where}: bad cluster name {name!r}: use 1-32 lower-case letters, digits, '-' "
                "or '_', starting with a letter"
            )
            continue
        if name in RESERVED_CLUSTER_NAMES:
            problems.append(
                f"{where}: {name!r} is a /tikv command word and cannot name a cluster; "
                "choose another name"
            )
            continue
        if name.lower() in seen:
            problems.append(f"{where}: the cluster name {name!r} is given twice")
            continue
        seen[name.lower()] = name
        by_channel.setdefault(str(table.get("channel", settings.channel)), []).append(name)
        unknown = sorted(set(table) - CLUSTER_KEYS)
        for key in unknown:
            hint = (
                "it is global: set it outside [clusters.*]"
                if key in Settings.model_fields
                else "not a setting"
            )
            problems.append(f"{where}: unknown key {key!r} ({hint})")
        if unknown:
            continue
        try:
            effective = Settings.model_validate({**base, **table})
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=False):
                key = str(err["loc"][0]) if err["loc"] else "?"
                problems.append(f"{where} {key}: {err['msg'].removeprefix('Value error, ')}")
            continue
        problems.extend(f"{where}: {line}" for line in effective.connectivity_problems())
        configs.append(ClusterConfig(name, effective))
    for channel, names in by_channel.items():
        if len(names) > 1:
            problems.append(
                f"clusters {', '.join(names)} share the channel {channel!r}: give each cluster "
                'its own channel (channel = "..." in its [clusters.NAME] table)'
            )
    with_pd = [c.name for c in configs if c.settings.pd_url]
    if with_pd:
        problems.extend(
            f"[clusters.{c.name}]: no pd_url: every cluster needs its PD address"
            for c in configs
            if not c.settings.pd_url
        )
    if problems:
        raise ConfigError(problems)
    return tuple(configs)


def chosen_cluster(
    settings: Settings, name: str | None, *, command: str, **over: str | None
) -> ClusterConfig:
    """The cluster a one-cluster command (`tikvops check`, `tikvops eval`) works on: `name`
    (`--cluster NAME`), or the only one. `over` are the command's own options (`pd_url`,
    `prometheus_url`), applied over that cluster's settings. Raises ConfigError, in one line
    listing the clusters, for an unknown name or a configuration with several clusters and no
    name."""
    configs = cluster_configs(settings)
    names = ", ".join(c.name for c in configs)
    if name is None and len(configs) > 1:
        raise ConfigError(
            [
                f"this configuration has several clusters ({names}): choose one with "
                f"`tikvops --cluster NAME {command}`"
            ]
        )
    found = configs[0] if name is None else next((c for c in configs if c.name == name), None)
    if found is None:
        raise ConfigError([f"there is no cluster '{name}': the clusters are {names}"])
    given = {key: value for key, value in over.items() if value is not None}
    if not given:
        return found
    base = found.settings.model_dump(exclude={"clusters"})
    try:
        return ClusterConfig(found.name, Settings.model_validate({**base, **given}))
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None


__all__ = [
    "CLUSTER_KEYS",
    "DEFAULT_CLUSTER",
    "RESERVED_CLUSTER_NAMES",
    "ClusterConfig",
    "chosen_cluster",
    "cluster_configs",
]
