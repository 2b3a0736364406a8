"""The pipelines as chains: each step's verdict shown, the first failure stops the chain with
that step's own error (and so its exit code). Real git repositories made by the demo builder."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ops.deploy.outcome import Outcome
from ops.dev.demo import build_demo, demo_settings
from ops.errors import ChecksFailed, ExitCode, OpsError, UsageError
from ops.pipelines import Pipeline, post_deployment, pre_deployment

pytestmark = pytest.mark.integration


def test_a_pipeline_runs_steps_in_order_and_shows_each_verdict() -> None:
    out = io.StringIO()
    pipe = Pipeline("demo", out)
    pipe.step("first", lambda: "one done")
    pipe.step("second", lambda: "two done")
    pipe.finish()
    assert [(o.name, o.status) for o in pipe.outcomes] == [("first", Outcome.SUCCESS),
                                                           ("second", Outcome.SUCCESS)]
    assert [o.to_dict()["status"] for o in pipe.outcomes] == ["ok", "ok"]
    assert "[✓] first" in out.getvalue()
    assert "one done" in out.getvalue()
    assert "demo: 2 step(s) passed" in out.getvalue()


def test_the_first_failure_stops_the_chain_with_the_steps_own_exit_code() -> None:
    out = io.StringIO()
    pipe = Pipeline("demo", out)
    ran: list[str] = []

    def refuse() -> str:
        raise UsageError("tag v0.2.0 already exists")

    def third() -> str:
        ran.append("third")
        return "never"

    with pytest.raises(UsageError) as caught:
        pipe.step("first", lambda: "fine")
        pipe.step("second", refuse)
        pipe.step("third", third)
    assert caught.value.exit_code is ExitCode.USAGE
    assert ran == []
    assert [o.status for o in pipe.outcomes] == [Outcome.SUCCESS, Outcome.FAILED]
    assert "[✗] second" in out.getvalue()
    assert "demo stopped at step 2: second" in out.getvalue()


def test_pre_deployment_cuts_a_missing_release_then_stops_at_strict_checks_without_images(
        tmp_path: Path) -> None:
    import git

    demo = build_demo(tmp_path / "demo")
    (demo.root / "service" / "feature.py").write_text("FLAG = True\n", encoding="utf-8")
    repo = git.Repo(demo.root)
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "feat: a flag")
    out = io.StringIO()
    with pytest.raises(ChecksFailed) as caught:
        pre_deployment(demo.root, demo_settings(demo.root), "v0.3.0", build=False, out=out)
    assert "v0.3.0" in {t.name for t in repo.tags}
    assert "artifacts.images" in caught.value.message
    text = out.getvalue()
    assert "[✓] create-release (when the tag is missing)" in text
    assert "[✓] build images" in text and "skipped (--no-build)" in text
    assert "[✗] predeploy --strict" in text
    assert "manifest and release notes" not in text


def test_pre_deployment_does_not_recut_an_existing_release(tmp_path: Path) -> None:
    demo = build_demo(tmp_path / "demo")
    out = io.StringIO()
    with pytest.raises(OpsError):
        pre_deployment(demo.root, demo_settings(demo.root), "v0.2.0", build=False, out=out)
    assert "tag v0.2.0 exists: create-release not needed" in out.getvalue()


def test_post_deployment_records_a_failed_verification_in_the_audit_log(
        tmp_path: Path) -> None:
    demo = build_demo(tmp_path / "demo")
    settings = demo_settings(demo.root)
    settings = settings.model_copy(update={"environments": {
        "production": settings.environment("production").model_copy(
            update={"compose_file": Path("missing-compose.yml")})}})
    with pytest.raises(OpsError):
        post_deployment(demo.root, settings, "production", "v0.2.0", out=io.StringIO())
    log = (demo.root / "releases" / "deployments.jsonl").read_text(encoding="utf-8")
    assert '"action": "post-deployment"' in log
    assert '"result": "failed"' in log
