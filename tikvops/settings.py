"""Configuration: one pydantic-settings model read from the environment, `.env` and a TOML file.

Precedence, highest first: explicit overrides (command-line flags), environment variables,
`.env`, the TOML file given with `--config`, defaults. Secrets are `SecretStr`: they print as
`**********` and are never logged. `load_settings` turns validation failures into a
`ConfigError` with one readable line per problem, naming the environment variable to fix.

URLs with credentials (`http://user:pw@pd:2379`) are refused, with the credentials masked in
the message: PD's HTTP API has no password authentication (PD secures its API with TLS
client certificates), so a password in its URL can only be meant for something in between,
and a URL is printed in too many places (the start-up banner, `tikvops check`, incident
texts, logs) to carry a secret. The same holds for the Prometheus and Slack API URLs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from operator_tikv.urls import has_credentials, redact_url
from storage.dburl import DatabaseTarget

SLACK_DEFAULT_API_URL = "https://slack.com/api/"


class ConfigError(Exception):
    """Configuration that cannot start the program; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _env(name: str) -> Any:
    """A field read from exactly this environment variable (no prefix)."""
    return AliasChoices(name)


CommaList = Annotated[list[str], NoDecode]


def _check_url(value: str) -> None:
    """An http(s) URL without credentials, or ValueError saying why (credentials masked)."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https:// (got {redact_url(value)!r})")
    if has_credentials(value):
        raise ValueError(
            f"must not contain a user name or password (got {redact_url(value)!r}): "
            "tikvops never sends credentials taken from a URL (PD's API has no password "
            "authentication); remove the 'user:password@' part"
        )


class Settings(BaseSettings):
    """Everything tikvops can be configured with. Environment names are `TIKVOPS_<FIELD>`
    unless the field says otherwise (Slack and Anthropic keep their usual names)."""

    model_config = SettingsConfigDict(
        env_prefix="TIKVOPS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
        populate_by_name=True,
        validate_default=True,
    )
    toml_file: ClassVar[Path | None] = None

    # Where the cluster is.
    pd_url: str | None = Field(
        default=None, description="PD's HTTP address, e.g. http://pd:2379 (none: demo simulator)"
    )
    prometheus_url: str | None = Field(default=None, description="Prometheus base URL (optional)")

    # Links on incident cards (none: no links).
    grafana_url: str | None = Field(
        default=None,
        description="Grafana base URL for Dashboard links on incident cards, e.g. "
        "https://grafana.example.com (none: no dashboard links)",
    )
    grafana_tikv_dashboard: str = Field(
        default="RDVQiEzZz", min_length=1, description="UID of the TiKV-Details dashboard"
    )
    grafana_pd_dashboard: str = Field(
        default="Q6RuHYIWk", min_length=1, description="UID of the PD dashboard"
    )
    prometheus_external_url: str | None = Field(
        default=None,
        description="Prometheus as people's browsers reach it (its --web.external-url), for "
        "Query links on incident cards (none: no query links)",
    )
    pd_timeout: float = Field(
        default=5.0,
        gt=0,
        description="total seconds per PD request, retries included (region lists: 4x)",
    )
    pd_retries: int = Field(default=2, ge=0, le=10, description="retries of idempotent GETs")

    # Where state lives.
    db: DatabaseTarget = Field(
        default=Path("tikvops.db"),
        description="SQLite database path, or a postgresql:// URL (several replicas)",
    )

    # Slack.
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_BOT_TOKEN")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_APP_TOKEN")
    )
    slack_api_url: str = Field(
        default=SLACK_DEFAULT_API_URL, validation_alias=_env("SLACK_API_URL")
    )
    slack_app_id: str | None = Field(default=None, description="expected api_app_id")
    slack_team_id: str | None = Field(default=None, description="expected team_id")
    channel: str = Field(default="tikv-ops", description="channel for incidents and proposals")
    command_channels: CommaList = Field(
        default_factory=list, description="channels where /tikv is accepted (empty: any)"
    )

    # Approval policy.
    approvers: CommaList = Field(
        default_factory=list, description="Slack user IDs or user-group IDs allowed to approve"
    )
    approvers_high: CommaList = Field(
        default_factory=list, description="who may approve high-risk actions (empty: approvers)"
    )
    high_risk_approvals: int = Field(default=1, ge=1, le=5)
    self_approve_high: bool = Field(default=False)
    auto_approve_low: bool = Field(default=False)
    silence_needs_approver: bool = Field(
        default=True, description="silencing an incident needs a low-risk approver (false: anyone)"
    )
    proposal_ttl: float = Field(default=1800.0, gt=0, description="seconds until expiry")
    max_drained_stores: int = Field(default=1, ge=1)
    # On by default: whoever can run tikvops against this database and PD could already change
    # the cluster with pd-ctl or curl; going through tikvops adds preflight, verification and an
    # audit record as cli:user@host.
    allow_local_operator: bool = Field(
        default=True, description="the terminal operator may approve (tikvops drain 4 --yes)"
    )

    # Diagnosis.
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("ANTHROPIC_API_KEY")
    )
    anthropic_model: str = Field(default="claude-sonnet-5-5")
    anthropic_timeout: float = Field(default=30.0, gt=0)
    anthropic_max_retries: int = Field(default=2, ge=0, le=10)

    # Monitor thresholds and grace periods.
    poll_interval: float = Field(default=15.0, gt=0, description="seconds between monitor ticks")
    latency_threshold_ms: float = Field(default=100.0, gt=0)
    latency_grace: float = Field(default=60.0, ge=0)
    disk_threshold: float = Field(default=0.70, gt=0, lt=1)
    disk_grace: float = Field(default=0.0, ge=0)
    disconnected_grace: float = Field(default=0.0, ge=0)
    region_health_grace: float = Field(
        default=60.0,
        ge=0,
        description="seconds a region-health condition (down, pending, missing or extra peers) "
        "must hold before it opens an incident of its own",
    )
    # Why 60 s: PD rebalances all the time, and every region it moves is for a moment a
    # pending peer (the new learner catching up) and an extra peer (the old one not yet
    # removed) on healthy stores. With 0 the scenario tests opened 8, 12, 3 and 17 parents for
    # store down, down-then-back, slow store and disk filling (bench/correlation.txt), nearly
    # all of them ordinary balancing. 60 s is the `for: 1m` of PD's own alert rules, and four
    # cycles at the default poll interval. The grace gates only an incident of their own:
    # region health that is a consequence of an unhealthy store attaches to that store's
    # incident at once (engine.correlation), so a store failure is told no later.
    hot_write_share: float = Field(default=0.5, gt=0, le=1)
    hot_write_min_regions: int = Field(default=4, ge=1)
    resolve_after: float = Field(default=60.0, ge=0, description="seconds clear before resolve")
    reminder_interval: float = Field(default=600.0, gt=0)
    leader_poll: float = Field(
        default=5.0,
        gt=0,
        description="seconds between leader-election polls of replicas on PostgreSQL "
        "(a dead leader is replaced within two of them)",
    )

    # Self-observation.
    health_addr: str = Field(default="127.0.0.1:9464", description="/healthz and /metrics")
    log_format: Literal["text", "json"] = Field(default="text")
    log_level: str = Field(default="INFO")

    # Several clusters: `[clusters.NAME]` tables of the TOML file, whose keys are the setting
    # names above (lower case, no prefix) that may differ per cluster (`CLUSTER_KEYS`). Without
    # any, the settings above are one cluster named `default`.
    clusters: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="[clusters.NAME] tables: per-cluster settings"
    )

    # --- Production connectivity: cluster TLS, several PD members, Prometheus auth -----------
    # PEM paths as pd-ctl takes them (--cacert, --cert, --key), for PD and TiKV status ports.
    tls_ca: Path | None = Field(default=None, description="cluster CA certificate (PEM)")
    tls_cert: Path | None = Field(default=None, description="client certificate (PEM)")
    tls_key: Path | None = Field(default=None, description="client private key (PEM)")
    tls_insecure_skip_verify: bool = Field(
        default=False, description="labs only: do not verify servers' certificates (warned)"
    )
    # Prometheus: basic auth or a bearer token (from the environment or a file), its own TLS.
    prometheus_username: str | None = Field(default=None)
    prometheus_password: SecretStr | None = Field(default=None)
    prometheus_bearer_token: SecretStr | None = Field(default=None)
    prometheus_bearer_token_file: Path | None = Field(default=None)
    prometheus_tls_ca: Path | None = Field(default=None)
    prometheus_tls_cert: Path | None = Field(default=None)
    prometheus_tls_key: Path | None = Field(default=None)
    prometheus_tls_insecure_skip_verify: bool = Field(default=False)

    @field_validator("pd_url")
    @classmethod
    def _pd_members(cls, value: str | None) -> str | None:
        """A comma-separated list of PD members (like pd-ctl's -u), each an http(s) URL."""
        if value is None:
            return None
        members = [m.strip() for m in value.split(",") if m.strip()]
        if not members:
            raise ValueError("no PD address given")
        for member in members:
            if not member.startswith(("http://", "https://")):
                raise ValueError(
                    f"each PD address must start with http:// or https:// ({redact_url(member)!r})"
                )
            _check_url(member)
        return ",".join(members)

    @property
    def pd_urls(self) -> list[str]:
        """The PD members, in the order given (empty without `pd_url`)."""
        return [m for m in (self.pd_url or "").split(",") if m]

    def connectivity_problems(self) -> list[str]:
        """One line per inconsistent TLS or Prometheus-auth setting (checked when the clients
        are built, `tikvops.connect`)."""
        problems = []
        for prefix in ("tls", "prometheus_tls"):
            cert, key = getattr(self, f"{prefix}_cert"), getattr(self, f"{prefix}_key")
            if (cert is None) != (key is None):
                given, missing = ("cert", "key") if key is None else ("key", "cert")
                problems.append(
                    f"TIKVOPS_{prefix.upper()}_{given.upper()} is set but "
                    f"TIKVOPS_{prefix.upper()}_{missing.upper()} is not: a client certificate "
                    "needs both"
                )
        basic = self.prometheus_username is not None or self.prometheus_password is not None
        bearer = self.prometheus_bearer_token is not None
        if bearer and self.prometheus_bearer_token_file is not None:
            problems.append(
                "TIKVOPS_PROMETHEUS_BEARER_TOKEN and TIKVOPS_PROMETHEUS_BEARER_TOKEN_FILE are both "
                "set: give one"
            )
        if basic and (bearer or self.prometheus_bearer_token_file is not None):
            problems.append("Prometheus basic auth and a bearer token are both set: give one")
        if (self.prometheus_password is not None) and self.prometheus_username is None:
            problems.append(
                "TIKVOPS_PROMETHEUS_PASSWORD is set without TIKVOPS_PROMETHEUS_USERNAME"
            )
        return problems

    # --- end of production connectivity -------------------------------------------------------

    @field_validator("clusters")
    @classmethod
    def _hide_cluster_secrets(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """A cluster's secrets (Prometheus password, bearer token) are `SecretStr` from the
        moment they are read, so the settings never print them."""
        secret = {
            name
            for name, info in cls.model_fields.items()
            if SecretStr in getattr(info.annotation, "__args__", ())
        }
        return {
            cluster: {
                key: SecretStr(item) if key in secret and isinstance(item, str) else item
                for key, item in table.items()
            }
            for cluster, table in value.items()
        }

    @field_validator("command_channels", "approvers", "approvers_high", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("prometheus_url", "slack_api_url", "grafana_url", "prometheus_external_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None if value == "" else value
        _check_url(value)
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str | None) -> str:
        value = value or SLACK_DEFAULT_API_URL
        return value if value.endswith("/") else value + "/"

    @field_validator("health_addr")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"must be HOST:PORT, e.g. 127.0.0.1:9464 (got {value!r})")
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp- (Socket Mode)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)

    @property
    def uses_real_slack(self) -> bool:
        return self.slack_bot_token is not None and self.slack_app_token is not None


def env_name(field: str) -> str:
    """The environment variable a user sets for `field`."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str):
            return first
    return f"TIKVOPS_{field.upper()}"


def load_settings(
    config_file: Path | None = None, env_file: Path | None = Path(".env"), **overrides: Any
) -> Settings:
    """Read the settings, or raise ConfigError with one line per problem."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError([f"--config: file {config_file} does not exist"])
    overrides = {k: v for k, v in overrides.items() if v is not None}

    class _Configured(Settings):
        toml_file: ClassVar[Path | None] = config_file

    try:
        loaded = _Configured(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML/.env
        raise ConfigError([f"configuration could not be read: {exc}"]) from None
    settings = Settings.model_validate(loaded.model_dump())
    from tikvops.cluster_settings import cluster_configs  # it builds on `Settings`

    cluster_configs(settings)  # raises ConfigError, one line per problem
    return settings


def describe_errors(exc: ValidationError) -> list[str]:
    """One line per problem of a settings validation: the setting's name, then why."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = err["loc"]
        field = str(loc[0]) if loc else "?"
        name = env_name(field) if field in Settings.model_fields else field
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {message}")
    return lines
