"""The compose argv builders, asserted as the joined command line a person would type."""

from __future__ import annotations

import shlex
from pathlib import Path

from ops.runtime.compose import (
    COMPOSE_V1,
    Compose,
    remove_containers,
    stop_containers,
    version_env,
)

V2 = Compose("shop-production", Path("/srv/shop/docker-compose.yml"))
V1 = Compose("shop-production", Path("/srv/shop/docker-compose.yml"), COMPOSE_V1)


def line(argv: list[str]) -> str:
    return shlex.join(argv)


def test_scale_to_adds_replicas_without_touching_running_ones() -> None:
    assert line(V2.scale_to("app", 6)) == (
        "docker compose -p shop-production -f /srv/shop/docker-compose.yml "
        "up -d --no-build --no-deps --no-recreate --scale app=6 app")


def test_v1_program_is_the_docker_compose_binary_with_the_same_arguments() -> None:
    assert line(V1.scale_to("app", 2)) == (
        "docker-compose -p shop-production -f /srv/shop/docker-compose.yml "
        "up -d --no-build --no-deps --no-recreate --scale app=2 app")


def test_recreate_forces_new_containers_at_the_given_count() -> None:
    assert line(V2.recreate("worker", 1)).endswith(
        "up -d --no-build --no-deps --force-recreate --scale worker=1 worker")


def test_migrations_run_in_a_one_off_container_removed_afterwards() -> None:
    assert line(V2.migrate("app")).endswith(
        "run --rm --no-deps -T app python3 -m alembic upgrade head")


def test_downgrade_names_the_revision_as_its_own_argument() -> None:
    assert V2.downgrade("app", "0001; rm -rf /")[-1] == "0001; rm -rf /"


def test_up_without_options_starts_everything_detached() -> None:
    assert line(V2.up()) == (
        "docker compose -p shop-production -f /srv/shop/docker-compose.yml up -d --no-build")


def test_up_of_infrastructure_keeps_existing_containers() -> None:
    assert line(V2.up(["db", "redis"], no_recreate=True)).endswith(
        "up -d --no-build --no-recreate db redis")


def test_stop_passes_the_grace_period_before_the_services() -> None:
    assert line(V2.stop(["app"], timeout=20)).endswith("stop -t 20 app")


def test_rm_stops_and_removes_without_asking() -> None:
    assert line(V2.rm(["app"])).endswith("rm -f -s app")


def test_ps_lists_quietly_when_asked() -> None:
    assert line(V2.ps(["app"], quiet=True)).endswith("ps -q app")


def test_down_removes_orphans_and_volumes_only_when_asked() -> None:
    assert line(V2.down()).endswith("down --remove-orphans")
    assert line(V2.down(volumes=True, timeout=5)).endswith("down --remove-orphans -v -t 5")


def test_container_stop_gives_each_replica_time_to_drain() -> None:
    assert line(stop_containers(["abc", "def"], timeout=20)) == "docker stop -t 20 abc def"


def test_container_removal_is_forced() -> None:
    assert line(remove_containers(["abc"])) == "docker rm -f abc"


def test_version_reaches_compose_through_the_environment_not_the_argv() -> None:
    env = version_env("v0.2.0", {"PATH": "/usr/bin"})
    assert env == {"PATH": "/usr/bin", "TMINUS_VERSION": "v0.2.0"}
    assert "v0.2.0" not in line(V2.scale_to("app", 3))
