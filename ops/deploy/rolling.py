"""The rolling strategy: new replicas next to the old, healthy first, then the old ones drained.

Read top to bottom, ``roll`` is the procedure: clear out leftovers of an interrupted deploy,
start the new version beside the old, wait for Docker's HEALTHCHECK and for the health URL through
the entry point, then drain and remove the old replicas batch by batch. The old replicas are
never touched before the new ones are healthy, so when the new version fails, discarding it *is*
the rollback, and the service never has fewer healthy replicas than it had.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ops.deploy.stack import Stack, remove_replicas, wait_entrypoint, wait_ready
from ops.errors import DeployFailed
from ops.runtime.docker_engine import ContainerState
from ops.runtime.process import fault_point

#: Seconds ``docker stop`` waits before SIGKILL: the app's drain period plus requests in flight.
STOP_GRACE_S = 20


@dataclass(frozen=True)
class Rollout:
    service: str
    version: str
    previous: str | None
    replicas: int
    started: int
    removed: int


def current_version(containers: list[ContainerState]) -> str | None:
    """The version most replicas run (after an interrupted deploy there can be two: which one
    ran *before* is the deploy's recorded intent, ``ops.deploy.intent``, never this guess)."""
    versions = Counter(c.version for c in containers if c.version)
    return versions.most_common(1)[0][0] if versions else None


def roll(stack: Stack, service: str, version: str, *, replicas: int | None = None,
         batch: int = 1) -> Rollout:
    """Switch ``service`` to ``version`` without ever lowering its healthy replica count."""
    clear_leftovers(stack, service)
    running = stack.running(service)
    stale = [c for c in running if c.version != version]
    fresh = [c for c in running if c.version == version]
    previous = current_version(stale)
    wanted = replicas or max(len(stale), len(fresh)) or stack.replicas_default(service)
    missing = max(0, wanted - len(fresh))
    if not stale and not missing:
        stack.steps.say(f"  {service} already runs {version} ({len(fresh)} replicas)")
        return Rollout(service, version, previous, len(fresh), 0, 0)

    started = start_beside(stack, service, version, running, missing) if missing else []
    try:
        with stack.steps.step(f"wait for {len(started) + len(fresh)} {service} replica(s) "
                              f"of {version}"):
            wait_ready(stack, [c.id for c in [*fresh, *started]],
                       timeout_s=stack.env.health_timeout_s, what=f"{service} {version}")
            wait_entrypoint(stack, timeout_s=stack.env.health_timeout_s)
    except DeployFailed:
        discard(stack, service, started, reason=f"{version} is not healthy")
        raise
    if stale:
        fault_point("deploy:draining")  # both versions healthy side by side, none removed yet
        with stack.steps.step(f"drain and remove {len(stale)} {service} replica(s) of "
                              f"{previous}"):
            remove_replicas(stack, stale, batch=batch, grace_s=STOP_GRACE_S)
    extra = fresh[wanted:] if len(fresh) > wanted else []
    if extra:
        with stack.steps.step(f"remove {len(extra)} surplus {service} replica(s)"):
            remove_replicas(stack, extra, batch=batch, grace_s=STOP_GRACE_S)
    return Rollout(service, version, previous, wanted, len(started), len(stale) + len(extra))


def clear_leftovers(stack: Stack, service: str) -> None:
    """Exited or half-created replicas of an interrupted deploy would confuse compose's count."""
    from ops.runtime.compose import remove_containers

    dead = [c for c in stack.containers(service, include_stopped=True) if c.status != "running"]
    if dead:
        with stack.steps.step(f"remove {len(dead)} stopped {service} container(s) left behind"):
            stack.run(remove_containers([c.id for c in dead]))


def start_beside(stack: Stack, service: str, version: str, running: list[ContainerState],
                 count: int) -> list[ContainerState]:
    """``up --no-recreate --scale service=old+new``: compose adds containers, touches none."""
    before = {c.id for c in running}
    with stack.steps.step(f"start {count} {service} replica(s) of {version} beside "
                          f"{len(running)} running"):
        stack.run_at(version, stack.compose.scale_to(service, len(running) + count))
    if stack.dry_run:
        return []
    return [c for c in stack.containers(service, include_stopped=True) if c.id not in before]


def discard(stack: Stack, service: str, containers: list[ContainerState], *, reason: str) -> None:
    """Remove the replicas of a failed version; the old ones kept serving all along."""
    from ops.runtime.compose import remove_containers

    if not containers:
        return
    with stack.steps.step(f"discard {len(containers)} new {service} replica(s): {reason}"):
        stack.run(remove_containers([c.id for c in containers]))
