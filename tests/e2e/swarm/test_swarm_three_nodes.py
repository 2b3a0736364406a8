"""A three-node swarm (three dockerds in network namespaces): replicas spread over the nodes
from pushed digests, two operators on different managers, and a node lost mid-traffic.

Request counts and durations are printed (-s), never asserted beyond "none failed" where the
spec promises it.
"""

from __future__ import annotations

import shutil
import time

import pytest

from ops.runtime.probe import LoadClient
from tests.e2e.swarm.conftest import SwarmStack
from tests.e2e.swarm.harness import wait_for

pytestmark = pytest.mark.e2e


def load_on(url: str) -> LoadClient:
    return LoadClient(url, concurrency=3, max_requests=30_000, max_seconds=180.0, pause_s=0.01)


@pytest.fixture(scope="module")
def stack(three_swarm: SwarmStack) -> SwarmStack:
    started = time.monotonic()
    done = three_swarm.invoke("deploy", "production", "v0.1.0", "--skip-checks",
                              "--skip-backup", "--watch", "2")
    print(f"\n[swarm-3 first deploy v0.1.0] {time.monotonic() - started:.1f}s")
    assert done.returncode == 0, done.stdout + done.stderr + three_swarm.diagnose()
    return three_swarm


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


def test_two_operators_on_two_managers_one_deploys_the_other_names_the_holder(
        stack: SwarmStack) -> None:
    second = stack.swarm.nodes[1]
    stack.docker("node", "promote", stack.swarm.node_ids()[second.name])
    other_root = stack.root.parent / "operator-2"
    shutil.copytree(stack.root, other_root, ignore=shutil.ignore_patterns("releases", ".tminus"))
    other_env = {**stack.env, "DOCKER_HOST": second.docker_host, "TMINUS_USER": "operator-2"}
    args = ("deploy", "production", "v0.1.0", "--skip-checks", "--skip-backup", "--watch", "0")
    first = stack.popen(*args)
    time.sleep(0.3)
    rival = SwarmStack(stack.swarm, other_root, other_env).popen(*args, env=other_env)
    outputs = [p.communicate(timeout=300)[0] for p in (first, rival)]
    codes = [first.returncode, rival.returncode]
    print(f"\n[swarm-3 two operators] exit codes {codes}")
    assert sorted(codes) == [0, 1], outputs
    loser = outputs[codes.index(1)]
    assert "the swarm deploy lock of tminus-sw is held by " in loser
    assert any(f"held by {who} on" in loser for who in ("e2e", "operator-2"))


def test_node_lost_mid_traffic_is_rescheduled_reported_and_requests_keep_succeeding(
        stack: SwarmStack) -> None:
    lost = stack.swarm.nodes[2]
    with load_on(f"{stack.loopback_url}/version") as load:
        time.sleep(1)
        before = load.stats.total
        started = time.monotonic()
        lost.stop_engine()
        wait_for("three app replicas on the remaining nodes",
                 lambda: len(stack.app_tasks()) == 3, timeout=90, every=1)
        took = time.monotonic() - started
        time.sleep(2)
    stats = load.stats
    print(f"\n[swarm-3 node lost] rescheduled in {took:.1f}s · {stats.total} requests "
          f"({stats.total - before} after the loss) · {stats.failed} failed")
    smoke = stack.invoke("smoke-test")
    assert smoke.returncode == 1, smoke.stdout + smoke.stderr
    assert lost.address in smoke.stdout
    assert stats.total - before > 100
    assert stats.failed <= stats.total * 0.01, load.failures
