"""The environment a deploy acts on, and the step reporter every deploy-side action shares.

A ``Stack`` bundles what the strategies need — the compose project, the engine client, the Runner,
the environment's settings — so ``rolling.py`` and ``recreate.py`` read as named steps instead of
plumbing. ``Steps`` prints each step with its duration and keeps the record the JSON result and
the audit line carry.
"""

from __future__ import annotations

import shlex
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from ops.config import EnvironmentSettings, Settings, resolve_path
from ops.deploy.audit import asked_replicas, read_events
from ops.deploy.outcome import Outcome, StepRecord, timed_step
from ops.errors import DeployFailed, UsageError
from ops.runtime.compose import Compose, detect_program, project_name, version_env
from ops.runtime.docker_engine import (
    ContainerState,
    connect,
    container_state,
    project_containers,
    try_connect,
)
from ops.runtime.images import ServiceImage, find_compose_file, service_images
from ops.runtime.probe import get, new_session
from ops.runtime.process import Argv, Runner

#: Healthy answers that name no container of the project: the app's hostname is not the
#: container id, so which replica answered cannot be told (only that one did).
ROUTING_PROBES = 20
ROUTING_INTERVAL_S = 0.05
#: How often a wait re-reads the containers' health from the engine.
HEALTH_POLL_S = 0.25


@dataclass
class Steps:
    """``with steps.step("start 3 app replicas"):`` prints the step, then its duration."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    dry_run: bool = False
    records: list[StepRecord] = field(default_factory=list)
    #: when the action began: every step's end and every phase says how long after it
    began: float = field(default_factory=time.perf_counter)
    #: (phase, seconds after ``began`` it started), in order
    phases: list[tuple[str, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def elapsed(self) -> float:
        return time.perf_counter() - self.began

    def say(self, message: str) -> None:
        with self._lock:  # switches beside each other print from their own threads
            self.out.write(message + "\n")
            self.out.flush()

    def phase(self, name: str) -> None:
        """A phase of the action (gates, backup, switch, watch…), with the time it began at."""
        at = self.elapsed()
        self.phases.append((name, at))
        self.say(f"== {name} (at {at:.1f}s)")

    def phase_summary(self) -> str:
        """``phases: gates 0.0s · backup 0.0s · switching app 7.1s · watch 3.0s``"""
        now = self.elapsed()
        ends = [at for _name, at in self.phases[1:]] + [now]
        parts = [f"{name} {end - at:.1f}s" for (name, at), end in zip(self.phases, ends,
                                                                       strict=True)]
        return f"phases ({now:.1f}s): " + " · ".join(parts) if parts else f"took {now:.1f}s"

    def waiting(self, what: str) -> None:
        self.say(f"    … waiting for {what}")

    @contextmanager
    def step(self, name: str) -> Iterator[StepRecord]:
        self.say(f"→ {name}")
        with timed_step(name, dry_run=self.dry_run, on_end=self._ended) as record:
            yield record

    def _ended(self, record: StepRecord) -> None:
        self.records.append(record)
        self.say(f"  {MARKS[record.status]} {record.name} ({record.duration_s:.1f}s, "
                 f"at {self.elapsed():.1f}s)" + (f": {record.detail}" if record.detail else ""))


MARKS = {Outcome.SUCCESS: "✓", Outcome.DRY_RUN: "·", Outcome.FAILED: "✗",
         Outcome.INTERRUPTED: "✗", Outcome.ROLLED_BACK: "✗"}


@dataclass
class Stack:
    """One environment's compose project, as the deploy side sees it."""

    root: Path
    settings: Settings
    env_name: str
    env: EnvironmentSettings
    compose: Compose
    client: Any  # docker.DockerClient, or None only under --dry-run without an engine
    runner: Runner
    steps: Steps
    #: the compose file is read once per stack (it does not change during an action)
    _images: dict[str, list[ServiceImage]] = field(default_factory=dict, repr=False)
    #: the audit log's replica counts, read once per stack
    _asked: dict[str, int] | None = field(default=None, repr=False)

    @property
    def dry_run(self) -> bool:
        return self.runner.dry_run

    @property
    def project(self) -> str:
        return self.compose.project

    @property
    def health_url(self) -> str:
        return str(self.env.health_url)

    def images(self, version: str) -> list[ServiceImage]:
        if version not in self._images:
            self._images[version] = service_images(self.compose.file, version)
        return list(self._images[version])

    def versioned_services(self) -> list[str]:
        """Services whose image carries the release version (the ones a deploy switches)."""
        return [image.service for image in self.images("probe") if image.built
                and "probe" in image.reference]

    def all_services(self) -> list[str]:
        return [image.service for image in self.images("probe")]

    def strategy_of(self, service: str) -> str:
        configured = self.env.services.get(service)
        return configured.strategy if configured else "rolling"

    def required(self, service: str) -> bool:
        configured = self.env.services.get(service)
        return configured.required if configured else True

    def replicas_default(self, service: str) -> int:
        configured = self.env.services.get(service)
        return getattr(configured, "replicas", 1) if configured else 1

    def replicas_asked(self, service: str) -> int | None:
        """The count a deploy restores when fewer replicas run: the one the audit log's latest
        successful deploy, rollback or scale of this environment left, else the configuration's
        ``replicas`` when it is set explicitly; None when neither says (keep what runs)."""
        if self._asked is None:
            self._asked = asked_replicas(read_events(audit_path(self), env=self.env_name),
                                         project=self.project)
        if service in self._asked:
            return self._asked[service]
        configured = self.env.services.get(service)
        if configured is not None and "replicas" in configured.model_fields_set:
            return configured.replicas
        return None

    def containers(self, service: str | None = None, *,
                   include_stopped: bool = False) -> list[ContainerState]:
        if self.client is None:
            return []
        return project_containers(self.client, self.project, service,
                                  include_stopped=include_stopped)

    def running(self, service: str) -> list[ContainerState]:
        return [c for c in self.containers(service) if c.status == "running"]

    def state(self, container_id: str) -> ContainerState | None:
        return None if self.client is None else container_state(self.client, container_id)

    def run_at(self, version: str, argv: Argv, *, timeout: float | None = 600) -> None:
        """Run a compose command with ``TMINUS_VERSION=version`` in its environment only."""
        if self.dry_run:
            self.runner.history.append(argv)
            self.runner.out.write(f"[dry-run] TMINUS_VERSION={shlex.quote(version)} "
                                  f"{shlex.join(argv)}\n")
            return
        runner = replace(self.runner, env=version_env(version, self.runner.env))
        runner.run(argv, timeout=timeout)

    def run(self, argv: Argv, *, timeout: float | None = 600) -> None:
        self.runner.run(argv, timeout=timeout)


def open_stack(root: Path, settings: Settings, env_name: str, *, dry_run: bool = False,
               out: TextIO | None = None, program: tuple[str, ...] | None = None,
               client: Any = None) -> Stack:
    """Resolve the environment's compose file, project and engine; fail early and clearly."""
    env = settings.environment(env_name)
    compose_file = find_compose_file(root, env.compose_file)
    if compose_file is None:
        where = env.compose_file or "docker-compose.yml or compose.yaml"
        raise UsageError(f"no compose file found ({where} under {root})",
                         hint=f"set ops.environments.{env_name}.compose_file")
    compose = Compose(project_name(root, env_name, env.project_name), compose_file,
                      program or detect_program())
    if client is None:
        if dry_run:
            client, _reason = try_connect()
        else:
            client = connect()
    stream = out or sys.stdout
    runner = Runner(dry_run=dry_run, cwd=root, out=stream)
    return Stack(root, settings, env_name, env, compose, client, runner,
                 Steps(out=stream, dry_run=dry_run))


def audit_path(stack: Stack) -> Path:
    return resolve_path(stack.root, stack.settings.audit_log)


def wait_ready(stack: Stack, ids: list[str], *, timeout_s: float, what: str,
               routing: Routing | None = None) -> None:
    """Wait until every container is running and (if it has a HEALTHCHECK) healthy.

    Fails fast when one turns ``unhealthy`` or exits: waiting out the timeout would only delay
    the rollback. With ``routing`` (a service behind the entry point) the wait also ends once
    every one of them has answered healthy *through the entry point*: the same /health that
    Docker's HEALTHCHECK asks, seen end to end, and usually a second or two before Docker's
    next check interval says so.
    """
    if stack.dry_run or not ids:
        return
    stack.steps.waiting(f"{what} to report healthy (Docker HEALTHCHECK, up to {timeout_s:.0f}s)"
                        + (", or to answer healthy through the entry point" if routing else ""))
    deadline = time.monotonic() + timeout_s
    while True:
        states = [stack.state(i) for i in ids]
        gone = [i[:12] for i, s in zip(ids, states, strict=True) if s is None]
        bad = [s for s in states if s is not None and (s.health == "unhealthy"
                                                      or s.status in {"exited", "dead"})]
        if gone or bad:
            names = ", ".join([*gone, *(f"{s.name} ({s.health or s.status})" for s in bad)])
            raise DeployFailed(f"{what} failed to become healthy: {names}")
        if all(s is not None and s.ready for s in states):
            return
        if routing is not None and routing.identified and all(
                s is not None and s.status == "running" for s in states):
            return
        if time.monotonic() >= deadline:
            pending = ", ".join(f"{s.name} ({s.health or s.status})" for s in states
                                if s is not None and not s.ready)
            raise DeployFailed(f"{what} not healthy after {timeout_s:.0f}s: {pending}")
        if routing is None:
            time.sleep(HEALTH_POLL_S)
        else:
            routing.probe_for(HEALTH_POLL_S)


def wait_entrypoint(stack: Stack, *, timeout_s: float) -> None:
    """The health URL through the entry point answers 200 with the expected status."""
    wait_routed(stack, [], timeout_s=timeout_s)


class Routing:
    """Which of ``ids`` have answered healthy through the entry point, probe by probe.

    A replica that Docker calls healthy is not yet one the proxy sends requests to (it re-reads
    the DNS and may need a few good checks first); draining the old replicas before that would
    leave it nothing to route to. The health answer names the replica that gave it
    (``hostname``, the container's short id), so probing until every new replica has answered
    once shows that the proxy routes to each. An app whose answers do not name the container
    (no ``hostname``, or not the container id) can only show that the entry point answers
    healthy: then that is what ``done`` means, and Docker's HEALTHCHECK has the last word.
    """

    def __init__(self, stack: Stack, ids: list[str]) -> None:
        self.stack = stack
        self.wanted = {i[:12] for i in ids}
        self.known = {c.short_id for c in stack.containers()} | self.wanted
        self.seen: set[str] = set()
        self.healthy = 0
        self.anonymous = False  # answers that cannot name the replica
        self.last = "no answer yet"
        self.session = new_session()

    @property
    def identified(self) -> bool:
        """Every new replica answered (False while the answers cannot name replicas)."""
        return bool(self.wanted) and self.wanted <= self.seen

    @property
    def done(self) -> bool:
        return self.identified or (self.healthy > 0 and (self.anonymous or not self.wanted))

    def probe(self) -> None:
        stack = self.stack
        answer = get(self.session, stack.health_url, timeout=5.0)
        body = answer.body or {}
        if not (answer.ok and body.get("status") == stack.settings.smoke.expect_status):
            self.last = answer.error or f"HTTP {answer.status}"
            return
        self.healthy += 1
        host = body.get("hostname")
        if not isinstance(host, str):
            self.anonymous = True
            return
        self.seen.add(host)
        if self.healthy >= ROUTING_PROBES and not self.seen & self.known:
            self.anonymous = True
        self.last = f"routed to {len(self.wanted & self.seen)} of {len(self.wanted)} new replica(s)"

    def probe_for(self, seconds: float) -> None:
        """Probe every ``ROUTING_INTERVAL_S`` for about ``seconds`` (or until done)."""
        until = time.monotonic() + seconds
        while not self.identified and time.monotonic() < until:
            self.probe()
            time.sleep(ROUTING_INTERVAL_S)
        if self.identified:
            time.sleep(max(0.0, min(seconds, until - time.monotonic())))

    def close(self) -> None:
        self.session.close()


def wait_routed(stack: Stack, ids: list[str], *, timeout_s: float,
                routing: Routing | None = None) -> None:
    """The entry point answers healthy, and has routed a request to each of ``ids`` (see
    ``Routing``); DeployFailed after ``timeout_s``."""
    expect = stack.settings.smoke.expect_status
    if stack.dry_run:
        stack.steps.say(f"[dry-run] GET {stack.health_url} until 200 status={expect}"
                        + (f" from each of {len(ids)} new replica(s)" if ids else ""))
        return
    own = routing is None
    routing = routing or Routing(stack, ids)
    if not routing.done:
        stack.steps.waiting(f"{stack.health_url} to answer 200 through the entry point"
                            + (f" from each of {len(ids)} new replica(s)" if ids else ""))
    deadline = time.monotonic() + timeout_s
    try:
        while not routing.done:
            if time.monotonic() >= deadline:
                raise DeployFailed(f"{stack.health_url} did not become healthy and routed "
                                   f"within {timeout_s:.0f}s (last: {routing.last})")
            routing.probe()
            if not routing.done:
                time.sleep(ROUTING_INTERVAL_S)
    finally:
        if own:
            routing.close()
