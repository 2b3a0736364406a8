"""The swarm argv builders and the derived stack file, asserted without an engine."""

from __future__ import annotations

import shlex
from typing import Any

from ops.runtime.swarm import (
    StackPlan,
    UpdatePolicy,
    entrypoint_services,
    host_port,
    one_off,
    relay_connect,
    relay_service,
    service_logs,
    service_scale,
    service_update,
    stack_deploy,
    stack_file,
)

DIGEST = "sha256:" + "cd" * 32
COMPOSE: dict[str, Any] = {
    "services": {
        "proxy": {"build": {"context": "proxy"}, "image": "tminus-demo/proxy:stable",
                  "ports": ["127.0.0.1:18080:8080"], "restart": "unless-stopped",
                  "labels": {"tminus.role": "entrypoint"}},
        "app": {"build": ".", "image": "tminus-demo/app:v0.2.0", "depends_on": ["db"],
                "labels": {"tminus.version": "v0.2.0", "tminus.service": "app"},
                "stop_grace_period": "20s"},
        "db": {"image": "tminus-demo/db:15", "volumes": ["dbdata:/var/lib/postgresql/data"]},
    },
    "volumes": {"dbdata": None},
}
PLAN = StackPlan(images={"app": f"10.9.0.1:5000/tminus-demo/app@{DIGEST}"},
                 replicas={"app": 3}, routed=frozenset({"app"}), pins={"db": "n0d3id"},
                 versions={"app": "v0.3.0"})


def line(argv: list[str]) -> str:
    return shlex.join(argv)


def test_rolling_update_is_one_service_update_by_digest_with_swarms_own_rollback() -> None:
    argv = service_update("shop_app", f"reg:5000/app@{DIGEST}", "v0.3.0",
                          UpdatePolicy(parallelism=2, delay_s=1, monitor_s=5))
    assert line(argv) == (
        "docker service update --detach --with-registry-auth "
        f"--image reg:5000/app@{DIGEST} --container-label-add tminus.version=v0.3.0 "
        "--update-order start-first --update-parallelism 2 --update-delay 1s "
        "--update-failure-action rollback --update-monitor 5s --update-max-failure-ratio 0 "
        "--rollback-order start-first --rollback-parallelism 2 --rollback-monitor 5s shop_app")


def test_stack_deploy_sends_registry_credentials_to_the_nodes() -> None:
    assert line(stack_deploy("shop", "/tmp/stack.yml")) == (
        "docker stack deploy --compose-file /tmp/stack.yml --with-registry-auth --prune shop")


def test_scale_is_detached_so_tminus_follows_convergence_itself() -> None:
    assert line(service_scale("shop_app", 6)) == "docker service scale --detach shop_app=6"


def test_logs_are_bounded_by_time() -> None:
    assert line(service_logs("shop_app", since_s=300)) == (
        "docker service logs --no-task-ids --timestamps --since 300s shop_app")


def test_one_off_task_is_retried_a_bounded_number_of_times_on_the_stack_network() -> None:
    assert line(one_off("shop_migrate", "app@x", ["alembic", "upgrade", "head"],
                        network="shop_default", env_file="/srv/.env")) == (
        "docker service create --detach --with-registry-auth --name shop_migrate "
        "--restart-condition on-failure --restart-max-attempts 9 --restart-delay 2s "
        "--no-healthcheck --network shop_default --env-file /srv/.env app@x "
        "alembic upgrade head")


def test_stack_file_runs_the_app_by_digest() -> None:
    assert stack_file(COMPOSE, PLAN)["services"]["app"]["image"] == (
        f"10.9.0.1:5000/tminus-demo/app@{DIGEST}")


def test_stack_file_drops_what_only_compose_understands() -> None:
    services = stack_file(COMPOSE, PLAN)["services"]
    assert "build" not in services["app"] and "depends_on" not in services["app"]
    assert "restart" not in services["proxy"]


def test_stack_file_resolves_every_service_by_dns_round_robin_not_a_vip() -> None:
    services = stack_file(COMPOSE, PLAN)["services"]
    assert {s["deploy"]["endpoint_mode"] for s in services.values()} == {"dnsrr"}
    assert services["app"]["deploy"]["replicas"] == 3


def test_stack_file_carries_the_update_and_rollback_policy_for_released_services() -> None:
    deploy = stack_file(COMPOSE, PLAN)["services"]["app"]["deploy"]
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["rollback_config"]["order"] == "start-first"


def test_stack_file_labels_containers_with_the_release() -> None:
    assert stack_file(COMPOSE, PLAN)["services"]["app"]["labels"]["tminus.version"] == "v0.3.0"


def test_stack_file_publishes_the_entry_point_in_host_mode_not_through_the_mesh() -> None:
    assert stack_file(COMPOSE, PLAN)["services"]["proxy"]["ports"] == [
        {"target": 8080, "published": 18080, "protocol": "tcp", "mode": "host"}]


def test_stack_file_pins_a_stateful_service_to_the_node_holding_its_volume() -> None:
    deploy = stack_file(COMPOSE, PLAN)["services"]["db"]["deploy"]
    assert deploy["placement"]["constraints"] == ["node.id == n0d3id"]


def test_stack_file_keeps_the_volumes_and_declares_a_version_the_cli_accepts() -> None:
    derived = stack_file(COMPOSE, PLAN)
    assert derived["version"] == "3.8"
    assert derived["volumes"] == {"dbdata": None}


def test_stack_file_leaves_the_compose_file_as_it_was() -> None:
    before = repr(COMPOSE)
    stack_file(COMPOSE, PLAN)
    assert repr(COMPOSE) == before


def test_short_port_without_host_part_publishes_the_same_port() -> None:
    assert host_port("8080") == {"target": 8080, "published": 8080, "protocol": "tcp",
                                 "mode": "host"}


def test_entry_point_is_found_by_its_role_label() -> None:
    assert entrypoint_services(COMPOSE) == ["proxy"]


def test_the_relay_to_the_stores_is_an_idle_never_restarted_task_pinned_to_the_manager() -> None:
    argv = relay_service("shop_tminus-relay-42", f"reg:5000/db@{DIGEST}", network="shop_default",
                         node_id="m4n4g3r", owner="ops1:42")
    assert line(argv) == (
        "docker service create --detach --with-registry-auth --name shop_tminus-relay-42 "
        "--network shop_default --constraint node.id==m4n4g3r --restart-condition none "
        "--no-healthcheck --stop-grace-period 1s --label tminus.relay=ops1:42 "
        f"--entrypoint sh reg:5000/db@{DIGEST} -c 'while :; do sleep 3600; done'")


def test_each_relayed_connection_is_a_docker_exec_into_the_relay_naming_host_and_port() -> None:
    argv = relay_connect("c0ffee", "db", 5432)
    assert argv[:6] == ["docker", "exec", "-i", "c0ffee", "sh", "-c"]
    assert argv[-2:] == ["db", "5432"]
