"""Deploy, automatic rollback, rollback and scale on the real engine, under continuous load.

A load client sends GET /version through the entry point (loopback only, bounded in count and
time) while tminus changes the stack; "failed" is any connection error, timeout or non-200.
Durations and request counts are printed (run with -s to see them), never asserted.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from ops.runtime.probe import LoadClient
from tests.conftest import need
from tests.e2e.conftest import BROKEN, SLOW, DemoStack

pytestmark = pytest.mark.e2e



def load_on(url: str) -> LoadClient:
    """Three threads of back-to-back GETs, at most 60 000 requests or 5 minutes."""
    return LoadClient(url, concurrency=3, max_requests=60_000, max_seconds=300.0, pause_s=0.01)


def child_pids(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def wait_gone(pids: list[int], timeout_s: float = 120) -> None:
    """The killed deploy's compose child goes on to finish (as it would in real life)."""
    deadline = time.monotonic() + timeout_s
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)


def report(name: str, load: LoadClient, took: float) -> None:
    stats = load.stats
    print(f"\n[{name}] {took:.1f}s · {stats.total} requests · {stats.failed} failed · "
          f"p95 {stats.p95_ms:.0f} ms · versions {dict(stats.versions)}")


def last_audit(stack: DemoStack) -> dict[str, object]:
    lines = (stack.root / "releases" / "deployments.jsonl").read_text().splitlines()
    event: dict[str, object] = json.loads(lines[-1])
    return event


def test_rolling_deploy_under_load_drops_no_request_and_switches_version(
        demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.1.0", replicas=3)
    with load_on(demo_stack.version_url) as load:
        time.sleep(1)
        started = time.monotonic()
        done = demo_stack.invoke("deploy", "production", "v0.2.0", "--skip-checks",
                                 "--skip-backup", "--watch", "3")
        took = time.monotonic() - started
        time.sleep(1)
    report("deploy v0.1.0 → v0.2.0", load, took)
    assert done.returncode == 0, done.stdout + done.stderr
    assert load.stats.failed == 0, load.failures
    assert load.stats.version_sequence[0] == "v0.1.0"
    assert load.stats.version_sequence[-1] == "v0.2.0"
    assert demo_stack.app_versions() == ["v0.2.0"] * 3
    assert "no migration container" in done.stdout  # the database was already at the head


def test_broken_release_is_rolled_back_automatically_without_dropping_a_request(
        demo_stack: DemoStack, tmp_path: Path) -> None:
    demo_stack.converge("v0.2.0", replicas=3)
    result_file = tmp_path / "result.json"
    with load_on(demo_stack.version_url) as load:
        time.sleep(1)
        started = time.monotonic()
        done = demo_stack.invoke("deploy", "production", BROKEN, "--skip-checks",
                                 "--skip-backup", "--watch", "3", "--output", str(result_file))
        took = time.monotonic() - started
        time.sleep(1)
    report(f"deploy of broken {BROKEN}", load, took)
    assert done.returncode == 1
    assert f"deploy of {BROKEN} failed, rolled back to v0.2.0" in done.stderr
    assert load.stats.failed == 0, load.failures
    assert demo_stack.app_versions() == ["v0.2.0"] * 3
    result = json.loads(result_file.read_text())
    assert (result["result"], result["rolled_back_to"]) == ("rolled_back", "v0.2.0")
    audit = last_audit(demo_stack)
    assert (audit["action"], audit["result"], audit["to_version"]) == \
        ("deploy", "rolled_back", BROKEN)


def test_release_slower_than_twice_the_baseline_is_rolled_back_by_the_watch(
        demo_stack: DemoStack, tmp_path: Path) -> None:
    demo_stack.converge("v0.2.0", replicas=3)
    result_file = tmp_path / "result.json"
    done = demo_stack.invoke("deploy", "production", SLOW, "--skip-checks", "--skip-backup",
                             "--watch", "3", "--output", str(result_file))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"deploy of {SLOW} failed, rolled back to v0.2.0" in done.stderr
    result = json.loads(result_file.read_text())
    assert result["reason"].startswith("post-deploy watch: p95")
    assert demo_stack.app_versions() == ["v0.2.0"] * 3


def test_rollback_to_an_earlier_release_under_load_drops_no_request(
        demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.2.0", replicas=3)
    with load_on(demo_stack.version_url) as load:
        time.sleep(1)
        started = time.monotonic()
        done = demo_stack.invoke("rollback", "v0.1.0")
        took = time.monotonic() - started
        time.sleep(1)
    report("rollback v0.2.0 → v0.1.0", load, took)
    assert done.returncode == 0, done.stdout + done.stderr
    assert load.stats.failed == 0, load.failures
    assert demo_stack.app_versions() == ["v0.1.0"] * 3
    audit = last_audit(demo_stack)
    assert audit["action"] == "rollback"
    details = audit["details"]  # a quick rollback says what it left out
    assert isinstance(details, dict) and str(details["fast_path"]).startswith("no backup")


def test_rollback_refuses_a_version_whose_images_are_gone_and_lists_usable_ones(
        demo_stack: DemoStack) -> None:
    done = demo_stack.invoke("rollback", "v0.0.9")
    assert done.returncode == 2
    assert "cannot roll back to v0.0.9: its images are not in the local engine" in done.stderr
    assert "v0.1.0" in done.stderr and "v0.2.0" in done.stderr


def test_scale_up_then_down_under_load_drops_no_request(demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.2.0", replicas=3)
    with load_on(demo_stack.version_url) as load:
        time.sleep(1)
        started = time.monotonic()
        up = demo_stack.invoke("scale", "app=6")
        counted_up = len(demo_stack.app_containers())
        down = demo_stack.invoke("scale", "app=2")
        took = time.monotonic() - started
        time.sleep(1)
    report("scale app 3 → 6 → 2", load, took)
    assert up.returncode == 0, up.stdout + up.stderr
    assert down.returncode == 0, down.stdout + down.stderr
    assert counted_up == 6
    assert len(demo_stack.app_containers()) == 2
    assert load.stats.failed == 0, load.failures


def test_scale_refuses_zero_replicas_of_a_required_service(demo_stack: DemoStack) -> None:
    done = demo_stack.invoke("scale", "app=0")
    assert done.returncode == 2
    assert "app is required: it cannot go below 1 replica" in done.stderr


def test_smoke_test_passes_on_the_running_stack_and_writes_a_json_report(
        demo_stack: DemoStack, tmp_path: Path) -> None:
    demo_stack.converge("v0.2.0", replicas=3)
    out = tmp_path / "smoke.json"
    done = demo_stack.invoke("smoke-test", "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text())
    ids = {f["id"]: f["status"] for s in data["sections"] for f in s["findings"]}
    assert ids["smoke.health"] == "pass"
    assert ids["smoke.containers.app"] == "pass"
    assert data["release"] == "v0.2.0"


def test_deploy_killed_with_sigkill_leaves_a_lock_the_next_deploy_reclaims_and_converges(
        demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.1.0", replicas=3)
    killed = demo_stack.popen("deploy", "production", "v0.2.0", "--skip-checks",
                              "--skip-backup", "--watch", "0")
    lock = demo_stack.root / ".tminus" / "locks" / "deploy-production.lock"
    assert killed.stdout is not None
    for line in killed.stdout:  # kill it in the middle of the rolling switch
        if line.startswith("→ start"):
            break
    time.sleep(1)
    orphans = child_pids(killed.pid)
    killed.kill()
    killed.wait(timeout=30)
    wait_gone(orphans)
    assert lock.exists()
    done = demo_stack.invoke("deploy", "production", "v0.2.0", "--skip-checks",
                             "--skip-backup", "--watch", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reclaiming the production deploy lock" in done.stdout
    assert demo_stack.app_versions() == ["v0.2.0"] * 3
    assert not lock.exists()


def test_dry_run_prints_the_commands_and_changes_nothing(demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.2.0", replicas=3)
    before = sorted(c.id for c in demo_stack.app_containers())
    done = demo_stack.invoke("deploy", "production", "v0.1.0", "--skip-checks",
                             "--skip-backup", "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[dry-run] TMINUS_VERSION=v0.1.0" in done.stdout
    assert "--no-recreate --scale app=6 app" in done.stdout
    assert sorted(c.id for c in demo_stack.app_containers()) == before


def test_rollback_with_db_restores_the_backup_taken_before_the_undone_deploy(
        demo_stack: DemoStack) -> None:
    psycopg = pytest.importorskip("psycopg")
    if shutil.which("pg_dump") is None:
        need("pg_dump is not installed (the backup needs it)")
    demo_stack.converge("v0.1.0", replicas=3)
    deployed = demo_stack.invoke("deploy", "production", "v0.2.0", "--skip-checks",
                                 "--watch", "0")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "backup before deploy" in deployed.stdout
    with psycopg.connect(demo_stack.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (email) VALUES ('written-after@example.com')")
    done = demo_stack.invoke("rollback", "previous", "--with-db")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "database: restore backup" in done.stdout
    assert "(db_rollback: restore)" in done.stdout
    with psycopg.connect(demo_stack.database_url) as conn:
        rows = conn.execute("SELECT count(*) FROM users WHERE email LIKE 'written-after%'")
        assert rows.fetchone() == (0,)
    assert demo_stack.app_versions() == ["v0.1.0"] * 3


def test_deploy_refused_by_the_strict_checks_exits_1_changes_nothing_and_is_audited(
        demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.2.0", replicas=3)
    before = sorted(c.id for c in demo_stack.app_containers())
    # the temp copy is no git repository with a v0.1.0 tag: release_tag.* must fail
    done = demo_stack.invoke("deploy", "production", "v0.1.0", "--skip-backup", "--watch", "0")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "predeploy checks failed for v0.1.0" in done.stderr
    assert sorted(c.id for c in demo_stack.app_containers()) == before
    audit = last_audit(demo_stack)
    assert (audit["result"], audit["skipped_checks"]) == ("failed", False)
