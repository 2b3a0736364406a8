"""The compose backend and the executor, without an engine (a dry-run stack records argv)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ops.config import EnvironmentSettings, Settings
from ops.deploy.backend import BACKENDS, ComposeBackend, Replica, backend_for
from ops.deploy.deploy import DeployResult, audit_event, running_version, running_versions
from ops.deploy.outcome import Outcome
from ops.deploy.rollback import FAST_PATH
from ops.deploy.stack import Stack, Steps
from ops.deploy.strategies.execute import execute
from ops.deploy.strategies.plan import RolloutOptions, ServiceState
from ops.deploy.strategies.rolling import plan_rolling
from ops.errors import ConfigError
from ops.runtime.compose import Compose
from ops.runtime.process import Runner
from tests.unit.test_strategies import replica


def stack_with(tmp_path: Path, **env: object) -> Stack:
    environment = EnvironmentSettings.model_validate(env)
    settings = Settings(environments={"production": environment})
    out = io.StringIO()
    return Stack(tmp_path, settings, "production", environment,
                 Compose("shop-production", tmp_path / "docker-compose.yml"), None,
                 Runner(dry_run=True, out=out), Steps(out=out, dry_run=True))


def test_an_environment_runs_on_compose_unless_it_says_otherwise(tmp_path: Path) -> None:
    backend = backend_for(stack_with(tmp_path))
    assert isinstance(backend, ComposeBackend) and backend.name == "compose"


def test_an_unknown_backend_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend"):
        stack_with(tmp_path, backend="nomad")


def test_without_an_engine_the_compose_health_facts_are_skipped_not_passed(
        tmp_path: Path) -> None:
    findings = backend_for(stack_with(tmp_path)).health()
    assert [(f.id, f.status.value) for f in findings] == [("smoke.containers", "skip")]


def test_an_environment_that_says_swarm_gets_the_swarm_backend(tmp_path: Path) -> None:
    assert backend_for(stack_with(tmp_path, backend="swarm")).name == "swarm"


def test_a_backend_whose_module_is_missing_is_a_configuration_error_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "swarm", "ops.deploy.no_such_module:Backend")
    with pytest.raises(ConfigError) as caught:
        backend_for(stack_with(tmp_path, backend="swarm"))
    assert caught.value.message == "the swarm backend is not available yet"


def test_the_executor_runs_a_plans_commands_in_order_with_its_hooks_before_wait_and_drain(
        tmp_path: Path) -> None:
    stack = stack_with(tmp_path, health_url="http://127.0.0.1:9/health")
    events: list[str] = []
    stack.runner.history.clear()
    plan = plan_rolling(ServiceState("app", (replica(1, "v1"), replica(2, "v1")), routed=True),
                        "v2", RolloutOptions())
    rollout = execute(stack, plan, on_started=lambda: events.append(
        f"started after {len(stack.runner.history)} command(s)"), on_ready=lambda: events.append(
        f"ready after {len(stack.runner.history)} command(s)"))
    assert events == ["started after 1 command(s)", "ready after 1 command(s)"]
    assert [argv[-2:] for argv in stack.runner.history] == [
        ["app=4", "app"], [replica(1, "v1").id, replica(2, "v1").id],
        [replica(1, "v1").id, replica(2, "v1").id]]
    assert (rollout.previous, rollout.replicas, rollout.removed) == ("v1", 2, 2)


def test_every_step_and_phase_says_when_it_happened_since_the_action_began() -> None:
    out = io.StringIO()
    steps = Steps(out=out)
    steps.phase("gates")
    with steps.step("start 3 app replicas"):
        pass
    steps.phase("watch")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("== gates (at ") and lines[0].endswith("s)")
    assert ", at " in lines[2]
    assert steps.phase_summary().startswith("phases (")
    assert " · watch " in steps.phase_summary()


def test_a_quick_rollback_says_in_its_audit_line_that_it_took_no_backup_and_ran_no_checks(
        tmp_path: Path) -> None:
    stack = stack_with(tmp_path)
    stack.runner.dry_run = False  # audit_event writes nothing for a dry run
    result = DeployResult("rollback", "production", "v0.1.0", from_version="v0.2.0",
                          fast_path=FAST_PATH)
    event = audit_event(stack, result)
    assert event is not None
    assert event.details["fast_path"].startswith("no backup (the data stays as it is), "
                                                 "no predeploy checks")


def live(stack: Stack) -> Stack:
    stack.runner.dry_run = False  # audit_event writes nothing for a dry run
    return stack


def test_a_successful_deploy_records_the_replicas_of_each_switched_service(
        tmp_path: Path) -> None:
    result = DeployResult("deploy", "production", "v0.2.0", services={
        "app": {"replicas": 3, "started": 3, "removed": 3, "from": "v0.1.0"},
        "worker": {"replicas": 1, "started": 1, "removed": 1, "from": "v0.1.0"}})
    event = audit_event(live(stack_with(tmp_path)), result)
    assert event is not None and event.details["replicas"] == {"app": 3, "worker": 1}


def test_a_successful_scale_records_the_count_it_scaled_to(tmp_path: Path) -> None:
    result = DeployResult("scale", "production", "app=5",
                          services={"app": {"from": 3, "to": 5, "version": "v0.2.0"}})
    event = audit_event(live(stack_with(tmp_path)), result)
    assert event is not None and event.details["replicas"] == {"app": 5}


def test_a_rolled_back_deploy_records_no_count_asked_for(tmp_path: Path) -> None:
    result = DeployResult("deploy", "production", "v0.3.0", result=Outcome.ROLLED_BACK,
                          services={"app": {"replicas": 3}})
    event = audit_event(live(stack_with(tmp_path)), result)
    assert event is not None and "replicas" not in event.details


def test_the_count_asked_for_falls_back_to_replicas_set_in_the_configuration(
        tmp_path: Path) -> None:
    stack = stack_with(tmp_path, services={"app": {"replicas": 3}, "worker": {}})
    assert stack.replicas_asked("app") == 3
    assert stack.replicas_asked("worker") is None  # the default 1 is no one's request


def test_the_audit_log_count_wins_over_the_configured_one(tmp_path: Path) -> None:
    stack = stack_with(tmp_path, services={"app": {"replicas": 3}})
    (tmp_path / "releases").mkdir()
    (tmp_path / "releases" / "deployments.jsonl").write_text(json.dumps({
        "action": "scale", "env": "production", "result": "success", "to_version": "app=2",
        "details": {"project": "shop-production", "replicas": {"app": 2}}}) + "\n")
    assert stack.replicas_asked("app") == 2


class ReplicasOnOtherNodes:
    """A stand-in backend (no swarm in unit tests): two replicas at v0.1.0 on worker nodes
    and one at v0.2.0 on a third, none of them a container of the engine tminus talks to."""

    name = "swarm"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def replicas(self, service: str) -> list[Replica]:
        return [Replica(f"t{i}", f"shop_{service}.{i}", service, version, "healthy",
                        node=f"worker-{i}")
                for i, version in enumerate(("v0.1.0", "v0.1.0", "v0.2.0"), start=1)]


def test_what_runs_is_what_the_backend_reports_on_every_node_not_the_local_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "swarm", f"{__name__}:ReplicasOnOtherNodes")
    stack = stack_with(tmp_path, backend="swarm")
    assert running_version(stack, ["app"]) == "v0.1.0"
    assert running_versions(stack, ["app"]) == ["v0.1.0", "v0.2.0"]


def test_the_compose_backend_reaches_the_stores_at_the_configured_urls(tmp_path: Path) -> None:
    urls = ["postgresql://app:pw@127.0.0.1:15432/app", None]
    with backend_for(stack_with(tmp_path)).reach(urls) as reached:
        assert reached == urls
