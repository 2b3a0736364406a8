"""The task layer: arguments in, exit codes out, through Invoke's MockContext."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import git
import pytest
from invoke.config import Config
from invoke.context import MockContext
from invoke.exceptions import Exit

from ops.dev.tasks import TASKS as DEV_TASKS
from ops.taskkit import boundary, uncastable_env_var, unknown_env_warnings
from ops.tasks import collection, ns, predeploy


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
    everything = collection(*DEV_TASKS)  # this repository's tasks.py: the library's and ops.dev's
    for name in everything.task_names:
        task = everything[name]
        doc = (task.__doc__ or "").strip()
        assert doc, f"{name} has no docstring"
        assert len(doc.splitlines()[0]) <= 100, f"{name}'s summary is too long"
        # `invoke --list` shows the first line only: a sentence cut at the wrap ("… (after a
        # safety") reads as a truncated summary
        assert doc.splitlines()[0].endswith("."), f"{name}'s summary is not one whole line"
        missing = [a.name for a in task.get_arguments() if not a.help]
        assert not missing, f"{name}: no help for {missing}"


def test_predeploy_check_is_an_alias_of_predeploy() -> None:
    assert ns["predeploy-check"] is ns["predeploy"]


def test_the_default_collection_leaves_out_the_demo_and_base_image() -> None:
    """A service repository that installs tminus gets no debootstrap task unless it asks."""
    assert "demo" not in ns.task_names and "base-image" not in ns.task_names
    assert {"demo", "base-image"} <= set(collection(*DEV_TASKS).task_names)


# --- INVOKE_OPS_* variables, as Invoke's own Config loads them -----------------------------------


def collection_config() -> Config:
    """A Config holding the collection's defaults, the way Invoke's executor prepares it."""
    config = Config()
    config.load_collection(ns.configuration())
    return config


def test_invokes_env_loading_exits_2_naming_a_variable_it_cannot_cast(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_OPS_BACKUP_KEEP", "abc")
    with pytest.raises(Exit) as caught:
        collection_config().load_shell_env()
    assert caught.value.code == 2
    assert caught.value.message == "error: INVOKE_OPS_BACKUP_KEEP (ops.backup.keep): not an integer"


def test_castable_variables_load_as_invoke_loads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_OPS_BACKUP_KEEP", "3")
    config = collection_config()
    config.load_shell_env()
    assert config.ops.backup.keep == 3


def test_no_problem_is_found_when_every_variable_casts() -> None:
    assert uncastable_env_var(collection_config(), {"INVOKE_OPS_BACKUP_KEEP": "3"}) is None


def test_unknown_variable_without_a_close_setting_says_how_settings_are_named() -> None:
    [warning] = unknown_env_warnings(ns.configuration()["ops"], "INVOKE_",
                                     {"INVOKE_OPS_FROBNICATE": "1"})
    assert warning.startswith("INVOKE_OPS_FROBNICATE is not a tminus setting and is ignored")
    assert "INVOKE_OPS_<SECTION>_<KEY>" in warning


def test_variables_outside_the_ops_prefix_are_not_tminus_business() -> None:
    assert unknown_env_warnings(ns.configuration()["ops"], "INVOKE_",
                                {"INVOKE_RUN_ECHO": "1", "INVOKE_DEBUG": "1"}) == []


def test_unknown_variables_are_looked_for_under_the_programs_own_prefix() -> None:
    [warning] = unknown_env_warnings(ns.configuration()["ops"], "FAB_",
                                     {"FAB_OPS_BACKUP_KEPE": "3", "INVOKE_OPS_BACKUP_KEPE": "3"})
    assert warning.startswith("FAB_OPS_BACKUP_KEPE ")
    assert "did you mean FAB_OPS_BACKUP_KEEP?" in warning


# --- the boundary --------------------------------------------------------------------------------


def test_a_git_command_error_reaching_the_boundary_is_one_line(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)

    @boundary
    def body() -> None:
        repo.git.log("--format=%H%x1f%an%x1f%aI%x1f%B")  # no commits yet: git log fails

    with pytest.raises(Exit) as caught:
        body()
    message = str(caught.value.message)
    assert message.startswith("error: git log failed: fatal: ")
    assert "\n" not in message
    assert "cmdline" not in message


def test_an_unexpected_multi_line_error_is_shown_on_one_line() -> None:
    @boundary
    def body() -> None:
        raise RuntimeError("first line\nsecond line\n" + "x" * 2000)

    with pytest.raises(Exit) as caught:
        body()
    message = str(caught.value.message)
    assert message.startswith("internal error: RuntimeError: first line second line x")
    assert "\n" not in message
    assert len(message) < 400


def test_sigterm_during_any_task_takes_ctrl_cs_way_out_with_exit_130() -> None:
    cleaned: list[str] = []

    @boundary
    def body() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # never reached: the signal interrupts here
        finally:
            cleaned.append("partial output removed")

    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(Exit) as caught:
            body()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (caught.value.code, cleaned) == (130, ["partial output removed"])
