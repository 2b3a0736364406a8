"""``Pipeline`` as a chain of steps: each step's verdict shown, the first failure stops the chain
with that step's own error (and so its exit code). No repository, engine or service needed."""

from __future__ import annotations

import io

import pytest

from ops.deploy.outcome import Outcome
from ops.errors import ExitCode, UsageError
from ops.pipelines import Pipeline


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


def test_a_dry_run_pipeline_says_it_changed_nothing() -> None:
    out = io.StringIO()
    pipe = Pipeline("demo", out)
    pipe.step("only", lambda: "would do it")
    pipe.finish(dry_run=True)
    assert "demo: 1 step(s) passed in" in out.getvalue()
    assert out.getvalue().rstrip().endswith("(dry run: nothing was changed)")
