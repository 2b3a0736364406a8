"""The swarm backend: the same deploy, rollback, scale and smoke test on a Docker Swarm.

Swarm rolls, rolls back and reschedules by itself; this backend hands each task to it and
verifies the outcome instead of re-implementing any of it:

- ``ensure_infrastructure`` deploys the stack once (``docker stack deploy`` of a file derived
  from the compose file, ``ops.runtime.swarm.stack_file``) and waits until every service runs
  what it asked for; the entry point and the stateful services are pinned to the node the
  health URL names (else the manager tminus talks to), wherever the operator stands;
- ``switch`` is one ``docker service update --image REPO@DIGEST --update-order start-first …
  --update-failure-action rollback``, followed until Swarm reports the update ``completed`` and
  the health URL answers through the entry point. When Swarm rolls the update back on its own,
  the switch fails and says so (``docker stack deploy`` exits 0 after a rollback — docker/cli
  #6752 — tminus does not repeat that); the deploy then ends "rolled back", exit 1;
- ``scale`` is ``docker service scale``: up at once, down ``step`` replicas at a time, each
  step converged (Swarm stops a task with its stop grace period, so it drains);
- ``health`` reports replicas running/desired per service, recent task errors, nodes that are
  not ready (their tasks rescheduled elsewhere), and error lines of ``docker service logs``;
- ``reach`` gives backup and restore a loopback URL for each store that the configured URL
  names by its service name (``db:5432``, as the app sees it): a tunnel through the manager's
  Docker API to a relay task on the stack's network (see ``reach`` for why that way).

Images run by content digest: the digest the release's manifest recorded (``invoke build
--push``), else the one the registry serves for the release tag now. A rollback to a version
updates to that release's digests, whatever Swarm's single "previous spec" holds.

What runs is read from the swarm (tasks, their ``tminus.version`` container label), never from
a file. The containers also carry compose's project/service labels, so the readers that list a
project's containers on the engine tminus talks to (the manager) find the manager's replicas.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ops.deploy.backend import Replica
from ops.deploy.lock import pid_alive
from ops.deploy.stack import Stack, wait_entrypoint
from ops.deploy.strategies.plan import Rollout, RolloutOptions, ScaleChange
from ops.deploy.swarm_lock import stack_lock
from ops.errors import DeployFailed, UnavailableError, UsageError
from ops.release import manifest as mf
from ops.report import Finding, failed, passed, warned
from ops.runtime import registry as reg
from ops.runtime import swarm as sw
from ops.runtime.docker_engine import PROJECT_LABEL
from ops.runtime.docker_engine import SERVICE_LABEL as COMPOSE_SERVICE_LABEL
from ops.runtime.envfile import read_env
from ops.runtime.images import VERSION_VARIABLE, load_compose, substitute
from ops.runtime.tunnel import Tunnel, via_loopback
from ops.versioning import ReleaseVersion, parse_version

#: How often a wait re-reads the swarm.
POLL_S = 0.5
#: Update states after which Swarm has put the previous spec back (or stopped trying).
ROLLED_BACK = {"rollback_started", "rollback_completed", "rollback_paused", "paused"}
#: How far back the smoke test looks at failed tasks.
TASK_ERRORS_SHOWN = 3


class SwarmBackend:
    """A stack on a Docker Swarm, reached through the manager ``DOCKER_HOST`` names."""

    name = "swarm"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        settings = stack.env.swarm
        self.policy = sw.UpdatePolicy(parallelism=settings.update_parallelism,
                                      delay_s=settings.update_delay_s,
                                      monitor_s=settings.update_monitor_s)
        self.timeout_s = settings.converge_timeout_s
        if stack.client is not None and not stack.dry_run and \
                sw.swarm_state(stack.client) != "active":
            where = os.environ.get("DOCKER_HOST") or "the default socket"
            raise UsageError(f"backend swarm: the engine at {where} is not a swarm manager",
                             hint="point DOCKER_HOST at a manager, or `docker swarm init`")

    # --- names -----------------------------------------------------------------------------------

    def service(self, service: str) -> str:
        return sw.service_name(self.stack.project, service)

    @property
    def network(self) -> str:
        return f"{self.stack.project}_default"

    def registry(self) -> reg.Registry:
        configured = self.stack.env.registry
        if not configured:
            raise UsageError("backend swarm needs a registry: every node pulls the images",
                             hint=f"set ops.environments.{self.stack.env_name}.registry and push "
                                  "with `invoke build VERSION --push`")
        return reg.Registry.parse(configured)

    def reference(self, service: str, version: str) -> str:
        """``service``'s image at ``version``, by content digest.

        The release manifest's recorded digest first (what was pushed and verified); else the
        digest the registry serves for the tag now (an image no release records, or a release
        built before digests were recorded).
        """
        manifest_file = mf.manifest_path(self.stack.root, self.stack.settings,
                                         parse_version(version)) if _is_release(version) else None
        if manifest_file is not None and manifest_file.is_file():
            record = mf.read(manifest_file).docker_images.get(service)
            if record is not None and record.repo_digest:
                return record.repo_digest
        local = next((i.reference for i in self.stack.images(version) if i.service == service),
                     None)
        if local is None:
            raise UsageError(f"unknown service {service!r}")
        target = self.registry().reference(local)
        if self.stack.dry_run and self.stack.client is None:
            return target
        digest = reg.served_digest(self.stack.client, target,
                                   auth=reg.credentials(os.environ))
        if digest is None:
            raise DeployFailed(f"the registry has no {target}",
                               hint=f"push it: `invoke build {version} --push`")
        return reg.pinned(target, digest)

    # --- reading ---------------------------------------------------------------------------------

    def replicas(self, service: str) -> list[Replica]:
        if self.stack.client is None:
            return []
        names = {n.id: n.hostname or n.address for n in sw.nodes(self.stack.client)}
        return [Replica(t.container_id or t.id, f"{self.service(service)}.{t.slot or t.id[:12]}",
                        service, t.version, "healthy", "running", names.get(t.node_id, t.node_id))
                for t in sw.tasks(self.stack.client, self.service(service)) if t.running]

    def running_version(self, service: str) -> str | None:
        versions = Counter(r.version for r in self.replicas(service) if r.version)
        return versions.most_common(1)[0][0] if versions else None

    # --- changing --------------------------------------------------------------------------------

    def switch(self, service: str, version: ReleaseVersion, *, strategy: str,
               options: RolloutOptions) -> Rollout:
        stack, name = self.stack, self.service(service)
        image = self.reference(service, version.tag)
        before = self.replicas(service)
        previous = self.running_version(service)
        info = None if stack.client is None else sw.service_info(stack.client, name)
        if not stack.dry_run and info is None:
            raise DeployFailed(f"{name} is not deployed on the swarm")
        replicas = info.replicas if info is not None and info.replicas is not None else len(before)
        # the stack's first deploy creates released services at 0 (migrations come first)
        first = replicas == 0
        if first:
            replicas = stack.replicas_default(service)
        if info is not None and info.image == image and before and \
                all(r.version == version.tag for r in before):
            stack.steps.say(f"[{service}] already runs {version.tag} ({image})")
            _ready(options)
            return Rollout(service, version.tag, previous, replicas, 0, 0)
        if strategy != "rolling":
            stack.steps.say(f"  note: on a swarm every switch is Swarm's rolling update "
                            f"(start-first); strategy {strategy} is not used")
        with stack.steps.step(f"[{service}] swarm rolling update {previous or 'nothing'} → "
                              f"{version.tag} ({self.policy.parallelism} at a time)") as rec:
            stack.run(sw.service_update(name, image, version.tag, self.policy,
                                        replicas=replicas if first else None))
            if not stack.dry_run:
                self._follow_update(name, service, info.version_index if info else 0,
                                    info.update_started if info else "")
                self._converge(service, replicas, image=image)
                rec.detail = f"{replicas} replica(s) on {image.rpartition('@')[2][:19]}"
        if self._routed(service):
            wait_entrypoint(stack, timeout_s=stack.env.health_timeout_s)
        # Swarm rolled it all; now the deploy switches the other services (the worker)
        _ready(options)
        return Rollout(service, version.tag, previous, replicas, replicas, len(before))

    def _follow_update(self, name: str, service: str, index_before: int,
                       started_before: str) -> None:
        """Until Swarm says the update completed; a rollback by Swarm is a failed switch.

        Only a status of *this* update counts: right after ``service update`` the service still
        shows the previous update's "completed". A service Swarm starts no update for (no task
        to replace) gets no new status; after a grace period its convergence decides.
        """
        client = self.stack.client
        started = time.monotonic()
        deadline = started + self.timeout_s
        grace = self.policy.monitor_s + self.policy.delay_s + 10
        self.stack.steps.waiting(f"Swarm to finish updating {name} (up to {self.timeout_s:.0f}s)")
        while True:
            info = sw.service_info(client, name)
            if info is None:
                raise DeployFailed(f"{name} disappeared during the update")
            fresh = info.update_started != started_before or (
                not started_before and info.update_state is not None)
            moved = info.version_index > index_before and (
                fresh or time.monotonic() - started > grace)
            if moved and info.update_state in ROLLED_BACK:
                if info.update_state == "rollback_started":
                    self._wait_rollback(name)
                self._settle_rollback(name, service)
                raise DeployFailed(
                    f"Swarm rolled {service} back to the previous version by itself: "
                    f"{info.update_message or info.update_state}",
                    hint=f"see `docker service ps {name}` and `docker service logs {name}`")
            if moved and info.update_state in {"completed", None}:
                return
            if time.monotonic() >= deadline:
                raise DeployFailed(f"{name}: the update did not finish within "
                                   f"{self.timeout_s:.0f}s ({info.update_state})")
            time.sleep(POLL_S)

    def _wait_rollback(self, name: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            info = sw.service_info(self.stack.client, name)
            if info is None or info.update_state != "rollback_started":
                return
            time.sleep(POLL_S)

    def _settle_rollback(self, name: str, service: str) -> None:
        """Until the spec Swarm rolled back to runs whole: Swarm says ``rollback_completed``
        while its last restarted task may still be starting, and "rolled back to" must
        describe a state that was seen."""
        info = sw.service_info(self.stack.client, name)
        if info is not None and info.replicas is not None:
            self._converge(service, info.replicas, image=info.image)

    def _converge(self, service: str, replicas: int, *, image: str | None = None) -> None:
        """Until exactly ``replicas`` tasks run (on ``image``) and none is still starting."""
        name = self.service(service)
        deadline = time.monotonic() + self.timeout_s
        while True:
            tasks = sw.tasks(self.stack.client, name)
            running = [t for t in tasks if t.running and (image is None or t.image == image)]
            pending = [t for t in tasks if t.desired == "running" and not t.running]
            others = [t for t in tasks if t.running and image is not None and t.image != image]
            if len(running) == replicas and not pending and not others:
                return
            if time.monotonic() >= deadline:
                errors = sorted({t.error for t in tasks if t.error})[:TASK_ERRORS_SHOWN]
                raise DeployFailed(f"{name}: {len(running)} of {replicas} replica(s) running "
                                   f"after {self.timeout_s:.0f}s"
                                   + (f" ({'; '.join(errors)})" if errors else ""))
            time.sleep(POLL_S)

    def scale(self, service: str, count: int, *, step: int) -> ScaleChange:
        stack, name = self.stack, self.service(service)
        info = None if stack.client is None else sw.service_info(stack.client, name)
        if info is None and not stack.dry_run:
            raise DeployFailed(f"{name} is not deployed on the swarm")
        current = info.replicas if info is not None and info.replicas is not None else 0
        version = self.running_version(service) or "?"
        change = ScaleChange(service, current, count, version)
        targets = [count] if count >= current else [
            *range(current - step, count, -step), count]
        for target in targets:
            title = (f"[{service}] scale {current} → {target}" if count >= current else
                     f"[{service}] scale down to {target} (Swarm drains the stopped tasks)")
            with stack.steps.step(title):
                stack.run(sw.service_scale(name, target))
                if not stack.dry_run:
                    self._converge(service, target)
            change.steps.append(title)
        return change

    def ensure_infrastructure(self, version: ReleaseVersion, services: list[str]) -> None:
        """Deploy the stack when any of its services is missing from the swarm."""
        stack = self.stack
        compose = self.compose(version.tag)
        wanted = list(compose["services"])
        if stack.client is not None and all(
                sw.service_info(stack.client, self.service(s)) is not None for s in wanted):
            return
        plan = self.stack_plan(compose, version.tag, services)
        derived = sw.stack_file(compose, plan)
        with stack.steps.step(f"deploy stack {stack.project} at {version.tag} "
                              f"({len(wanted)} services)"):
            self._stack_deploy(derived)
            if not stack.dry_run:
                for service in wanted:
                    count = plan.replicas.get(service, _replicas_of(compose, service))
                    self._converge(service, count, image=plan.images.get(service))

    def _stack_deploy(self, derived: dict[str, Any]) -> None:
        import yaml

        text = yaml.safe_dump(derived, sort_keys=False)
        with tempfile.TemporaryDirectory(prefix="tminus-stack-") as tmp:
            path = Path(tmp) / f"{self.stack.project}.yml"
            path.write_text(text, encoding="utf-8")
            self.stack.run(sw.stack_deploy(self.stack.project, str(path)), timeout=300)

    def compose(self, version: str) -> dict[str, Any]:
        """The compose file with compose's interpolation done (environment, then ``.env``)."""
        stack = self.stack
        variables = {**read_env(stack.root / ".env", stack.root), **os.environ,
                     VERSION_VARIABLE: version}
        data: dict[str, Any] = _substituted(load_compose(stack.compose.file), variables)
        for spec in data["services"].values():
            if isinstance(spec, dict) and spec.get("env_file"):
                files = spec["env_file"] if isinstance(spec["env_file"], list) else [
                    spec["env_file"]]
                spec["env_file"] = [str((stack.compose.file.parent / f).resolve())
                                    for f in files]
        return data

    def stack_plan(self, compose: dict[str, Any], version: str,
                   versioned: list[str]) -> sw.StackPlan:
        stack = self.stack
        images = {s: self.reference(s, version) for s in compose["services"]}
        home = self._entry_node() or self._self_node()
        pins: dict[str, str] = {}
        for name, spec in compose["services"].items():
            stateful = any(":" in str(v) and not str(v).startswith((".", "/"))
                           for v in (spec or {}).get("volumes") or [])
            if stateful or name in sw.entrypoint_services(compose):
                pins[name] = self._node_of(name) or home
        labels = {s: {PROJECT_LABEL: stack.project, COMPOSE_SERVICE_LABEL: s}
                  for s in compose["services"]}
        for name, extra in labels.items():
            spec = compose["services"][name]
            current = spec.get("labels") or {}
            if isinstance(current, dict):
                spec["labels"] = {**current, **extra}
        # released services start at 0: migrations run before their first replica, and the
        # switch that follows brings them up (and waits for them) like any rolling update
        return sw.StackPlan(
            images=images,
            replicas=dict.fromkeys(versioned, 0),
            routed=frozenset(versioned[:1]), pins={s: n for s, n in pins.items() if n},
            policy=self.policy, versions=dict.fromkeys(versioned, version))

    def _entry_node(self) -> str | None:
        """The node whose address the health URL names: the entry point is published there
        (host mode), so the first deploy puts it (and the stateful services) on that node,
        whichever manager the operator's ``DOCKER_HOST`` names; None when no node has it."""
        host = urlsplit(str(self.stack.env.health_url)).hostname
        if self.stack.client is None or not host:
            return None
        return next((n.id for n in sw.nodes(self.stack.client) if n.address == host), None)

    def _self_node(self) -> str:
        if self.stack.client is None:
            return ""
        return str((self.stack.client.info().get("Swarm") or {}).get("NodeID") or "")

    def _node_of(self, service: str) -> str | None:
        """The node a stateful service runs on now: its volume is there."""
        if self.stack.client is None:
            return None
        running = [t for t in sw.tasks(self.stack.client, self.service(service)) if t.running]
        return running[0].node_id if running else None

    def _routed(self, service: str) -> bool:
        services = self.stack.versioned_services()
        return bool(services) and services[0] == service

    def migrate(self, service: str, version: ReleaseVersion) -> None:
        """``alembic upgrade head`` as a one-off task of the new image on the stack's network."""
        stack = self.stack
        name = f"{stack.project}_migrate_{int(time.time())}"
        image = self.reference(service, version.tag)
        env_files = self.compose(version.tag)["services"][service].get("env_file") or [None]
        with stack.steps.step(f"migrations: alembic upgrade head ({service} {version.tag}, "
                              "one-off swarm task)"):
            stack.run(sw.one_off(name, image, ["python3", "-m", "alembic", "upgrade", "head"],
                                 network=self.network, env_file=env_files[0]))
            if stack.dry_run:
                return
            try:
                self._wait_one_off(name)
            finally:
                stack.runner.run(sw.service_rm(name), check=False)

    def _wait_one_off(self, name: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            tasks = sw.tasks(self.stack.client, name)
            if any(t.state == "complete" for t in tasks):
                return
            bad = [t for t in tasks if t.state in {"failed", "rejected"}]
            if len(bad) >= sw.ONE_OFF_ATTEMPTS:
                raise DeployFailed(f"migrations failed {len(bad)} times ({bad[0].state}: "
                                   f"{bad[0].error or 'see docker service logs'})",
                                   hint=f"docker service logs {name}")
            time.sleep(POLL_S)
        raise DeployFailed(f"migrations did not finish within {self.timeout_s:.0f}s")

    # --- reaching the stores --------------------------------------------------------------------

    @contextmanager
    def reach(self, urls: Sequence[str | None]) -> Iterator[list[str | None]]:
        """Each URL whose host is a service of the stack (``db:5432``), as a loopback URL that
        reaches that service's task for as long as the block runs; other URLs unchanged.

        Why a relay task and ``docker exec``: the operator's docker client talks to one manager
        (``DOCKER_HOST``, often ``ssh://``), and that is the only channel tminus may assume. A
        stateful task may run on any node (pinned to the one holding its volume), its port is
        not published to the operator's network (nor should a database's be), and
        ``docker exec`` into it works only on the engine of the node that runs it, which the
        manager does not proxy. So tminus starts an idle task of the stateful service's own
        image (already in the registry) on the stack's overlay network, pinned to the manager
        this client talks to; the overlay carries its connections to the store on whichever
        node it runs, and ``docker exec -i`` into the relay, on this manager, carries each of
        pg_dump's, psycopg's and redis-py's connections (``ops.runtime.tunnel``). The relay is
        removed when the block ends, also on failure.
        """
        stack = self.stack
        services = set(stack.all_services())
        inside = [(i, parts.hostname, parts.port) for i, url in enumerate(urls) if url
                  for parts in [urlsplit(url)] if parts.hostname in services]
        if not inside:
            yield list(urls)
            return
        store = str(inside[0][1])
        info = None if stack.client is None else sw.service_info(stack.client,
                                                                 self.service(store))
        if stack.dry_run:
            stack.run(sw.relay_service(self._relay_name(), info.image if info else store,
                                       network=self.network, node_id=self._self_node() or "?",
                                       owner=self._owner()))
            yield list(urls)
            return
        if info is None:
            raise UnavailableError(f"{store} is not deployed on the swarm {stack.project}",
                                   hint="deploy the stack first")
        self._reclaim_relays()
        name = self._relay_name()
        with ExitStack() as cleanup:
            stack.run(sw.relay_service(name, info.image, network=self.network,
                                       node_id=self._self_node(), owner=self._owner()))
            cleanup.callback(stack.runner.run, sw.service_rm(name), check=False)
            container = self._relay_container(name)
            reached: list[str | None] = list(urls)
            for index, host, port in inside:
                default = 6379 if str(urls[index]).startswith("redis") else 5432
                tunnel = cleanup.enter_context(Tunnel(
                    sw.relay_connect(container, str(host), int(port or default))))
                reached[index] = via_loopback(str(urls[index]), tunnel.port)
            stack.steps.say(f"  reaching {', '.join(sorted({str(h) for _, h, _ in inside}))} "
                            f"through relay task {name} on the manager")
            yield reached

    def cluster_lock(self, action: str, version: str | None,
                     wait_s: float) -> AbstractContextManager[Any] | None:
        """The swarm's deploy lock, which a restore holds too: another operator's deploy must
        not switch releases while the stores are being replaced."""
        return stack_lock(self.stack, action, version, wait_s)

    def _reclaim_relays(self) -> None:
        """Remove the relays of this stack that a backup or restore killed on this host left
        (their owner's process is gone), as the deploy lock is reclaimed; another host's are
        left alone: whether its process lives cannot be told from here."""
        host, prefix = socket.gethostname(), f"{self.stack.project}_tminus-relay-"
        for name, owner in sw.labelled_services(self.stack.client, sw.RELAY_LABEL).items():
            who, _, pid = owner.rpartition(":")
            if (name.startswith(prefix) and who == host and pid.isdigit()
                    and not pid_alive(int(pid))):
                self.stack.steps.say(f"  removing relay task {name}: its process {pid} is gone "
                                     "from this host")
                self.stack.runner.run(sw.service_rm(name), check=False)

    def _relay_name(self) -> str:
        return f"{self.stack.project}_tminus-relay-{os.getpid()}"

    @staticmethod
    def _owner() -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def _relay_container(self, name: str) -> str:
        """The relay's container id once its task runs (the image may have to be pulled)."""
        deadline = time.monotonic() + min(self.timeout_s, 120.0)
        while True:
            tasks = sw.tasks(self.stack.client, name)
            running = [t for t in tasks if t.running and t.container_id]
            if running:
                return str(running[0].container_id)
            bad = [t for t in tasks if t.state in {"failed", "rejected", "complete"}]
            if bad or time.monotonic() >= deadline:
                why = f"{bad[0].state}: {bad[0].error}" if bad else "not running in time"
                raise UnavailableError(f"the relay task to the stack's stores did not start "
                                       f"({why})", hint=f"docker service ps {name}")
            time.sleep(POLL_S)

    # --- the smoke test's facts ------------------------------------------------------------------

    def health(self) -> list[Finding]:
        stack = self.stack
        if stack.client is None:
            return [warned("smoke.containers", "no Docker engine answers")]
        findings = [self._nodes_finding()]
        for service in stack.all_services():
            findings.append(self._service_finding(service))
        findings += self._log_findings()
        return findings

    def _nodes_finding(self) -> Finding:
        found = sw.nodes(self.stack.client)
        lost = [n for n in found if n.state != "ready"]
        if lost:
            return failed("smoke.nodes", f"{len(lost)} of {len(found)} node(s) not ready: "
                          + ", ".join(f"{n.hostname} {n.address} ({n.state})" for n in lost),
                          hint="Swarm reschedules their tasks on the other nodes; bring the "
                               "node back or `docker node rm` it",
                          detail={"lost": [{"id": n.id, "address": n.address,
                                            "state": n.state} for n in lost]})
        return passed("smoke.nodes", f"{len(found)} node(s) ready")

    def _service_finding(self, service: str) -> Finding:
        name, fid = self.service(service), f"smoke.containers.{service}"
        info = sw.service_info(self.stack.client, name)
        if info is None:
            status = failed if self.stack.required(service) else warned
            return status(fid, f"{service}: not deployed on the swarm", hint="deploy it")
        tasks = sw.tasks(self.stack.client, name)
        running = [t for t in tasks if t.running]
        desired = info.replicas if info.replicas is not None else len(running)
        errors = [f"{t.state}: {t.error}" for t in tasks if t.error and t.state in {
            "failed", "rejected"}][:TASK_ERRORS_SHOWN]
        versions = sorted({t.version for t in running if t.version})
        tail = f" at {', '.join(versions)}" if versions else ""
        recent = f"; recent task errors: {'; '.join(errors)}" if errors else ""
        detail = {"running": len(running), "desired": desired, "task_errors": errors}
        if len(running) < desired:
            return failed(fid, f"{service}: {len(running)}/{desired} running{tail}{recent}",
                          detail=detail)
        if errors:
            return warned(fid, f"{service}: {len(running)}/{desired} running{tail}{recent}",
                          detail=detail)
        return passed(fid, f"{service}: {len(running)}/{desired} running{tail}", detail=detail)

    def _log_findings(self) -> list[Finding]:
        settings = self.stack.settings.smoke
        pattern = re.compile(settings.error_pattern)
        findings = []
        for service in self.stack.versioned_services():
            argv = sw.service_logs(self.service(service), since_s=settings.log_window_s)
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                      check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                findings.append(warned(f"smoke.logs.{service}",
                                       f"docker service logs failed ({type(exc).__name__})"))
                continue
            lines = (done.stdout + done.stderr).splitlines()
            bad = [line for line in lines if pattern.search(line)]
            fid = f"smoke.logs.{service}"
            if bad:
                findings.append(warned(fid, f"{service}: {len(bad)} error line(s) in the last "
                                       f"{settings.log_window_s}s of docker service logs"))
            else:
                findings.append(passed(fid, f"{service}: no error lines in {len(lines)} log "
                                       f"line(s) of the last {settings.log_window_s}s"))
        return findings


def _ready(options: RolloutOptions) -> None:
    """The rollout's hooks, in order: started (the deploy settles its latency baseline), then
    ready (the deploy switches the other versioned services, e.g. the worker)."""
    for hook in (options.on_started, options.on_ready):
        if hook is not None:
            hook()


def _is_release(version: str) -> bool:
    try:
        parse_version(version)
    except Exception:
        return False
    return True


def _replicas_of(compose: dict[str, Any], service: str) -> int:
    deploy = (compose["services"].get(service) or {}).get("deploy") or {}
    return int(deploy.get("replicas", 1))


def _substituted(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        return substitute(value, variables)
    if isinstance(value, list):
        return [_substituted(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _substituted(v, variables) for k, v in value.items()}
    return value
