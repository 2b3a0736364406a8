"""Deploy strategies: a registry of pure planners and the one executor that runs their plans.

A strategy is a function ``(ServiceState, version, RolloutOptions) -> Plan``: engine state in, a
list of steps out, nothing run. ``execute.execute`` runs any plan against a compose stack. A new
strategy is one planner registered here; ``planner(name)`` is how the deploy finds it.
"""

from __future__ import annotations

from collections.abc import Callable

from ops.deploy.strategies.plan import Plan, RolloutOptions, ServiceState
from ops.deploy.strategies.recreate import plan_recreate
from ops.deploy.strategies.rolling import plan_rolling
from ops.errors import UsageError

Planner = Callable[[ServiceState, str, RolloutOptions], Plan]

STRATEGIES: dict[str, Planner] = {
    "rolling": plan_rolling,
    "recreate": plan_recreate,
}


def names() -> list[str]:
    return list(STRATEGIES)


def planner(name: str) -> Planner:
    """The planner registered as ``name``; UsageError (exit 2) naming the known ones."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UsageError(f"unknown strategy {name!r}",
                         hint="use " + " or ".join(STRATEGIES)) from None
