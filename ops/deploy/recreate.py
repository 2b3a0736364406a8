"""The recreate strategy: stop the old containers, then start the new ones.

For services that must never run two versions at once — the demo's worker is the single consumer
of a queue. There is a gap while the service restarts; the configuration chooses it per service
(``ops.environments.<env>.services.<name>.strategy: recreate``).
"""

from __future__ import annotations

from ops.deploy.rolling import Rollout, clear_leftovers, current_version
from ops.deploy.stack import Stack, wait_ready


def recreate(stack: Stack, service: str, version: str, *,
             replicas: int | None = None) -> Rollout:
    clear_leftovers(stack, service)
    running = stack.running(service)
    previous = current_version(running)
    wanted = replicas or len(running) or stack.replicas_default(service)
    if running and all(c.version == version for c in running) and len(running) == wanted:
        stack.steps.say(f"  {service} already runs {version} ({len(running)} replicas)")
        return Rollout(service, version, previous, wanted, 0, 0)
    with stack.steps.step(f"recreate {service} at {version} ({wanted} replica(s); "
                          f"{len(running)} stopped first)"):
        stack.run_at(version, stack.compose.recreate(service, wanted))
    if not stack.dry_run:
        fresh = [c for c in stack.containers(service, include_stopped=True)
                 if c.version == version]
        with stack.steps.step(f"wait for {service} {version}"):
            wait_ready(stack, [c.id for c in fresh], timeout_s=stack.env.health_timeout_s,
                       what=f"{service} {version}")
    return Rollout(service, version, previous, wanted, wanted, len(running))
