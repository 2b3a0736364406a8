"""The deployment and rollback pipelines on the real engine, under continuous load.

The e2e stack is a compose project rather than a release repository, so the deployment pipeline
runs with --skip-checks (the strict gate is specified by the deploy specs and by
tests/integration/test_pipelines.py); everything else — backup, rolling deploy, smoke-test,
rollback — is real.
"""

from __future__ import annotations

import json
import time

import pytest

from ops.runtime.probe import LoadClient
from tests.e2e.conftest import DemoStack

pytestmark = pytest.mark.e2e


def audit(stack: DemoStack) -> list[dict[str, object]]:
    lines = (stack.root / "releases" / "deployments.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_deployment_pipeline_backs_up_deploys_and_smoke_tests_without_dropping_a_request(
        demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.1.0", replicas=3)
    with LoadClient(demo_stack.version_url, concurrency=2, max_requests=40_000,
                    max_seconds=300.0, pause_s=0.01) as load:
        started = time.monotonic()
        done = demo_stack.invoke("deployment", "production", "v0.2.0", "--skip-checks",
                                 "--watch", "2")
        took = time.monotonic() - started
    print(f"\n[deployment pipeline] {took:.1f}s · {load.stats.total} requests · "
          f"{load.stats.failed} failed")
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("[✓] backup", "[✓] deploy", "[✓] smoke-test"):
        assert step in done.stdout
    assert load.stats.failed == 0, load.failures
    assert demo_stack.app_versions() == ["v0.2.0"] * 3
    events = audit(demo_stack)
    deploy = [e for e in events if e["action"] == "deploy"][-1]
    backup = [e for e in events if e["action"] == "backup"][-1]
    assert deploy["result"] == "success"
    assert deploy["skipped_backup"] is False
    assert isinstance(deploy["details"], dict) and isinstance(backup["details"], dict)
    assert deploy["details"]["backup_id"] == backup["details"]["backup_id"]


def test_rollback_pipeline_goes_back_and_smoke_tests(demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.2.0", replicas=3)
    done = demo_stack.invoke("rollback-pipeline", "production", "v0.1.0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[✓] rollback" in done.stdout and "[✓] smoke-test" in done.stdout
    assert demo_stack.app_versions() == ["v0.1.0"] * 3


def test_a_failing_deployment_pipeline_stops_before_the_smoke_test(
        demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.1.0", replicas=3)
    done = demo_stack.invoke("deployment", "production", "v9.9.9", "--skip-checks",
                             "--watch", "0")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "[✗] deploy" in done.stdout
    assert "smoke-test" not in done.stdout
    assert demo_stack.app_versions() == ["v0.1.0"] * 3
