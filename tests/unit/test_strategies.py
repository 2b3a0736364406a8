"""The strategies' decisions, asserted as planned steps and command lines, without an engine.

Each planner reads a ``ServiceState`` made here by hand (what the engine would report) and
returns a plan; these specs read its steps and the argv it would run, the way Kamal's command
tests read the joined command.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from ops.deploy.strategies import names, planner
from ops.deploy.strategies.plan import (
    Drain,
    Note,
    Recreate,
    RemoveStopped,
    RolloutOptions,
    ServiceState,
    StartBeside,
    WaitHealthy,
    WaitRouted,
    chunks,
)
from ops.deploy.strategies.recreate import plan_recreate
from ops.deploy.strategies.rolling import plan_rolling
from ops.deploy.strategies.scale import plan_scale
from ops.errors import UsageError
from ops.runtime.compose import Compose
from ops.runtime.docker_engine import ContainerState

COMPOSE = Compose("shop-production", Path("/srv/shop/docker-compose.yml"))


def replica(number: int, version: str | None, *, service: str = "app",
            status: str = "running") -> ContainerState:
    return ContainerState(id=f"{service}{number:02d}" + "0" * 58, name=f"shop-{service}-{number}",
                          service=service, version=version, status=status, health="healthy",
                          image=f"shop/{service}:{version}", number=number, started_at="")


def app(*replicas: ContainerState, routed: bool = True, default: int = 1,
        asked: int | None = None) -> ServiceState:
    return ServiceState("app", tuple(replicas), default_replicas=default, routed=routed,
                        asked=asked)


def lines(plan_commands: list[tuple[str | None, list[str]]]) -> list[str]:
    return [(f"TMINUS_VERSION={v} " if v else "") + shlex.join(argv)
            for v, argv in plan_commands]


def test_rolling_starts_the_new_version_beside_the_old_then_drains_all_old_at_once() -> None:
    plan = plan_rolling(app(replica(1, "v1"), replica(2, "v1"), replica(3, "v1")), "v2",
                        RolloutOptions(batch=0))
    assert [type(s) for s in plan.steps] == [StartBeside, WaitHealthy, Drain]
    drain = plan.steps[2]
    assert isinstance(drain, Drain) and drain.names == ("shop-app-1", "shop-app-2", "shop-app-3")
    assert lines(plan.command_lines(COMPOSE)) == [
        "TMINUS_VERSION=v2 docker compose -p shop-production -f /srv/shop/docker-compose.yml "
        "up -d --no-build --no-deps --no-recreate --scale app=6 app",
        f"docker stop -t 20 {' '.join(drain.ids)}",
        f"docker rm -f {' '.join(drain.ids)}"]
    assert (plan.previous, plan.replicas, plan.removes) == ("v1", 3, 3)


def test_rolling_waits_for_health_and_routing_before_any_old_replica_is_touched() -> None:
    plan = plan_rolling(app(replica(1, "v1"), replica(2, "v1")), "v2", RolloutOptions())
    wait = plan.steps[1]
    assert isinstance(wait, WaitHealthy) and wait.routed
    assert plan.discard_new_on_failure


def test_rolling_with_a_batch_drains_that_many_old_replicas_at_a_time() -> None:
    plan = plan_rolling(app(*(replica(n, "v1") for n in range(1, 6))), "v2",
                        RolloutOptions(batch=2))
    drains = [s for s in plan.steps if isinstance(s, Drain)]
    assert [len(d.ids) for d in drains] == [2, 2, 1]


def test_rolling_of_an_unrouted_service_waits_for_docker_health_only() -> None:
    plan = plan_rolling(app(replica(1, "v1"), routed=False), "v2", RolloutOptions())
    wait = plan.steps[1]
    assert isinstance(wait, WaitHealthy) and not wait.routed


def test_rolling_to_the_running_version_plans_nothing_but_a_note() -> None:
    plan = plan_rolling(app(replica(1, "v2"), replica(2, "v2")), "v2", RolloutOptions())
    assert [type(s) for s in plan.steps] == [Note]
    assert not plan.changes and plan.command_lines(COMPOSE) == []


def test_rolling_after_an_interrupted_switch_starts_only_the_missing_new_replicas() -> None:
    state = app(replica(1, "v1"), replica(2, "v1"), replica(3, "v2"))
    plan = plan_rolling(state, "v2", RolloutOptions())
    start = plan.steps[0]
    assert isinstance(start, StartBeside) and (start.running, start.total) == (3, 4)
    wait = plan.steps[1]
    assert isinstance(wait, WaitHealthy) and wait.known == (state.containers[2].id,)
    assert plan.replicas == 2


def test_rolling_removes_stopped_leftovers_first_so_compose_counts_right() -> None:
    dead = replica(4, "v2", status="exited")
    plan = plan_rolling(app(replica(1, "v1"), dead), "v2", RolloutOptions())
    first = plan.steps[0]
    assert isinstance(first, RemoveStopped) and first.ids == (dead.id,)
    assert lines(first.commands(COMPOSE)) == [f"docker rm -f {dead.id}"]


def test_rolling_of_a_service_with_no_replicas_starts_the_configured_count() -> None:
    plan = plan_rolling(app(default=3), "v2", RolloutOptions())
    start = plan.steps[0]
    assert isinstance(start, StartBeside) and start.total == 3
    assert not any(isinstance(s, Drain) for s in plan.steps)


def test_rolling_after_a_lost_replica_restores_the_count_last_asked_for_and_says_so() -> None:
    plan = plan_rolling(app(replica(1, "v1"), replica(2, "v1"), asked=3), "v2", RolloutOptions())
    note, start = plan.steps[0], plan.steps[1]
    assert isinstance(note, Note) and "restoring 3 replicas (2 running" in note.text
    assert isinstance(start, StartBeside) and start.total == 5
    assert plan.replicas == 3


def test_redeploying_the_running_version_after_a_lost_replica_starts_only_the_lost_one() -> None:
    plan = plan_rolling(app(replica(1, "v2"), replica(2, "v2"), asked=3), "v2", RolloutOptions())
    start = plan.steps[1]
    assert isinstance(start, StartBeside) and (start.running, start.total) == (2, 3)
    assert not any(isinstance(s, Drain) for s in plan.steps)


def test_rolling_never_lowers_a_count_raised_outside_tminus_to_the_one_asked_for() -> None:
    running = [replica(n, "v1") for n in range(1, 6)]
    plan = plan_rolling(app(*running, asked=3), "v2", RolloutOptions())
    assert plan.replicas == 5
    assert not any(isinstance(s, Note) for s in plan.steps)


def test_an_explicit_replicas_option_wins_over_the_count_asked_for() -> None:
    plan = plan_rolling(app(replica(1, "v1"), asked=3), "v2", RolloutOptions(replicas=2))
    assert plan.replicas == 2


def test_recreate_after_a_lost_replica_restores_the_count_last_asked_for() -> None:
    state = ServiceState("worker", (replica(1, "v1", service="worker"),), asked=2)
    plan = plan_recreate(state, "v2", RolloutOptions())
    recreate = plan.steps[1]
    assert isinstance(recreate, Recreate) and recreate.replicas == 2


def test_recreate_of_the_running_version_after_a_lost_replica_stops_nothing() -> None:
    state = ServiceState("worker", (replica(1, "v2", service="worker"),), asked=2)
    plan = plan_recreate(state, "v2", RolloutOptions())
    assert [type(s) for s in plan.steps] == [Note, StartBeside, WaitHealthy]
    start = plan.steps[1]
    assert isinstance(start, StartBeside) and (start.running, start.total) == (1, 2)
    assert plan.removes == 0


def test_recreate_stops_the_old_before_starting_the_new_at_the_same_count() -> None:
    state = ServiceState("worker", (replica(1, "v1", service="worker"),))
    plan = plan_recreate(state, "v2", RolloutOptions())
    assert [type(s) for s in plan.steps] == [Recreate, WaitHealthy]
    assert lines(plan.command_lines(COMPOSE)) == [
        "TMINUS_VERSION=v2 docker compose -p shop-production -f /srv/shop/docker-compose.yml "
        "up -d --no-build --no-deps --force-recreate --scale worker=1 worker"]
    assert not plan.discard_new_on_failure


def test_recreate_of_the_running_version_at_the_wanted_count_plans_nothing() -> None:
    state = ServiceState("worker", (replica(1, "v2", service="worker"),))
    assert not plan_recreate(state, "v2", RolloutOptions()).changes


def test_scale_up_adds_every_replica_at_once_at_the_running_version() -> None:
    plan = plan_scale(app(replica(1, "v2"), replica(2, "v2")), 5)
    assert [type(s) for s in plan.steps] == [StartBeside, WaitHealthy]
    assert lines(plan.command_lines(COMPOSE))[0].startswith("TMINUS_VERSION=v2 ")
    assert lines(plan.command_lines(COMPOSE))[0].endswith("--no-recreate --scale app=5 app")


def test_scale_down_drains_the_newest_replicas_a_step_at_a_time_waiting_for_routing() -> None:
    plan = plan_scale(app(*(replica(n, "v2") for n in range(1, 5))), 1, step=2)
    assert [type(s) for s in plan.steps] == [Drain, WaitRouted, Drain, WaitRouted]
    first, second = plan.steps[0], plan.steps[2]
    assert isinstance(first, Drain) and first.names == ("shop-app-4", "shop-app-3")
    assert isinstance(second, Drain) and second.names == ("shop-app-2",)
    assert first.title == "scale app 4 → 2 (drain shop-app-4, shop-app-3)"


def test_scale_down_of_an_unrouted_service_does_not_wait_for_the_entry_point() -> None:
    state = ServiceState("worker", tuple(replica(n, "v2", service="worker") for n in (1, 2)))
    assert [type(s) for s in plan_scale(state, 1).steps] == [Drain]


def test_chunks_of_zero_means_everything_at_once() -> None:
    items = [replica(n, "v1") for n in range(1, 4)]
    assert [len(c) for c in chunks(items, 0)] == [3]
    assert [len(c) for c in chunks(items, 1)] == [1, 1, 1]


def test_registry_names_rolling_and_recreate_and_refuses_others_with_the_list() -> None:
    assert names() == ["rolling", "recreate"]
    assert planner("rolling") is plan_rolling
    with pytest.raises(UsageError) as caught:
        planner("blue-green")
    assert caught.value.hint == "use rolling or recreate"
