"""The one executor: runs any strategy's plan against a compose stack, step by step.

Each step is printed with its duration (``Steps``); commands go through the stack's Runner (so
``--dry-run`` prints them instead). The replicas a plan starts are learnt here, when compose has
made them; when the plan says so (rolling), a failure before the old replicas were touched
discards exactly those, and the old ones, which kept serving all along, are the rollback.
"""

from __future__ import annotations

from collections.abc import Callable

from ops.deploy.stack import Routing, Stack, wait_ready, wait_routed
from ops.deploy.strategies.plan import (
    Drain,
    Note,
    Plan,
    Recreate,
    RemoveStopped,
    Rollout,
    StartBeside,
    Step,
    WaitHealthy,
    WaitRouted,
)
from ops.errors import DeployFailed
from ops.runtime.compose import remove_containers
from ops.runtime.docker_engine import ContainerState
from ops.runtime.process import fault_point


def execute(stack: Stack, plan: Plan, *, on_started: Callable[[], None] | None = None,
            on_ready: Callable[[], None] | None = None) -> Rollout:
    """Run ``plan``; DeployFailed when a step fails (the new replicas discarded first, when
    the plan keeps the old ones until the new are healthy). ``on_started`` runs once, after the
    step that starts the new replicas (or before the first wait, if none does); ``on_ready``
    once they are healthy, before any old replica is drained (at the end, if none is)."""
    new: list[ContainerState] = []
    draining = False
    pending = on_started
    ready = on_ready
    for step in plan.steps:
        if pending is not None and isinstance(step, WaitHealthy | WaitRouted | Drain):
            hook, pending = pending, None
            hook()
        if ready is not None and isinstance(step, Drain):
            hook, ready = ready, None
            hook()
        if isinstance(step, Note):
            stack.steps.say(step.text)
            continue
        if isinstance(step, Drain) and step.what == "old" and not draining:
            draining = True
            fault_point("deploy:draining")  # both versions healthy side by side, none removed
        try:
            run_step(stack, step, new)
        except DeployFailed:
            if plan.discard_new_on_failure and not draining:
                discard(stack, plan.service, new, reason=f"{plan.version} is not healthy")
            raise
    for left in (pending, ready):
        if left is not None:
            left()
    return Rollout(plan.service, plan.version, plan.previous, plan.replicas, len(new),
                   plan.removes)


def run_step(stack: Stack, step: Step, new: list[ContainerState]) -> None:
    """One step; ``new`` collects the replicas the plan starts."""
    if isinstance(step, RemoveStopped | Drain):
        with stack.steps.step(step.title):
            if isinstance(step, Drain) and not stack.dry_run:
                stack.steps.waiting(f"{', '.join(step.names)} to drain and stop")
            for _version, argv in step.commands(stack.compose):
                stack.run(argv, timeout=(step.grace_s + 60) if isinstance(step, Drain) else 60)
    elif isinstance(step, StartBeside):
        before = {c.id for c in stack.containers(step.service, include_stopped=True)}
        with stack.steps.step(step.title):
            stack.run_at(step.version, step.commands(stack.compose)[0][1])
        if not stack.dry_run:
            new += [c for c in stack.containers(step.service, include_stopped=True)
                    if c.id not in before]
    elif isinstance(step, Recreate):
        with stack.steps.step(step.title):
            stack.run_at(step.version, step.commands(stack.compose)[0][1])
        if not stack.dry_run:
            new += [c for c in stack.containers(step.service, include_stopped=True)
                    if c.version == step.version]
    elif isinstance(step, WaitHealthy):
        wait_healthy(stack, step, [*step.known, *(c.id for c in new)])
    elif isinstance(step, WaitRouted):
        with stack.steps.step(step.title):
            wait_routed(stack, [], timeout_s=stack.env.health_timeout_s)
    else:  # pragma: no cover - a planner returned a step this executor does not know
        raise TypeError(f"unknown step {type(step).__name__}")


def wait_healthy(stack: Stack, step: WaitHealthy, ids: list[str]) -> None:
    """Docker's health of ``ids``, and for a routed service their answers through the entry
    point (which usually come first: the wait ends on whichever shows all of them healthy)."""
    what = f"{step.service} {step.version}"
    timeout_s = stack.env.health_timeout_s
    with stack.steps.step(f"wait for {len(ids)} {step.service} replica(s) of {step.version}"
                          + (" (healthy and routed)" if step.routed else "")):
        if not step.routed or stack.dry_run:
            wait_ready(stack, ids, timeout_s=timeout_s, what=what)
            if step.routed:
                wait_routed(stack, ids, timeout_s=timeout_s)
            return
        routing = Routing(stack, ids)
        try:
            wait_ready(stack, ids, timeout_s=timeout_s, what=what, routing=routing)
            wait_routed(stack, ids, timeout_s=timeout_s, routing=routing)
        finally:
            routing.close()


def discard(stack: Stack, service: str, containers: list[ContainerState], *, reason: str) -> None:
    """Remove the replicas of a failed version; the old ones kept serving all along."""
    if not containers:
        return
    with stack.steps.step(f"discard {len(containers)} new {service} replica(s): {reason}"):
        stack.run(remove_containers([c.id for c in containers]))
