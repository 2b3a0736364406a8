"""A three-node swarm (three dockerds in network namespaces): replicas spread over the nodes
from pushed digests, two operators on different managers, backup and restore through the
manager, and a node lost mid-traffic with no data lost.

Rows and keys are written and read by the test through the engine of the node that runs the
store (``docker exec psql``), a channel of its own; tminus reaches the stores only through the
manager ``DOCKER_HOST`` names.

Request counts and durations are printed (-s), never asserted beyond "none failed" where the
spec promises it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest

from ops.runtime.probe import LoadClient
from tests.e2e.swarm.conftest import SwarmStack
from tests.e2e.swarm.harness import Node, wait_for

pytestmark = pytest.mark.e2e


def load_on(url: str) -> LoadClient:
    return LoadClient(url, concurrency=3, max_requests=30_000, max_seconds=180.0, pause_s=0.01)


@dataclass(frozen=True)
class Race:
    """The stack's first deploy, started at the same moment by two operators on two managers
    (different roots, users and ``DOCKER_HOST``s), before the swarm holds any lock service."""

    codes: list[int]
    outputs: list[str]
    took_s: float


@pytest.fixture(scope="module")
def race(three_swarm: SwarmStack) -> Race:
    second = three_swarm.swarm.nodes[1]
    three_swarm.docker("node", "promote", three_swarm.swarm.node_ids()[second.name])
    wait_for("the second manager", lambda: second.docker(
        "node", "ls", "-q", check=False, env=three_swarm.env) != "", timeout=30)
    other_root = three_swarm.root.parent / "operator-2"
    shutil.copytree(three_swarm.root, other_root,
                    ignore=shutil.ignore_patterns("releases", ".tminus"))
    other_env = {**three_swarm.env, "DOCKER_HOST": second.docker_host,
                 "TMINUS_USER": "operator-2"}
    args = ("deploy", "production", "v0.1.0", "--skip-checks", "--skip-backup", "--watch", "2")
    started = time.monotonic()
    both = [three_swarm.popen(*args),
            SwarmStack(three_swarm.swarm, other_root, other_env).popen(*args, env=other_env)]
    outputs = [p.communicate(timeout=300)[0] for p in both]
    took = time.monotonic() - started
    codes = [p.returncode for p in both]
    print(f"\n[swarm-3 first deploy v0.1.0, two operators at once] {took:.1f}s · "
          f"exit codes {codes}")
    return Race(codes, outputs, took)


@pytest.fixture(scope="module")
def stack(three_swarm: SwarmStack, race: Race) -> SwarmStack:
    """The stack the race deployed; the second manager is a worker again afterwards (two
    managers have no quorum once one is lost, and any worker may be the node lost below)."""
    assert 0 in race.codes, "\n".join(race.outputs) + three_swarm.diagnose()
    three_swarm.docker("node", "demote", three_swarm.swarm.node_ids()[
        three_swarm.swarm.nodes[1].name])
    return three_swarm


def test_two_operators_deploying_at_once_on_two_managers_one_runs_the_other_names_the_holder(
        race: Race) -> None:
    assert sorted(race.codes) == [0, 1], race.outputs
    loser = race.outputs[race.codes.index(1)]
    assert "the swarm deploy lock of tminus-sw is held by " in loser
    assert any(f"held by {who} on" in loser for who in ("e2e", "operator-2"))


def test_deploy_spreads_the_replicas_over_the_nodes_from_pushed_digests(
        stack: SwarmStack) -> None:
    with load_on(f"{stack.loopback_url}/version") as load:
        started = time.monotonic()
        done = stack.invoke("deploy", "production", "v0.2.0", "--skip-checks",
                            "--skip-backup", "--watch", "2")
        took = time.monotonic() - started
    print(f"\n[swarm-3 deploy v0.1.0 → v0.2.0] {took:.1f}s · {load.stats.total} requests · "
          f"{load.stats.failed} failed")
    assert done.returncode == 0, done.stdout + done.stderr
    assert load.stats.failed == 0, load.failures
    tasks = stack.app_tasks()
    assert [t["version"] for t in tasks] == ["v0.2.0"] * 3
    assert len({t["node"] for t in tasks}) >= 2  # Swarm's spread also weighs each node's load
    image = stack.docker("service", "inspect", "--format",
                         "{{.Spec.TaskTemplate.ContainerSpec.Image}}", "tminus-sw_app")
    assert "@sha256:" in image


def test_the_version_a_deploy_replaces_is_read_from_the_tasks_on_every_node(
        stack: SwarmStack) -> None:
    """The deploy above found v0.1.0 running although the manager's engine runs few or none of
    the app's replicas (Swarm spreads them to the nodes with fewer tasks)."""
    events = [json.loads(line) for line in
              (stack.root / "releases/deployments.jsonl").read_text().splitlines()]
    last = [e for e in events if e["action"] == "deploy" and e["result"] == "success"][-1]
    assert (last["from_version"], last["to_version"]) == ("v0.1.0", "v0.2.0")


def leave_a_relay_of_a_killed_backup(stack: SwarmStack) -> str:
    """A relay service as a backup killed with SIGKILL on this host leaves it: labelled with
    this host and a pid that is gone."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    name = f"tminus-sw_tminus-relay-{gone.pid}"
    image = stack.docker("service", "inspect", "--format",
                         "{{.Spec.TaskTemplate.ContainerSpec.Image}}", "tminus-sw_db")
    stack.docker("service", "create", "--detach", "--name", name, "--restart-condition", "none",
                 "--label", f"tminus.relay={socket.gethostname()}:{gone.pid}",
                 "--entrypoint", "sleep", image, "300")
    return name


def test_backup_then_restore_through_the_manager_bring_changed_and_deleted_rows_back(
        stack: SwarmStack) -> None:
    stack.psql("CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL); "
               "INSERT INTO orders SELECT g, 'item-' || g FROM generate_series(1, 500) g")
    stack.redis_cli("SET", "cart:7", "three apples")
    leftover = leave_a_relay_of_a_killed_backup(stack)
    started = time.monotonic()
    backup = stack.invoke("backup", timeout=180)
    backup_s = time.monotonic() - started
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert f"removing relay task {leftover}: its process" in backup.stdout
    stack.psql("DELETE FROM orders WHERE id > 100; UPDATE orders SET item = 'changed'")
    stack.redis_cli("DEL", "cart:7")
    started = time.monotonic()
    restore = stack.invoke("restore", "latest", "--yes", timeout=180)
    restore_s = time.monotonic() - started
    print(f"\n[swarm-3 backup] {backup_s:.1f}s · [restore, safety backup included] "
          f"{restore_s:.1f}s")
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert stack.psql("SELECT count(*), count(*) FILTER (WHERE item = 'item-' || id) "
                      "FROM orders") == "500|500"
    assert stack.redis_cli("GET", "cart:7") == "three apples"
    # nothing left behind: no relay task, and the swarm lock the restore held is free again
    assert stack.docker("service", "ls", "-q", "--filter", "label=tminus.relay") == ""
    assert "tminus.lock.holder" not in stack.docker(
        "service", "inspect", "--format", "{{json .Spec.Labels}}", "tminus-sw_tminus-lock")


@dataclass(frozen=True)
class NodeLoss:
    """One node's engine stopped mid-traffic, once for the module, and what was seen."""

    lost: Node
    stores_before: dict[str, str]  # service -> node name, just before the loss
    rescheduled_s: float
    total: int
    after_loss: int
    failed: int
    failures: list[str]
    smoke: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def node_loss(stack: SwarmStack) -> NodeLoss:
    """Rows and a key written, then the engine of a worker node that runs app replicas
    stopped under load; Swarm reschedules them on the other two nodes."""
    ids = stack.swarm.node_ids()
    before_loss = stack.app_tasks()
    lost = next((n for n in stack.swarm.nodes[1:]
                 if any(t["node"] == ids[n.name] for t in before_loss)), None)
    assert lost is not None, f"no worker node runs an app replica: {before_loss}"
    stack.psql("CREATE TABLE before_loss (id int PRIMARY KEY); "
               "INSERT INTO before_loss SELECT generate_series(1, 300)")
    stack.redis_cli("SET", "before:loss", "kept")
    stores = {s: stack.store(s)[0].name for s in ("db", "redis")}
    lost_id = ids[lost.name]
    carried = sum(t["node"] == lost_id for t in before_loss)

    def rescheduled() -> bool:
        tasks = stack.app_tasks()
        return len(tasks) == 3 and all(t["node"] != lost_id for t in tasks)

    with load_on(f"{stack.loopback_url}/version") as load:
        time.sleep(1)
        before = load.stats.total
        started = time.monotonic()
        lost.stop_engine()
        wait_for("three app replicas on the remaining nodes", rescheduled, timeout=90,
                 every=1)
        took = time.monotonic() - started
        time.sleep(2)
    stats = load.stats
    print(f"\n[swarm-3 node lost] {carried} app replica(s) rescheduled in {took:.1f}s · "
          f"{stats.total} requests ({stats.total - before} after the loss) · "
          f"{stats.failed} failed")
    return NodeLoss(lost, stores, took, stats.total, stats.total - before, stats.failed,
                    list(load.failures), stack.invoke("smoke-test"))


def test_node_lost_mid_traffic_is_rescheduled_reported_and_requests_keep_succeeding(
        node_loss: NodeLoss) -> None:
    smoke = node_loss.smoke
    assert smoke.returncode == 1, smoke.stdout + smoke.stderr
    assert node_loss.lost.address in smoke.stdout
    assert node_loss.after_loss > 100
    assert node_loss.failed <= node_loss.total * 0.01, node_loss.failures


def test_node_lost_loses_no_row_or_key_written_before_it(stack: SwarmStack,
                                                          node_loss: NodeLoss) -> None:
    stores_after = {s: stack.store(s)[0].name for s in ("db", "redis")}
    assert stores_after == node_loss.stores_before  # pinned: they never moved
    assert node_loss.lost.name not in stores_after.values()
    assert stack.psql("SELECT count(*) FROM before_loss") == "300"
    assert stack.redis_cli("GET", "before:loss") == "kept"
