"""Benchmark: predeploy on a repository the size of a large open-source web app.

Builds, in a temp dir, the "large app" layout of the test suite (tests/layouts.py): ≈ 2,000
tracked files, 300 Alembic revisions with a merge and no alembic.ini, a previous release tag and
the new release cut with create-release. Then times, each in a fresh interpreter as a user runs
it:

* ``invoke predeploy --version v3.0.0 --format json`` cold (no ``.tminus/`` cache) and warm
  (the cache of the previous run), ``--runs`` times each;
* ``detect-secrets scan`` on the same tree in the same run, for the ratio (the secret scan is the
  one part of predeploy with a standard tool doing the same work).

Targets (issue 10): cold ≤ 10 s, warm ≤ 3 s. The Docker engine is pointed at a socket that does
not exist, so image checks skip instead of timing an engine.

    python benchmarks/bench_predeploy_large.py [--quick] [--runs N] [--files N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLD_TARGET_S = 10.0
WARM_TARGET_S = 3.0


def build(workdir: Path, files: int) -> tuple[Path, str]:
    from tests import layouts
    from tests.conftest import GitRepo

    repo = GitRepo(workdir / "bigapp")
    # the layout itself writes ~360 files; the rest are application modules
    built = layouts.large_app_without_ini(repo, count=300, modules=max(files - 360, 0))
    tracked = subprocess.run(["git", "ls-files"], cwd=built.root, capture_output=True,
                             text=True, check=True).stdout.count("\n")
    print(f"repository: {tracked} tracked files, {len(built.revisions)} revisions, "
          f"release {built.version} (previous {built.previous})")
    return built.root, built.version


def run_predeploy(root: Path, version: str, report: Path, *, cold: bool) -> tuple[float, dict]:
    if cold:
        shutil.rmtree(root / ".tminus", ignore_errors=True)
    env = os.environ | {"PYTHONPATH": str(ROOT), "DOCKER_HOST": f"unix://{root}.nosock"}
    argv = [sys.executable, "-m", "invoke", "predeploy", "--version", version,
            "--format", "json", "--output", str(report)]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        print(f"note: predeploy exited {done.returncode}: "
              f"{(done.stderr.strip().splitlines() or [''])[-1]}")
    data = json.loads(report.read_text()) if report.is_file() else {}
    return elapsed, data


def detect_secrets(root: Path) -> float:
    exe = Path(sys.executable).with_name("detect-secrets")
    started = time.perf_counter()
    subprocess.run([str(exe) if exe.exists() else "detect-secrets", "scan"], cwd=root,
                   check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run each, 600 files")
    parser.add_argument("--runs", type=int, default=3, help="runs of cold and of warm")
    parser.add_argument("--files", type=int, default=2000, help="tracked files to build")
    parser.add_argument("--keep", action="store_true", help="keep the repository")
    args = parser.parse_args()
    runs, files = (1, 600) if args.quick else (args.runs, args.files)
    workdir = Path(tempfile.mkdtemp(prefix="tminus-bench-large-"))
    try:
        root, version = build(workdir, files)
        report = workdir / "report.json"
        cold = [run_predeploy(root, version, report, cold=True) for _ in range(runs)]
        warm = [run_predeploy(root, version, report, cold=False) for _ in range(runs)]
        reference = detect_secrets(root)
        last = warm[-1][1]
        print(f"\npredeploy result: {last.get('result')}, summary {last.get('summary')}")
        for section in last.get("sections", []):
            print(f"  {section['id']:<14}{section['status']:<6}{section['duration_s']:8.3f} s")
        cold_s = statistics.median(t for t, _ in cold)
        warm_s = statistics.median(t for t, _ in warm)
        print(f"\n{'run':<40}{'median s':>10}{'target':>10}")
        print(f"{'invoke predeploy, cold cache':<40}{cold_s:10.2f}{COLD_TARGET_S:>9g}s "
              f"{'met' if cold_s <= COLD_TARGET_S else 'MISSED'}")
        print(f"{'invoke predeploy, warm cache':<40}{warm_s:10.2f}{WARM_TARGET_S:>9g}s "
              f"{'met' if warm_s <= WARM_TARGET_S else 'MISSED'}")
        print(f"{'detect-secrets scan (secrets only)':<40}{reference:10.2f}")
        print(f"\nratio detect-secrets / whole predeploy: cold {reference / cold_s:.1f}x, "
              f"warm {reference / warm_s:.1f}x")
        if args.keep:
            print(f"kept: {root}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
