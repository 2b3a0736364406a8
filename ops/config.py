"""Typed settings read from the ``ops:`` key of Invoke's configuration.

Invoke merges its sources (collection defaults, ``invoke.yaml`` beside ``tasks.py``,
``INVOKE_OPS_*`` environment variables, ``-f FILE``); pydantic then validates the merged ``ops``
mapping. Every field has a default that fits DESIGN.md's zero-config layout, so a project that
follows the layout needs no configuration at all. Validation errors name the dotted path and
suggest the closest known key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from ops.errors import ConfigError

DEFAULT_CHECKPOINT_PATTERNS = ["*.pt", "*.pth", "*.bin", "*.safetensors", "*.onnx", "*.ckpt"]


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt setting silently ignored is worse than none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretsSettings(_Strict):
    required: list[str] | None = Field(
        default=None, description="keys the .env must set; default: every key of .env.example")
    key_names: list[str] = Field(
        default_factory=lambda: ["SECRET_KEY", "JWT_SECRET", "SESSION_SECRET"],
        description="keys whose values are cryptographic keys (strength-checked)")
    min_key_length: int = 32
    baseline: Path | None = Field(default=Path(".secrets.baseline"),
                                  description="detect-secrets baseline of accepted findings")
    exclude: list[str] = Field(
        default_factory=lambda: ["vendor/*", "node_modules/*", "*.min.js"],
        description="globs the hardcoded-secret scan skips (release files need no entry: their "
                    "digests and commit ids are recognised field by field)")
    max_file_bytes: int = Field(
        default=8 * 1024 * 1024, gt=0,
        description="tracked files larger than this are not read by the hardcoded-secret scan "
                    "(model weights, data dumps); they are counted in its message")
    min_distinct_chars: int = Field(
        default=10, description="a key with fewer distinct characters is too regular to be random")
    insecure_prefixes: list[str] = Field(
        default_factory=lambda: ["django-insecure-", "changeme", "change-me", "insecure",
                                 "secret", "dev-", "test-"],
        description="key prefixes frameworks and tutorials use for throwaway keys")
    providers: dict[str, str] = Field(
        default_factory=dict,
        description="scheme → 'module:factory' of a provider resolving kms://, vault://, awssm://")


class MigrationsSettings(_Strict):
    alembic_ini: Path = Field(
        default=Path("alembic.ini"),
        description="the alembic.ini to use; default: the root's, else the one found below it")
    alembic_section: str = Field(default="alembic",
                                 description="the ini section to read (alembic -n NAME)")
    script_location: Path | None = Field(
        default=None, description="a migrations folder with no alembic.ini (env.py, versions/)")
    version_locations: list[Path] | None = Field(
        default=None, description="the revision folders, when env.py picks them at run time "
                                  "(e.g. versions/postgresql)")
    changelog: list[Path] = Field(
        default_factory=lambda: [Path("docs/SCHEMA.md"), Path("CHANGELOG.md")])
    redis_schema: Path = Path("redis_schema.yaml")
    db_timeout_s: float = 3.0
    redis_sample: int = 1000


class ArtifactsSettings(_Strict):
    checkpoints_dir: Path = Path("checkpoints")
    patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_CHECKPOINT_PATTERNS))
    cache: bool = True
    cache_dir: Path = Path(".tminus/cache")


class RunbookSettings(_Strict):
    path: Path = Path("RUNBOOK.md")
    max_age_days: int = 90
    sections: dict[str, list[str]] = Field(default_factory=lambda: {
        "health": ["health", "health check", "health checks", "헬스", "상태 확인", "헬스체크"],
        "rollback": ["rollback", "roll back", "rolling back", "롤백", "복구"],
        "scaling": ["scaling", "scale", "capacity", "스케일링", "확장"],
        "monitoring": ["monitoring", "alerts", "alerting", "observability", "모니터링", "알림"],
        "contacts": ["emergency contacts", "contacts", "on-call", "escalation", "비상 연락처",
                     "연락처"],
    })
    link_timeout_s: float = 5.0
    prometheus_config: Path | None = Field(default=None, description=(
        "Prometheus config that promtool checks (with the rule files it lists); default: "
        "prometheus/prometheus.yml or prometheus.yml at the root"))


class ReleaseSettings(_Strict):
    branches: list[str] = Field(default_factory=lambda: ["main", "master"])
    remote: str = "origin"
    releases_dir: Path = Path("releases")
    ignore_tags: list[str] = Field(
        default_factory=list,
        description="tags that are not releases although they parse as versions (globs, e.g. "
                    "a mistyped v202030505)")
    image_prefix: str | None = Field(
        default=None, description="image repository prefix; default: the compose project name")


class ServiceSettings(_Strict):
    strategy: Literal["rolling", "recreate"] = "rolling"
    required: bool = True
    replicas: int = Field(default=1, ge=0,
                          description=("replicas on a first deploy; later deploys keep the count, "
                                       "never below the last one asked for"))


#: A Prometheus range: what a rule's ``window`` may say.
PROM_DURATION = re.compile(r"[1-9][0-9]*(ms|s|m|h)")
WatchAction = Literal["rollback", "rollback-service", "stop", "full-rollback", "warn"]


class WatchRule(_Strict):
    """One branch of the T-1 decision tree: breached when the new version's figure exceeds
    ``threshold`` over ``window`` with at least ``min_samples`` behind it; then ``action``."""

    enabled: bool = True
    threshold: float = 0.0
    window: str = Field(default="5m", description="a PromQL range: 30s, 5m, 1h")
    action: WatchAction = "rollback"
    min_samples: int = Field(default=100, ge=1,
                             description="requests (jobs, errors) before the rule may decide")
    query: str | None = Field(default=None, description=(
        "a PromQL that replaces the rule's own figure; {version} and {window} are filled in"))

    @field_validator("window")
    @classmethod
    def _is_range(cls, value: str) -> str:
        if not PROM_DURATION.fullmatch(value):
            raise ValueError("not a PromQL range (e.g. 30s, 5m, 1h)")
        return value


class ErrorRateRule(WatchRule):
    """API errors > 5 % → quick rollback."""

    threshold: float = 0.05


class P95Rule(WatchRule):
    """p95 > 2 x the baseline → quick rollback (``threshold`` is the factor)."""

    threshold: float = 2.0


class WorkerFailuresRule(WatchRule):
    """Worker failures > 50 % → roll back the worker service only."""

    threshold: float = 0.5
    action: WatchAction = "rollback-service"
    min_samples: int = Field(default=20, ge=1)


class DatabaseErrorsRule(WatchRule):
    """Database errors rising → stop and recommend ``rollback --with-db``; ``full-rollback``
    restores the backup this deploy took and rolls the code back (a database is restored only
    when configured so)."""

    action: WatchAction = "stop"
    min_samples: int = Field(default=3, ge=1)


class WatchSettings(_Strict):
    """The post-deploy watch's rules; defaults are the T-1 document's decision tree."""

    error_rate: ErrorRateRule = ErrorRateRule()
    p95: P95Rule = P95Rule()
    worker_failures: WorkerFailuresRule = WorkerFailuresRule()
    database_errors: DatabaseErrorsRule = DatabaseErrorsRule()
    worker_service: str = "worker"
    #: below this a doubled p95 is noise (20 ms → 60 ms on a busy host), not a regression
    p95_floor_ms: float = 100.0
    interval_s: float = Field(default=1.0, gt=0, description="seconds between evaluations")


class SwarmSettings(_Strict):
    """Swarm's rolling update, when ``backend: swarm``: Swarm rolls and rolls back itself."""

    update_parallelism: int = Field(default=1, ge=1,
                                    description="tasks replaced at a time (--update-parallelism)")
    update_delay_s: float = Field(default=2.0, ge=0, description="pause between batches")
    update_monitor_s: float = Field(
        default=5.0, gt=0, description="how long a new task must stay up before the next batch; "
                                       "a failure within it makes Swarm roll back")
    converge_timeout_s: float = Field(default=300.0, gt=0,
                                      description="longest wait for a service to converge")


class EnvironmentSettings(_Strict):
    env_file: Path = Path(".env")
    compose_file: Path | None = Field(
        default=None, description="default: docker-compose.yml or compose.yaml at the root")
    project_name: str | None = Field(
        default=None, description="compose project; default: <directory>-<environment>")
    health_url: HttpUrl = HttpUrl("http://127.0.0.1:8080/health")
    smoke_urls: list[HttpUrl] = Field(default_factory=list)
    database_url: str | None = Field(default=None, description="default: DATABASE_URL of env_file")
    redis_url: str | None = Field(default=None, description="default: REDIS_URL of env_file")
    services: dict[str, ServiceSettings] = Field(default_factory=dict)
    health_timeout_s: float = 90.0
    watch_s: float = 60.0
    prometheus_url: HttpUrl | None = Field(
        default=None, description="Prometheus that scrapes this stack; the watch then judges "
        "from PromQL, else from the entry point's counters and probes")
    haproxy_stats_url: HttpUrl | None = Field(
        default=None, description="the entry point's stats CSV, e.g. http://127.0.0.1:8404/stats;csv")
    watch: WatchSettings = WatchSettings()
    migrate: Literal["before", "after", "never"] = "before"
    db_rollback: Literal["restore", "downgrade"] = "restore"
    backend: Literal["compose", "swarm"] = Field(
        default="compose", description="what runs the stack: a compose project or a swarm")
    swarm: SwarmSettings = SwarmSettings()
    registry: str | None = Field(
        default=None,
        description="host[:port][/namespace] that `invoke build --push` pushes the release "
                    "images to; deploys then run them by content digest")

    @field_validator("database_url", "redis_url")
    @classmethod
    def _has_scheme(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError("not a URL (expected scheme://host/...)")
        return value


class BackupSettings(_Strict):
    dir: Path = Path("backups")
    keep: int = Field(default=7, ge=1)


class SmokeSettings(_Strict):
    requests: int = Field(default=20, ge=1)
    p95_ms: float = 500.0
    expect_status: str = "healthy"
    log_window_s: int = 300
    error_pattern: str = r"\bERROR\b"
    traffic_window_s: float = Field(default=3.0, gt=0, description=(
        "seconds of probes of smoke_urls over which the entry point's error rate is measured"))
    max_error_rate: float = 0.05


#: DESIGN.md: environment names are identifiers (they name directories, projects, locks).
ENV_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
ENV_NAME_RULE = "a lower-case letter, then up to 62 lower-case letters, digits, '-' or '_'"
_NAME_SHOWN = 40


def _shown_name(name: str) -> str:
    """A rejected name as the error shows it: quoted, escaped, and cut when long."""
    return repr(name[:_NAME_SHOWN]) + ("…" if len(name) > _NAME_SHOWN else "")


class Settings(_Strict):
    """Everything under the ``ops:`` key."""

    project_root: Path = Field(default=Path(), description="the service repository")
    secrets: SecretsSettings = SecretsSettings()
    migrations: MigrationsSettings = MigrationsSettings()
    artifacts: ArtifactsSettings = ArtifactsSettings()
    runbook: RunbookSettings = RunbookSettings()
    release: ReleaseSettings = ReleaseSettings()
    backup: BackupSettings = BackupSettings()
    smoke: SmokeSettings = SmokeSettings()
    audit_log: Path = Path("releases/deployments.jsonl")
    environments: dict[str, EnvironmentSettings] = Field(default_factory=lambda: {
        "production": EnvironmentSettings(),
        "staging": EnvironmentSettings(env_file=Path(".env.staging"),
                                       health_url=HttpUrl("http://127.0.0.1:8081/health")),
    })

    @field_validator("environments")
    @classmethod
    def _names_are_identifiers(cls, value: dict[str, EnvironmentSettings]
                               ) -> dict[str, EnvironmentSettings]:
        """An environment's name becomes a directory (``backups/<env>/``), a compose project and
        a lock file name, so it must be an identifier: ``../../tmp/x`` would write outside."""
        bad = [name for name in value if not ENV_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"{_shown_name(bad[0])} is not an environment name ({ENV_NAME_RULE})")
        return value

    def environment(self, name: str) -> EnvironmentSettings:
        """The settings of ``name``, the one place every task resolves its ``--env``; a name
        that is not an identifier is a usage error before it reaches a path."""
        if not ENV_NAME.fullmatch(name):
            raise ConfigError(f"{_shown_name(name)} is not an environment name",
                              hint=ENV_NAME_RULE)
        try:
            return self.environments[name]
        except KeyError:
            known = sorted(self.environments)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
            raise ConfigError(f"unknown environment {_shown_name(name)}", hint=hint) from None


def defaults() -> dict[str, Any]:
    """The defaults as plain data, for ``Collection.configure`` (so INVOKE_OPS_* can map)."""
    return Settings().model_dump(mode="json")


def load_settings(raw: Mapping[str, Any] | None, *,
                  sources: Mapping[str, str] | None = None) -> Settings:
    """Validate the merged ``ops`` mapping, turning pydantic's errors into one ConfigError.

    ``sources`` maps a dotted path (``ops.backup.keep``) to where its value came from when that
    is not a file (``INVOKE_OPS_BACKUP_KEEP``), so the error names what the person has to fix.
    """
    try:
        return Settings.model_validate(_plain(raw or {}))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources or {})) from None


def _plain(value: Any) -> Any:
    """Invoke hands us DataProxy objects; pydantic wants dicts and lists."""
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _describe(exc: ValidationError, sources: Mapping[str, str]) -> str:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        path = _labelled(".".join(["ops", *loc]), sources)
        if error["type"] == "extra_forbidden":
            suggestion = _suggest(loc)
            problems.append(f"{path}: unknown key" + (f" (did you mean {suggestion!r}?)"
                                                      if suggestion else ""))
        elif error["type"].startswith("url_"):
            problems.append(f"{path}: not a URL")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{path}: {message}")
    return "; ".join(problems)


def _labelled(path: str, sources: Mapping[str, str]) -> str:
    """``INVOKE_OPS_BACKUP_KEEP (ops.backup.keep)`` when the value at (or above) ``path`` came
    from that variable; the bare path otherwise."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        source = sources.get(".".join(parts[:end]))
        if source is not None:
            return f"{source} ({path})"
    return path


def _suggest(loc: list[str]) -> str | None:
    """The closest field name at the place an unknown key was found."""
    model: Any = Settings
    for part in loc[:-1]:
        fields = getattr(model, "model_fields", {})
        field = fields.get(part)
        if field is None:
            # inside a dict of environments/services: step into the value model
            model = _dict_value_model(model)
            continue
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
            else _dict_value_model(annotation)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None


def _dict_value_model(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", ())
    return args[-1] if args else annotation


def resolve_path(root: Path, path: Path) -> Path:
    """Settings paths are relative to the project root unless absolute."""
    return path if path.is_absolute() else root / path
