"""The deploy side's pure decisions: rollback targets, replica counts asked for, scale
arguments, the base image's mirror and commands, percentiles and the history table."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from ops.deploy.audit import asked_replicas
from ops.deploy.history import history_rows
from ops.deploy.rollback import previous_version, undone_deploy
from ops.deploy.scale import parse_targets
from ops.dev.baseimage import apt_mirror, debootstrap_argv, import_argv, packages_digest
from ops.errors import UsageError
from ops.runtime.probe import percentile, require_loopback

EVENTS: list[dict[str, Any]] = [
    {"action": "deploy", "result": "success", "from_version": None, "to_version": "v0.1.0"},
    {"action": "deploy", "result": "success", "from_version": "v0.1.0", "to_version": "v0.2.0",
     "details": {"backup_id": "b-2"}},
    {"action": "deploy", "result": "rolled_back", "from_version": "v0.2.0",
     "to_version": "v0.3.0"},
    {"action": "scale", "result": "success", "from_version": "app=3", "to_version": "app=6"},
]


def test_previous_version_is_what_ran_before_the_deploy_of_the_current_one() -> None:
    assert previous_version(EVENTS, "v0.2.0") == "v0.1.0"


def test_a_rolled_back_deploy_is_not_a_version_to_return_to() -> None:
    assert previous_version(EVENTS, "v0.3.0") is None


def test_after_a_worker_only_rollback_the_previous_version_is_the_one_before_the_release(
        ) -> None:
    partial = {"action": "deploy", "env": "production", "result": "rolled_back",
               "from_version": "v0.2.0", "to_version": "v0.5.0",
               "details": {"rolled_back_to": "v0.2.0", "kept": ["app"]}}
    assert previous_version([*EVENTS, partial], "v0.5.0") == "v0.2.0"


def test_the_deploy_being_undone_carries_the_backup_taken_before_it() -> None:
    undone = undone_deploy(EVENTS, "v0.2.0")
    assert undone is not None
    assert undone["details"]["backup_id"] == "b-2"


def event(action: str, result: str, replicas: Any) -> dict[str, Any]:
    return {"action": action, "env": "production", "result": result,
            "details": {"replicas": replicas}}


def test_the_count_asked_for_is_the_latest_successful_deploy_or_scale_per_service() -> None:
    log = [event("deploy", "success", {"app": 3, "worker": 1}),
           event("scale", "success", {"app": 5}),
           event("deploy", "rolled_back", {"app": 2}),
           event("deploy", "failed", {"worker": 4})]
    assert asked_replicas(log) == {"app": 5, "worker": 1}


def test_a_count_in_the_log_that_is_no_small_number_is_ignored() -> None:
    log = [event("deploy", "success", {"app": 3}),
           event("deploy", "success", {"app": "9", "worker": True, "db": 201, "x": -1}),
           event("backup", "success", {"app": 7}),
           {"action": "deploy", "result": "success", "details": ["app"]}]
    assert asked_replicas(log) == {"app": 3}


def test_a_scale_line_written_before_the_replicas_field_is_read_from_its_label() -> None:
    old_scale = {"action": "scale", "env": "production", "result": "success",
                 "to_version": "app=2 worker=1", "details": {"strategy_steps": 2}}
    assert asked_replicas([event("deploy", "success", {"app": 3}), old_scale]) == {
        "app": 2, "worker": 1}


def test_lines_of_another_compose_project_do_not_set_the_count() -> None:
    other = event("scale", "success", {"app": 9})
    other["details"]["project"] = "shop-staging"
    mine = event("deploy", "success", {"app": 3})
    mine["details"]["project"] = "shop-production"
    assert asked_replicas([mine, other], project="shop-production") == {"app": 3}


def test_scale_targets_accept_several_assignments_in_one_argument() -> None:
    assert parse_targets(["app=5,worker=1"]) == {"app": 5, "worker": 1}
    assert parse_targets(["app=5 worker=1"]) == {"app": 5, "worker": 1}


def test_scale_target_without_a_count_is_a_usage_error_naming_it() -> None:
    with pytest.raises(UsageError, match="cannot read 'app' as SERVICE=N"):
        parse_targets(["app"])


def test_apt_mirror_comes_from_the_deb822_sources_and_skips_security(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n")
    assert apt_mirror(tmp_path) == "http://mirror.example/debian"


def test_apt_mirror_falls_back_to_the_one_line_sources_list(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# local\ndeb [arch=amd64] http://apt.example/debian bookworm main\n")
    assert apt_mirror(tmp_path) == "http://apt.example/debian"


def test_debootstrap_builds_a_minbase_with_the_demo_packages() -> None:
    line = shlex.join(debootstrap_argv(Path("/tmp/root"), "http://m/debian",
                                       packages=("python3", "haproxy")))
    assert line == ("debootstrap --variant=minbase --include=python3,haproxy bookworm /tmp/root "
                    "http://m/debian")


def test_import_gives_the_image_a_path_and_a_command() -> None:
    line = shlex.join(import_argv(Path("/tmp/rootfs.tar"), "tminus/debian-base:bookworm"))
    assert line.startswith("docker import --change 'ENV PATH=")
    assert line.endswith("/tmp/rootfs.tar tminus/debian-base:bookworm")


def test_import_labels_the_image_with_its_package_list_so_a_stale_cache_is_rebuilt() -> None:
    argv = import_argv(Path("/tmp/rootfs.tar"), "t:b", packages=("b", "a"))
    assert f"LABEL tminus.base.packages={packages_digest(('a', 'b'))}" in argv
    assert packages_digest(("a", "b")) != packages_digest(("a", "b", "prometheus"))


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == 95.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 95) == 0.0


def test_load_is_refused_for_anything_but_loopback() -> None:
    require_loopback("http://127.0.0.1:8080/health")
    with pytest.raises(UsageError, match="only loopback"):
        require_loopback("http://example.com/health")


def test_history_row_shows_the_change_and_what_was_skipped() -> None:
    event = {"at": "2026-11-26T12:00:00Z", "env": "production", "action": "deploy",
             "from_version": "v0.2.0", "to_version": "v0.3.0", "result": "rolled_back",
             "duration_s": 16.7, "who": "ci", "host": "runner", "skipped_checks": True,
             "details": {"rolled_back_to": "v0.2.0"}}
    assert history_rows([event]) == [[
        "2026-11-26 12:00:00", "production", "deploy", "v0.2.0 → v0.3.0", "rolled_back",
        "16.7s", "ci@runner", "checks skipped; rolled back to v0.2.0"]]
