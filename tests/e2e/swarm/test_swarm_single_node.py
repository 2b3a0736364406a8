"""Deploy, automatic rollback, rollback and scale on a real single-node swarm, under load.

The node is a dockerd in a network namespace the test made; images come from the registry on
the bridge by digest. A load client sends GET /version through the entry point (the haproxy
task published in host mode on the node's address), bounded in count and time; "failed" is any
connection error, timeout or non-200. Durations and request counts are printed (-s), never
asserted.
"""

from __future__ import annotations

import json
import time

import pytest

from ops.runtime.probe import LoadClient
from tests.e2e.swarm.conftest import STACK, SwarmStack

pytestmark = pytest.mark.e2e


def load_on(url: str) -> LoadClient:
    """Three threads of back-to-back GETs, at most 30 000 requests or 3 minutes."""
    return LoadClient(url, concurrency=3, max_requests=30_000, max_seconds=180.0, pause_s=0.01)


def report(name: str, load: LoadClient, took: float) -> None:
    stats = load.stats
    print(f"\n[swarm-1 {name}] {took:.1f}s · {stats.total} requests · {stats.failed} failed · "
          f"versions {dict(stats.versions)}")


def deploy(stack: SwarmStack, version: str) -> tuple[float, str, int]:
    started = time.monotonic()
    done = stack.invoke("deploy", "production", version, "--skip-checks", "--skip-backup",
                        "--watch", "2")
    return time.monotonic() - started, done.stdout + done.stderr, done.returncode


@pytest.fixture(scope="module")
def stack(single_swarm: SwarmStack) -> SwarmStack:
    """The demo at v0.1.0 on the swarm: the first deploy makes the whole stack."""
    took, output, code = deploy(single_swarm, "v0.1.0")
    print(f"\n[swarm-1 first deploy v0.1.0] {took:.1f}s")
    assert code == 0, output + single_swarm.diagnose()
    return single_swarm


def test_first_deploy_runs_the_stack_from_registry_digests(stack: SwarmStack) -> None:
    image = stack.docker("service", "inspect", "--format",
                         "{{.Spec.TaskTemplate.ContainerSpec.Image}}", f"{STACK}_app")
    assert "@sha256:" in image
    assert stack.app_versions() == ["v0.1.0"] * 3


def test_rolling_deploy_under_load_drops_no_request(stack: SwarmStack) -> None:
    with load_on(f"{stack.loopback_url}/version") as load:
        time.sleep(1)
        took, output, code = deploy(stack, "v0.2.0")
        time.sleep(1)
    report("deploy v0.1.0 → v0.2.0", load, took)
    assert code == 0, output
    assert load.stats.failed == 0, load.failures
    assert load.stats.version_sequence[-1] == "v0.2.0"
    assert stack.app_versions() == ["v0.2.0"] * 3


def test_the_worker_is_switched_to_the_release_after_the_app(stack: SwarmStack) -> None:
    """Runs after the deploy of v0.2.0 above: the released services all follow the app."""
    assert [t["version"] for t in stack.app_tasks("worker")] == ["v0.2.0"]


def test_broken_release_is_rolled_back_by_swarm_and_the_deploy_exits_1_saying_so(
        stack: SwarmStack) -> None:
    with load_on(f"{stack.loopback_url}/version") as load:
        took, output, code = deploy(stack, "v0.3.0")  # its /health answers 503
    report("deploy of broken v0.3.0", load, took)
    assert code == 1, output
    assert "deploy of v0.3.0 failed, rolled back to v0.2.0" in output
    assert "Swarm rolled app back to the previous version by itself" in output
    assert load.stats.failed == 0, load.failures
    assert stack.app_versions() == ["v0.2.0"] * 3


def test_rollback_to_a_release_updates_to_its_recorded_digests(stack: SwarmStack) -> None:
    with load_on(f"{stack.loopback_url}/version") as load:
        started = time.monotonic()
        done = stack.invoke("rollback", "v0.1.0")
        took = time.monotonic() - started
    report("rollback → v0.1.0", load, took)
    assert done.returncode == 0, done.stdout + done.stderr
    assert load.stats.failed == 0, load.failures
    assert stack.app_versions() == ["v0.1.0"] * 3
    event = json.loads((stack.root / "releases/deployments.jsonl").read_text().splitlines()[-1])
    assert (event["action"], event["to_version"]) == ("rollback", "v0.1.0")


def test_scale_up_to_6_then_down_to_2_under_load_drops_no_request(stack: SwarmStack) -> None:
    with load_on(f"{stack.loopback_url}/version") as load:
        started = time.monotonic()
        up = stack.invoke("scale", "app=6")
        six = len(stack.app_tasks())
        down = stack.invoke("scale", "app=2", "--step", "2")
        took = time.monotonic() - started
        time.sleep(1)
    report("scale 3 → 6 → 2", load, took)
    assert up.returncode == 0, up.stdout + up.stderr
    assert down.returncode == 0, down.stdout + down.stderr
    assert six == 6
    assert len(stack.app_tasks()) == 2
    assert load.stats.failed == 0, load.failures
