"""The vocabulary of a rollout plan: what a planner sees, the steps it plans, what it ends with.

A planner is pure: it reads a ``ServiceState`` (the replicas the engine reports, stopped ones
included) and returns a ``Plan``, a list of ``Step`` values. Steps that issue commands expose
them as argv (``commands``), so a test asserts the planned command lines without an engine, the
way Kamal tests its commands; the executor (``execute.py``) is the one place that runs them.

Containers the plan itself starts cannot be named in advance: ``WaitHealthy`` and the failure
path refer to them as "the new replicas", which the executor learns when it starts them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ops.runtime.compose import Compose, remove_containers, stop_containers
from ops.runtime.docker_engine import ContainerState
from ops.runtime.process import Argv

#: Seconds ``docker stop`` waits before SIGKILL: the app's drain period plus requests in flight.
STOP_GRACE_S = 20


@dataclass(frozen=True)
class RolloutOptions:
    """How a switch may proceed.

    ``batch``: old replicas drained and stopped together; 0 (the default) is all of them at
    once — one drain period for the lot — which is safe once the new replicas are healthy and
    routed (the service never has fewer routed replicas than before). ``replicas``: the count
    wanted (default: as many as run now, else the configured count).
    """

    batch: int = 0
    replicas: int | None = None
    grace_s: int = STOP_GRACE_S
    #: called once the new replicas have been started (or recreated), before waiting for their
    #: health: the deploy settles its latency baseline there, measured while they started
    on_started: Callable[[], None] | None = field(default=None, compare=False)
    #: called once the new replicas are healthy (and routed), before any old one is touched:
    #: the deploy starts the other services' switches there, so a release that fails its
    #: health check is discarded before anything else changed
    on_ready: Callable[[], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ServiceState:
    """One service as the engine reports it: the planner's whole input."""

    service: str
    containers: tuple[ContainerState, ...]
    default_replicas: int = 1
    #: the health URL reaches this service through the entry point (the proxy routes to it)
    routed: bool = False
    #: the count the operator last asked for (audit log, else explicit configuration): fewer
    #: running means replicas were lost since, and the deploy starts them again
    asked: int | None = None

    def wanted(self, options: RolloutOptions, found: int) -> tuple[int, Note | None]:
        """How many replicas the new version runs, and a note when that restores lost ones:
        ``--replicas`` when given; else what runs now (``found``), raised to the count last
        asked for -- never lowered, so replicas started outside tminus are not taken away."""
        if options.replicas:
            return options.replicas, None
        if self.asked is not None and found < self.asked:
            return self.asked, Note(f"  {self.service}: restoring {self.asked} replicas "
                                    f"({found} running; {self.asked} were asked for last)")
        return found or self.default_replicas, None

    @property
    def running(self) -> list[ContainerState]:
        return [c for c in self.containers if c.status == "running"]

    @property
    def stopped(self) -> list[ContainerState]:
        return [c for c in self.containers if c.status != "running"]


class Versioned(Protocol):
    """A container or a replica: anything that carries the release label."""

    @property
    def version(self) -> str | None: ...


def current_version(containers: Iterable[Versioned]) -> str | None:
    """The version most replicas run (after an interrupted deploy there can be two: which one
    ran *before* is the deploy's recorded intent, ``ops.deploy.intent``, never this guess)."""
    versions = Counter(c.version for c in containers if c.version)
    return versions.most_common(1)[0][0] if versions else None


# --- steps ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One named step; ``title`` is the progress line, ``commands`` what it runs (if anything)."""

    @property
    def title(self) -> str:
        raise NotImplementedError

    def commands(self, compose: Compose) -> list[tuple[str | None, Argv]]:
        """(TMINUS_VERSION for the call or None, argv) in order; empty for a wait."""
        return []


@dataclass(frozen=True)
class RemoveStopped(Step):
    """Exited or half-created replicas of an interrupted run would confuse compose's count."""

    service: str
    ids: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"remove {len(self.ids)} stopped {self.service} container(s) left behind"

    def commands(self, compose: Compose) -> list[tuple[str | None, Argv]]:
        return [(None, remove_containers(self.ids))]


@dataclass(frozen=True)
class StartBeside(Step):
    """``up --no-recreate --scale service=N``: compose adds containers and touches none."""

    service: str
    version: str
    running: int
    total: int
    label: str = ""  # a title other than the rolling one (scale up says so)

    @property
    def title(self) -> str:
        return self.label or (f"start {self.total - self.running} {self.service} replica(s) of "
                              f"{self.version} beside {self.running} running")

    def commands(self, compose: Compose) -> list[tuple[str | None, Argv]]:
        return [(self.version, compose.scale_to(self.service, self.total))]


@dataclass(frozen=True)
class Recreate(Step):
    """Stop the old containers, then start ``replicas`` new ones (single-writer services)."""

    service: str
    version: str
    replicas: int
    stopping: int

    @property
    def title(self) -> str:
        return (f"recreate {self.service} at {self.version} ({self.replicas} replica(s); "
                f"{self.stopping} stopped first)")

    def commands(self, compose: Compose) -> list[tuple[str | None, Argv]]:
        return [(self.version, compose.recreate(self.service, self.replicas))]


@dataclass(frozen=True)
class WaitHealthy(Step):
    """Docker's HEALTHCHECK of ``known`` replicas and of every replica this plan started."""

    service: str
    version: str
    known: tuple[str, ...] = ()
    #: also wait until the entry point routes to them (their health URL answers through it)
    routed: bool = False

    @property
    def title(self) -> str:
        return f"wait for the {self.service} replica(s) of {self.version}"


@dataclass(frozen=True)
class WaitRouted(Step):
    """The health URL answers healthy through the entry point again."""

    service: str

    @property
    def title(self) -> str:
        return f"wait for the entry point to route to {self.service}"


@dataclass(frozen=True)
class Drain(Step):
    """SIGTERM ``containers`` together (each drains: /health 503, requests in flight finished),
    wait for them to stop, remove them. One drain period for the whole batch."""

    service: str
    ids: tuple[str, ...]
    names: tuple[str, ...]
    grace_s: int = STOP_GRACE_S
    what: str = "old"  # old | surplus | scale
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or (f"drain and remove {len(self.ids)} {self.what} {self.service} "
                              f"replica(s) ({', '.join(self.names)})")

    def commands(self, compose: Compose) -> list[tuple[str | None, Argv]]:
        return [(None, stop_containers(self.ids, timeout=self.grace_s)),
                (None, remove_containers(self.ids))]


@dataclass(frozen=True)
class Note(Step):
    """Nothing to do, and why (``app already runs v0.2.0``)."""

    text: str

    @property
    def title(self) -> str:
        return self.text


# --- the plan and what it ends with -------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    service: str
    strategy: str
    version: str
    previous: str | None
    replicas: int
    steps: tuple[Step, ...] = ()
    #: the old replicas keep serving until the new ones are healthy: discarding the new ones on
    #: failure *is* the rollback (rolling); a recreate has nothing left to fall back on
    discard_new_on_failure: bool = False
    removes: int = 0

    @property
    def changes(self) -> bool:
        return any(not isinstance(s, Note) for s in self.steps)

    def command_lines(self, compose: Compose) -> list[tuple[str | None, Argv]]:
        """Every command the plan issues, in order (what ``--dry-run`` prints)."""
        return [c for step in self.steps for c in step.commands(compose)]


@dataclass(frozen=True)
class Rollout:
    """What a switch did: the JSON result's ``services`` entry."""

    service: str
    version: str
    previous: str | None
    replicas: int
    started: int
    removed: int


@dataclass
class ScaleChange:
    service: str
    before: int
    after: int
    version: str
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, int | str | None]:
        return {"from": self.before, "to": self.after, "version": self.version}


def chunks(items: Sequence[ContainerState], size: int) -> list[list[ContainerState]]:
    """``size`` at a time; 0 (or anything below 1) means all at once."""
    if not items:
        return []
    step = len(items) if size < 1 else size
    return [list(items[i:i + step]) for i in range(0, len(items), step)]


def drains(service: str, containers: Sequence[ContainerState], *, batch: int, grace_s: int,
           what: str) -> list[Step]:
    return [Drain(service, tuple(c.id for c in chunk), tuple(c.name for c in chunk),
                  grace_s=grace_s, what=what)
            for chunk in chunks(containers, batch)]
