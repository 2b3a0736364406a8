"""The rolling strategy: new replicas beside the old, healthy and routed first, then the old
ones drained together.

The old replicas are never touched before the new ones are healthy and the entry point routes to
them, so when the new version fails, discarding it *is* the rollback, and the service never has
fewer routed replicas than it had. The old ones then drain in batches of ``options.batch``
(default: all at once, one drain period for the lot).
"""

from __future__ import annotations

from ops.deploy.strategies.plan import (
    Note,
    Plan,
    RemoveStopped,
    RolloutOptions,
    ServiceState,
    StartBeside,
    Step,
    WaitHealthy,
    current_version,
    drains,
)


def plan_rolling(state: ServiceState, version: str, options: RolloutOptions) -> Plan:
    running = state.running
    stale = [c for c in running if c.version != version]
    fresh = [c for c in running if c.version == version]
    previous = current_version(stale)
    wanted, restoring = state.wanted(options, max(len(stale), len(fresh)))
    missing = max(0, wanted - len(fresh))
    steps: list[Step] = [restoring] if restoring else []
    if state.stopped:
        steps.append(RemoveStopped(state.service, tuple(c.id for c in state.stopped)))
    if not stale and not missing:
        steps.append(Note(f"  {state.service} already runs {version} ({len(fresh)} replicas)"))
        return Plan(state.service, "rolling", version, previous, len(fresh), tuple(steps))
    if missing:
        steps.append(StartBeside(state.service, version, len(running), len(running) + missing))
    steps.append(WaitHealthy(state.service, version, tuple(c.id for c in fresh),
                             routed=state.routed))
    steps += drains(state.service, stale, batch=options.batch, grace_s=options.grace_s,
                    what="old")
    extra = fresh[wanted:]
    steps += drains(state.service, extra, batch=options.batch, grace_s=options.grace_s,
                    what="surplus")
    return Plan(state.service, "rolling", version, previous, wanted, tuple(steps),
                discard_new_on_failure=True, removes=len(stale) + len(extra))
