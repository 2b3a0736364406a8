"""Where the stack runs: one interface, one implementation per orchestrator.

The deploy, rollback, scale and smoke-test actions talk to a ``Backend`` only, never to compose
or swarm directly. The lock, the action wrapper (``action.changing_action``), the audit line, the
intent/recovery record and the post-deploy watch stay backend-independent around it.

A backend can:

- ``replicas(service)``: the running replicas, each with id, name, version (the
  ``tminus.version`` label), health, and node (None on a single engine);
- ``switch(service, version, strategy=…, options=…)``: put ``version`` in place; compose plans
  it with a pure planner from ``strategies/`` and runs the plan with the one executor;
  swarm hands it to ``docker service update --update-order start-first`` and waits for
  convergence. Returns a ``Rollout``;
- ``scale(service, count, step=…)``: up at once, down ``step`` at a time, drained;
- ``ensure_infrastructure(version, services)``: start the unversioned services (proxy, db,
  redis) that are not running;
- ``migrate(service, version)``: the one-off ``alembic upgrade head`` of that release;
- ``health()``: the smoke test's facts about the replicas (running/desired, unhealthy ones);
- ``reach(urls)``: the stateful services' URLs (Postgres, Redis) as this process can connect to
  them, for as long as the block runs: backup and restore speak to the stores through it.
  Compose: the URLs as configured (the ports the compose file publishes). Swarm: a tunnel
  through the manager's engine to a relay task on the stack's network;
- ``cluster_lock(action, version, wait_s)``: the lock operators on other machines share
  (a swarm's), held inside the environment's file lock; None on compose.

``backend_for(stack)`` picks the implementation the environment configures
(``ops.environments.<env>.backend: compose | swarm``, default compose); ``store_route(root,
settings, env)`` is the ``reach`` of that backend for the backup and restore, which on compose
need no engine at all.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TextIO

from ops.atomic import atomic_write_text, make_ignored_dir
from ops.bounded import Refused, loads_json, read_capped
from ops.config import Settings
from ops.deploy.stack import Stack, open_stack, wait_ready
from ops.deploy.strategies import planner
from ops.deploy.strategies.execute import execute
from ops.deploy.strategies.plan import (
    Rollout,
    RolloutOptions,
    ScaleChange,
    ServiceState,
)
from ops.deploy.strategies.scale import plan_scale
from ops.errors import ConfigError, DeployFailed, OpsError
from ops.report import Finding, failed, passed, skipped, warned
from ops.runtime.alembic_scripts import (
    ScriptGraph,
    discover_configured,
    judge,
    revisions_in_texts,
)
from ops.runtime.docker_engine import ContainerState
from ops.runtime.envfile import service_url
from ops.runtime.image_files import image_identity, image_texts
from ops.runtime.postgres import probe_alembic_revisions as alembic_revisions
from ops.versioning import ReleaseVersion

__all__ = ["Backend", "ComposeBackend", "Direct", "Replica", "Rollout", "RolloutOptions",
           "ScaleChange", "StoreRoute", "backend_for", "store_route"]


@dataclass(frozen=True)
class Replica:
    """One running replica of a service, whatever runs it."""

    id: str
    name: str
    service: str
    version: str | None
    health: str | None  # healthy | unhealthy | starting | None (no HEALTHCHECK)
    status: str = "running"
    node: str | None = None  # the swarm node; None on a single engine
    #: when its process last started: a replica that crashed and was restarted in place (a
    #: restart policy) keeps its id but not this
    started_at: str | None = None

    @property
    def ready(self) -> bool:
        return self.status == "running" and self.health in {None, "healthy"}

    @classmethod
    def of(cls, container: ContainerState) -> Replica:
        return cls(container.id, container.name, container.service, container.version,
                   container.health, container.status, started_at=container.started_at)


class NotShown(Exception):
    """Why the database could not be shown to be at the release's head (the migration runs)."""


class Backend(Protocol):
    """What the deploy side needs from an orchestrator (see the module docstring)."""

    name: str

    def replicas(self, service: str) -> list[Replica]: ...

    def switch(self, service: str, version: ReleaseVersion, *, strategy: str,
               options: RolloutOptions) -> Rollout: ...

    def scale(self, service: str, count: int, *, step: int) -> ScaleChange: ...

    def ensure_infrastructure(self, version: ReleaseVersion, services: list[str]) -> None: ...

    def migrate(self, service: str, version: ReleaseVersion) -> None: ...

    def health(self) -> list[Finding]: ...

    def reach(self, urls: Sequence[str | None]
              ) -> AbstractContextManager[list[str | None]]: ...

    def cluster_lock(self, action: str, version: str | None,
                     wait_s: float) -> AbstractContextManager[Any] | None: ...


class StoreRoute(Protocol):
    """How backup and restore connect to the stores (``Backend.reach``), and the lock a
    restore holds besides the environment's file lock (a swarm's, shared by operators on
    other machines; None where there is none)."""

    def reach(self, urls: Sequence[str | None]
              ) -> AbstractContextManager[list[str | None]]: ...

    def cluster_lock(self, action: str, version: str | None,
                     wait_s: float) -> AbstractContextManager[Any] | None: ...


class Direct:
    """The stores answer where the configuration says (compose publishes their ports)."""

    @contextmanager
    def reach(self, urls: Sequence[str | None]) -> Iterator[list[str | None]]:
        yield list(urls)

    def cluster_lock(self, action: str, version: str | None,
                     wait_s: float) -> AbstractContextManager[Any] | None:
        return None


class ComposeBackend:
    """A compose project on one Docker engine: today's behaviour, planned and executed."""

    name = "compose"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    # --- reading -------------------------------------------------------------------------------

    def replicas(self, service: str) -> list[Replica]:
        return [Replica.of(c) for c in self.stack.running(service)]

    def state(self, service: str) -> ServiceState:
        """The planner's input: every container of ``service``, stopped ones included."""
        services = self.stack.versioned_services()
        return ServiceState(service, tuple(self.stack.containers(service, include_stopped=True)),
                            default_replicas=self.stack.replicas_default(service),
                            routed=bool(services) and services[0] == service,
                            asked=self.stack.replicas_asked(service))

    # --- changing ------------------------------------------------------------------------------

    def switch(self, service: str, version: ReleaseVersion, *, strategy: str,
               options: RolloutOptions) -> Rollout:
        plan = planner(strategy)(self.state(service), version.tag, options)
        self.stack.steps.say(f"[{service}] {strategy}")
        return execute(self.stack, plan, on_started=options.on_started,
                       on_ready=options.on_ready)

    def scale(self, service: str, count: int, *, step: int) -> ScaleChange:
        state = self.state(service)
        versions = {c.version for c in state.running}
        if len(versions) > 1:
            listed = ", ".join(sorted(map(str, versions)))
            raise DeployFailed(f"{service} runs several versions ({listed})",
                               hint="finish or repeat the deploy first")
        plan = plan_scale(state, count, step=step)
        execute(self.stack, plan)
        return ScaleChange(service, len(state.running), count, plan.version)

    def ensure_infrastructure(self, version: ReleaseVersion, services: list[str]) -> None:
        """Start the unversioned services (proxy, db, redis) when any of them is not running."""
        stack = self.stack
        infra = [s for s in stack.all_services() if s not in services]
        if not infra:
            return
        missing = [s for s in infra if not stack.running(s)]
        if not (stack.dry_run or missing):
            return
        with stack.steps.step(f"start infrastructure: {', '.join(missing or infra)}"):
            stack.run_at(version.tag, stack.compose.up(missing or infra, no_recreate=True))
            if not stack.dry_run:
                ids = [c.id for s in missing for c in stack.running(s)]
                wait_ready(stack, ids, timeout_s=stack.env.health_timeout_s,
                           what=", ".join(missing))

    def migrate(self, service: str, version: ReleaseVersion) -> None:
        """``alembic upgrade head`` in a one-off container of the new version — unless the
        database already records exactly the heads of that release's migrations (a query and a
        read of the image's revision files, no container)."""
        stack = self.stack
        if not stack.dry_run:
            with stack.steps.step(f"migrations: is the database at the head of {version}?") as rec:
                heads, why = self.database_at_head(service, version)
                rec.detail = (f"yes, at {', '.join(heads)}: no migration container"
                              if heads else f"running alembic ({why})")
            if heads:
                return
        with stack.steps.step(f"migrations: alembic upgrade head ({service} {version})"):
            stack.run_at(version.tag, stack.compose.migrate(service), timeout=600)

    def database_at_head(self, service: str, version: ReleaseVersion
                         ) -> tuple[tuple[str, ...], str]:
        """The heads when the database records exactly the heads of the migrations inside
        ``version``'s image of ``service``; else () and why that could not be shown (then the
        migration container runs, as it always did)."""
        stack = self.stack
        url = service_url(stack.root, stack.env.env_file, stack.env.database_url,
                          "DATABASE_URL")
        if not url or stack.client is None:
            return (), "no database URL or engine to ask"
        try:
            heads = self.image_heads(service, version)
        except NotShown as why:
            return (), str(why)
        try:
            current = alembic_revisions(url, timeout_s=2.0)
        except OpsError:
            return (), "the database did not answer from here"
        if current is None or set(current) != set(heads):
            return (), f"database at {', '.join(current or ()) or 'no revision'}"
        return heads, ""

    def image_heads(self, service: str, version: ReleaseVersion) -> tuple[str, ...]:
        """The Alembic heads of the revision files inside the release's image (read, parsed,
        never run: the image's WORKDIR plus the repository's relative migrations folder)."""
        stack = self.stack
        reference = next((i.reference for i in stack.images(version.tag)
                          if i.service == service), None)
        identity = image_identity(stack.client, reference) if reference else None
        image_id, workdir = identity or ("", None)
        if reference is None or workdir is None:
            raise NotShown("the image names no working directory")
        cache = heads_cache_path(stack.root)
        known = read_heads_cache(cache)
        if image_id in known:
            return known[image_id]
        try:
            chosen = discover_configured(stack.root, stack.settings.migrations).chosen
            folders = [PurePosixPath(workdir) / d.resolve().relative_to(stack.root.resolve())
                       .as_posix() for d in (chosen.version_dirs if chosen else ())]
        except (OpsError, ValueError):
            raise NotShown("the migrations folder is not known") from None
        texts: dict[str, str] = {}
        for folder in folders:
            found = image_texts(stack.client, reference, str(folder))
            if found is None:
                raise NotShown(f"{folder} is not in {reference}")
            texts.update(found)
        graph = ScriptGraph(None, revisions_in_texts(texts))
        judge(graph)
        if not (graph.sound and graph.heads):
            raise NotShown("the image's revisions do not form one sound graph")
        write_heads_cache(cache, {**known, image_id: graph.heads})
        return graph.heads

    def reach(self, urls: Sequence[str | None]) -> AbstractContextManager[list[str | None]]:
        return Direct().reach(urls)

    def cluster_lock(self, action: str, version: str | None,
                     wait_s: float) -> AbstractContextManager[Any] | None:
        return None  # one host: the environment's file lock is the whole lock

    # --- the smoke test's facts ----------------------------------------------------------------

    def health(self) -> list[Finding]:
        """Per service: containers present, running, and healthy where they have a check."""
        stack = self.stack
        if stack.client is None:
            return [skipped("smoke.containers", "no Docker engine answers")]
        by_service: dict[str, list[ContainerState]] = {}
        for container in stack.containers(include_stopped=True):
            by_service.setdefault(container.service, []).append(container)
        findings = []
        for service in stack.all_services():
            found = by_service.get(service, [])
            fid = f"smoke.containers.{service}"
            if not found:
                finding = failed if stack.required(service) else warned
                findings.append(finding(fid, f"{service}: no containers",
                                        hint="deploy, or scale it up"))
                continue
            bad = [c for c in found if not c.ready]
            versions = sorted({c.version for c in found if c.version})
            tail = f" at {', '.join(versions)}" if versions else ""
            if bad:
                findings.append(failed(fid, f"{service}: {len(bad)} of {len(found)} not healthy: "
                                       + ", ".join(f"{c.name} ({c.health or c.status})"
                                                   for c in bad)))
            else:
                findings.append(passed(fid, f"{service}: {len(found)} running and healthy{tail}"))
        return findings


#: Images whose migration heads are remembered (a few releases' worth).
HEADS_CACHE_ENTRIES = 32


def heads_cache_path(root: Path) -> Path:
    """Migration heads by image id: an image's files never change, so reading them once is
    enough (``.tminus/`` keeps itself out of ``git status``)."""
    return root / ".tminus" / "cache" / "migration-heads.json"


def read_heads_cache(path: Path) -> dict[str, tuple[str, ...]]:
    """What an earlier deploy learnt; anything unreadable or odd counts as nothing learnt."""
    try:
        data = loads_json(read_capped(path, 64 * 1024))
    except (OSError, ValueError, Refused):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): tuple(str(h) for h in v) for k, v in data.items()
            if isinstance(v, list) and v and all(isinstance(h, str) for h in v)}


def write_heads_cache(path: Path, heads: dict[str, tuple[str, ...]]) -> None:
    newest = dict(list(heads.items())[-HEADS_CACHE_ENTRIES:])
    try:
        make_ignored_dir(path.parent)
        atomic_write_text(path, json.dumps({k: list(v) for k, v in newest.items()},
                                           sort_keys=True) + "\n")
    except OSError:
        pass  # a cache that cannot be written costs the next deploy one read of the image


#: name → "module:class". Loaded by name: the swarm module imports this one (its types), and a
#: compose-only environment never loads swarm's code.
BACKENDS: dict[str, str] = {
    "compose": "ops.deploy.backend:ComposeBackend",
    "swarm": "ops.deploy.swarm:SwarmBackend",
}


def backend_for(stack: Stack) -> Backend:
    """The backend the environment configures (``backend: compose | swarm``)."""
    name = stack.env.backend
    where = BACKENDS.get(name)
    if where is None:
        raise ConfigError(f"unknown backend {name!r}",
                          hint=f"ops.environments.{stack.env_name}.backend: "
                               + " or ".join(BACKENDS))
    module_name, _, attr = where.partition(":")
    try:
        module = importlib.import_module(module_name)
        factory: Callable[[Stack], Backend] = getattr(module, attr)
    except (ModuleNotFoundError, AttributeError) as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name != module_name:
            raise
        raise ConfigError(f"the {name} backend is not available yet",
                          hint=f"set ops.environments.{stack.env_name}.backend: compose") from None
    return factory(stack)


def store_route(root: Path, settings: Settings, env: str, *,
                out: TextIO | None = None) -> StoreRoute:
    """How backup and restore reach ``env``'s Postgres and Redis: on compose directly (no
    engine is asked, so a backup needs none), on any other backend through its ``reach``."""
    if settings.environment(env).backend == ComposeBackend.name:
        return Direct()
    return backend_for(open_stack(root, settings, env, out=out))
