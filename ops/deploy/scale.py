"""Scale services: up at once, down gradually with a drain between steps.

Adding replicas is safe all at once (the proxy only routes to them once healthy). Removing is
done ``step`` at a time: each removed replica drains (its /health turns 503 so the proxy stops
routing to it) before it stops, and the next step waits until the health URL answers again. A
service the configuration marks ``required`` never goes below one replica.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from ops.config import Settings
from ops.deploy.action import Act, Outcome, changing_action
from ops.deploy.audit import AuditEvent, AuditLogRefused, AuditNotWritten
from ops.deploy.deploy import DeployResult, audit_event
from ops.deploy.rolling import STOP_GRACE_S, clear_leftovers, current_version
from ops.deploy.stack import (
    Stack,
    audit_path,
    open_stack,
    remove_replicas,
    wait_entrypoint,
    wait_ready,
)
from ops.errors import DeployFailed, OpsError, UsageError
from ops.runtime.docker_engine import ContainerState

_ASSIGNMENT = re.compile(r"^(?P<service>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<count>\d+)$")


def parse_targets(items: Iterable[str]) -> dict[str, int]:
    """``["app=5", "worker=1"]`` (or one string "app=5 worker=1") → {"app": 5, "worker": 1}."""
    targets: dict[str, int] = {}
    for item in items:
        for word in item.replace(",", " ").split():
            match = _ASSIGNMENT.match(word)
            if match is None:
                raise UsageError(f"cannot read {word!r} as SERVICE=N", hint="e.g. app=5")
            targets[match["service"]] = int(match["count"])
    if not targets:
        raise UsageError("nothing to scale", hint="e.g. invoke scale app=5")
    return targets


def validate(stack: Stack, targets: dict[str, int]) -> None:
    known = stack.all_services()
    for service, count in targets.items():
        if service not in known:
            raise UsageError(f"unknown service {service!r}", hint="known: " + ", ".join(known))
        if count < 1 and stack.required(service):
            raise UsageError(f"{service} is required: it cannot go below 1 replica",
                             hint=f"ops.environments.{stack.env_name}.services.{service}"
                                  ".required says so")


def scale(root: Path, settings: Settings, env: str, targets: dict[str, int], *, step: int = 1,
          dry_run: bool = False, lock_wait_s: float = 0.0, out: TextIO | None = None,
          stack: Stack | None = None,
          on_result: Callable[[DeployResult], None] | None = None) -> DeployResult:
    started = time.perf_counter()
    if step < 1:
        raise UsageError("--step must be at least 1")
    stack = stack or open_stack(root, settings, env, dry_run=dry_run, out=out)
    validate(stack, targets)
    label = " ".join(f"{s}={n}" for s, n in targets.items())
    result = DeployResult("scale", env, label)
    changes: dict[str, dict[str, int | str | None]] = {}

    def describe(act: Act) -> AuditEvent | None:
        result.result, result.reason = act.outcome, act.reason
        result.services = {k: dict(v) for k, v in changes.items()}
        result.duration_s = act.duration_s
        result.steps = [r.to_dict() for r in stack.steps.records]
        result.from_version = " ".join(f"{s}={c['from']}" for s, c in changes.items()) or None
        return audit_event(stack, result)

    def done(act: Act) -> None:
        if on_result is not None and not act.audit_failed:
            on_result(result)

    try:
        with changing_action(stack.root, env, action="scale", describe=describe,
                             audit_log=audit_path(stack), done=done, dry_run=stack.dry_run,
                             lock_wait_s=lock_wait_s, started=started, say=stack.steps.say,
                             progress=stack.steps.waiting) as act:
            for service, count in targets.items():
                changes[service] = scale_service(stack, service, count, step=step)
            if dry_run:
                act.outcome = Outcome.DRY_RUN
    except (AuditNotWritten, AuditLogRefused):
        raise
    except OpsError as exc:
        raise DeployFailed(f"scale {label} failed: {exc.message}", hint=exc.hint) from None
    return result


def scale_service(stack: Stack, service: str, count: int, *, step: int
                  ) -> dict[str, int | str | None]:
    clear_leftovers(stack, service)
    running = stack.running(service)
    versions = {c.version for c in running}
    if len(versions) > 1:
        listed = ", ".join(sorted(map(str, versions)))
        raise DeployFailed(f"{service} runs several versions ({listed})",
                           hint="finish or repeat the deploy first")
    version = current_version(running) or "latest"
    have = len(running)
    if count > have:
        scale_up(stack, service, version, have, count)
    elif count < have:
        scale_down(stack, service, running, count, step=step)
    else:
        stack.steps.say(f"  {service} already has {have} replica(s)")
    return {"from": have, "to": count, "version": version}


def scale_up(stack: Stack, service: str, version: str, have: int, count: int) -> None:
    before = {c.id for c in stack.running(service)}
    with stack.steps.step(f"scale {service} {have} → {count} (at once, {version})"):
        stack.run_at(version, stack.compose.scale_to(service, count))
    if stack.dry_run:
        return
    added = [c.id for c in stack.containers(service, include_stopped=True) if c.id not in before]
    with stack.steps.step(f"wait for {len(added)} new {service} replica(s)"):
        wait_ready(stack, added, timeout_s=stack.env.health_timeout_s,
                   what=f"{len(added)} new {service} replica(s)")


def scale_down(stack: Stack, service: str, running: list[ContainerState], count: int, *,
               step: int) -> None:
    """Newest replicas go first, ``step`` at a time, each drained before the next step."""
    doomed = sorted(running, key=lambda c: c.number, reverse=True)[:len(running) - count]
    have = len(running)
    for start in range(0, len(doomed), step):
        chunk = doomed[start:start + step]
        with stack.steps.step(f"scale {service} {have} → {have - len(chunk)} "
                              f"(drain {', '.join(c.name for c in chunk)})"):
            remove_replicas(stack, chunk, batch=len(chunk), grace_s=STOP_GRACE_S)
            if service_has_entrypoint(stack, service) and have - len(chunk) > 0:
                wait_entrypoint(stack, timeout_s=stack.env.health_timeout_s)
        have -= len(chunk)


def service_has_entrypoint(stack: Stack, service: str) -> bool:
    """The health URL goes through the proxy to the first versioned service (the API)."""
    services = stack.versioned_services()
    return bool(services) and services[0] == service
