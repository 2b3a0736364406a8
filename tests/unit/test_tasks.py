"""The task layer: arguments in, exit codes out, through Invoke's MockContext."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke.config import Config
from invoke.context import MockContext
from invoke.exceptions import Exit

from ops.tasks import ns, predeploy


def context(tmp_path: Path, **ops: object) -> MockContext:
    return MockContext(config=Config(overrides={"ops": {"project_root": str(tmp_path), **ops}}),
                       repeat=True)


@pytest.mark.parametrize("version", ["v0.2", "1.2.3", "v1.2.3;rm -rf /", ""])
def test_malformed_version_exits_2_before_anything_runs(tmp_path: Path, version: str) -> None:
    with pytest.raises(Exit) as caught:
        predeploy(context(tmp_path), version=version)
    assert caught.value.code == 2
    assert str(caught.value.message).startswith("error: malformed release version")


def test_bad_configuration_exits_2_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(Exit) as caught:
        predeploy(context(tmp_path, runbok={}), version="v0.2.0")
    assert caught.value.code == 2
    assert "ops.runbok: unknown key (did you mean 'runbook'?)" in str(caught.value.message)


def test_unknown_section_exits_2(tmp_path: Path) -> None:
    with pytest.raises(Exit) as caught:
        predeploy(context(tmp_path), version="v0.2.0", only="secrets,bogus")
    assert caught.value.code == 2
    assert "bogus" in str(caught.value.message)


def test_unknown_format_exits_2(tmp_path: Path) -> None:
    with pytest.raises(Exit) as caught:
        predeploy(context(tmp_path), version="v0.2.0", format="yaml")
    assert caught.value.code == 2


def test_every_task_has_a_one_line_summary_and_help_for_each_option() -> None:
    for name in ns.task_names:
        task = ns[name]
        doc = (task.__doc__ or "").strip()
        assert doc, f"{name} has no docstring"
        assert len(doc.splitlines()[0]) <= 100, f"{name}'s summary is too long"
        missing = [a.name for a in task.get_arguments() if not a.help]
        assert not missing, f"{name}: no help for {missing}"


def test_predeploy_check_is_an_alias_of_predeploy() -> None:
    assert ns["predeploy-check"] is ns["predeploy"]
