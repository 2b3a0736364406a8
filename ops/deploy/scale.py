"""The scale action: up at once, down gradually with a drain between steps.

The plan (``strategies/scale.py``) adds replicas all at once and removes them ``step`` at a
time, each drained first; the backend runs it. A service the configuration marks ``required``
never goes below one replica.
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
from ops.deploy.backend import backend_for
from ops.deploy.deploy import DeployResult, audit_event
from ops.deploy.stack import Stack, audit_path, open_stack
from ops.deploy.swarm_lock import stack_lock
from ops.errors import DeployFailed, OpsError, UsageError

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
                             progress=stack.steps.waiting,
                             cluster_lock=stack_lock(stack, "scale", label, lock_wait_s)) as act:
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
    return backend_for(stack).scale(service, count, step=step).to_dict()
