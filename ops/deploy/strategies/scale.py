"""Scaling plans: up at once, down ``step`` replicas at a time, each step drained first.

Adding replicas is safe all at once (the proxy routes to them only once healthy). Removing goes
newest first, ``step`` at a time: each removed replica drains (its /health turns 503 so the
proxy stops routing to it) before it stops, and when the entry point routes to the service the
next step waits until the health URL answers healthy again.
"""

from __future__ import annotations

from ops.deploy.strategies.plan import STOP_GRACE_S as GRACE_S
from ops.deploy.strategies.plan import (
    Drain,
    Note,
    Plan,
    RemoveStopped,
    ServiceState,
    StartBeside,
    Step,
    WaitHealthy,
    WaitRouted,
    chunks,
    current_version,
)


def plan_scale(state: ServiceState, count: int, *, step: int = 1,
               grace_s: int = GRACE_S) -> Plan:
    """``count`` replicas of ``state.service`` at the version they run (several: refused by the
    caller before planning)."""
    running = state.running
    version = current_version(running) or "latest"
    have = len(running)
    steps: list[Step] = []
    if state.stopped:
        steps.append(RemoveStopped(state.service, tuple(c.id for c in state.stopped)))
    if count > have:
        steps.append(StartBeside(state.service, version, have, count,
                                 label=f"scale {state.service} {have} → {count} "
                                       f"(at once, {version})"))
        steps.append(WaitHealthy(state.service, version, routed=False))
    elif count < have:
        doomed = sorted(running, key=lambda c: c.number, reverse=True)[:have - count]
        left = have
        for chunk in chunks(doomed, step):
            left -= len(chunk)
            steps.append(Drain(state.service, tuple(c.id for c in chunk),
                               tuple(c.name for c in chunk), grace_s=grace_s, what="scale",
                               label=f"scale {state.service} {left + len(chunk)} → {left} "
                                     f"(drain {', '.join(c.name for c in chunk)})"))
            if state.routed and left > 0:
                steps.append(WaitRouted(state.service))
    else:
        steps.append(Note(f"  {state.service} already has {have} replica(s)"))
    return Plan(state.service, "scale", version, version, count, tuple(steps),
                removes=max(0, have - count))
