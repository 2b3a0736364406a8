"""The recreate strategy: stop the old containers, then start the new ones.

For services that must never run two versions at once — the demo's worker is the single consumer
of a queue. There is a gap while the service restarts; the configuration chooses it per service
(``ops.environments.<env>.services.<name>.strategy: recreate``).
"""

from __future__ import annotations

from ops.deploy.strategies.plan import (
    Note,
    Plan,
    Recreate,
    RemoveStopped,
    RolloutOptions,
    ServiceState,
    StartBeside,
    Step,
    WaitHealthy,
    current_version,
)


def plan_recreate(state: ServiceState, version: str, options: RolloutOptions) -> Plan:
    running = state.running
    previous = current_version(running)
    wanted, restoring = state.wanted(options, len(running))
    steps: list[Step] = [restoring] if restoring else []
    if state.stopped:
        steps.append(RemoveStopped(state.service, tuple(c.id for c in state.stopped)))
    if running and all(c.version == version for c in running) and len(running) == wanted:
        steps.append(Note(f"  {state.service} already runs {version} ({len(running)} replicas)"))
        return Plan(state.service, "recreate", version, previous, wanted, tuple(steps))
    if running and all(c.version == version for c in running) and len(running) < wanted:
        # one version still: the lost replicas start beside the running ones, none stops
        steps.append(StartBeside(state.service, version, len(running), wanted))
        steps.append(WaitHealthy(state.service, version, tuple(c.id for c in running),
                                 routed=state.routed))
        return Plan(state.service, "recreate", version, previous, wanted, tuple(steps))
    steps.append(Recreate(state.service, version, wanted, len(running)))
    steps.append(WaitHealthy(state.service, version, routed=state.routed))
    return Plan(state.service, "recreate", version, previous, wanted, tuple(steps),
                removes=len(running))
