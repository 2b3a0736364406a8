"""The bare compose rollout vs `invoke deploy` (lean and default) vs `invoke rollback`, in one run.

Brings up the demo stack (a temp copy, its own compose project and loopback ports, three app
replicas at v0.1.0, deployed by tminus itself) and then, ``--rounds`` times (default 2), under the
same bounded load on loopback (three threads of GET /version through the proxy, at most 60 000
requests or 5 minutes per measurement):

- **bare rollout**, its commands issued directly, the way docker-rollout does it: `up -d
  --no-recreate --scale app=6 app`, poll `docker inspect` every second until the new replicas
  are healthy, `docker stop` every old one at once and `docker rm` them; then `up -d
  --force-recreate worker` (a shell script does not wait for the worker). v0.1.0 → v0.2.0, and
  back the same way to reset;
- **lean deploy**: `invoke deploy production v0.2.0 --skip-checks --skip-backup --watch 0`,
  then **rollback**: `invoke rollback v0.1.0`;
- **default deploy**: `invoke deploy production v0.2.0 --skip-checks` (backup and the
  post-deploy watch as configured: watch_s 3 s in this layout; the checks are skipped only
  because the temp copy is no release repository), then **rollback** again.

Prints wall time, requests, failed requests and p95 latency per run, the medians, and the
ratios to the bare rollout; exits 1 when a contender fails or drops a request (then its timing
means nothing). Needs the Docker engine, docker-compose, pg_dump and the local base image; run it
under the shared engine's lock:

    flock /tmp/tminus-docker.lock python benchmarks/bench_deploy.py [--rounds N] [--port P]
        [--project NAME] [--json FILE] [--verbose]
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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ops.runtime.probe import LoadClient  # noqa: E402 - after the path: runs from a checkout

INVOKE = str(Path(sys.executable).with_name("invoke"))
HEALTH_TIMEOUT_S = 60  # docker-rollout's default


@dataclass
class Run:
    contender: str
    round: int
    wall_s: float
    requests: int
    failed: int
    p95_ms: float
    ok: bool
    note: str = ""


class Bench:
    def __init__(self, root: Path, project: str, port: int, *, verbose: bool = False) -> None:
        self.root, self.project, self.port = root, project, port
        self.verbose = verbose
        self.url = f"http://127.0.0.1:{port}/version"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")}
        self.env.update({"TMINUS_USER": "bench", "NO_COLOR": "1"})
        self.compose = ["docker-compose", "-p", project, "-f", "docker-compose.yml"]

    # --- the contenders --------------------------------------------------------------------------

    def invoke(self, *args: str) -> tuple[bool, str]:
        done = subprocess.run([INVOKE, *args], cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=600, check=False)
        return done.returncode == 0, done.stdout + done.stderr

    def ids(self, service: str) -> list[str]:
        out = subprocess.run(["docker", "ps", "-q", "--no-trunc",
                              "--filter", f"label=com.docker.compose.project={self.project}",
                              "--filter", f"label=com.docker.compose.service={service}"],
                             capture_output=True, text=True, check=True).stdout
        return out.split()

    def bare(self, version: str) -> tuple[bool, str]:
        """docker-rollout's sequence for the app, then the worker recreated; nothing else."""
        env = {**self.env, "TMINUS_VERSION": version}
        old = self.ids("app")
        subprocess.run([*self.compose, "up", "-d", "--no-build", "--no-deps", "--no-recreate",
                        "--scale", f"app={2 * len(old)}", "app"], cwd=self.root, env=env,
                       check=True, capture_output=True)
        new = [i for i in self.ids("app") if i not in old]
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while True:
            states = subprocess.run(["docker", "inspect", "--format",
                                     "{{.State.Health.Status}}", *new],
                                    capture_output=True, text=True, check=True).stdout.split()
            if states and all(s == "healthy" for s in states):
                break
            if time.monotonic() > deadline:
                return False, f"new replicas not healthy: {states}"
            time.sleep(1)
        subprocess.run(["docker", "stop", *old], check=True, capture_output=True)
        subprocess.run(["docker", "rm", *old], check=True, capture_output=True)
        subprocess.run([*self.compose, "up", "-d", "--no-build", "--no-deps", "--force-recreate",
                        "worker"], cwd=self.root, env=env, check=True, capture_output=True)
        return True, ""

    # --- one measurement under load --------------------------------------------------------------

    def measure(self, contender: str, round_: int,
                action: Callable[[], tuple[bool, str]]) -> Run:
        with LoadClient(self.url, concurrency=3, max_requests=60_000, max_seconds=300.0,
                        pause_s=0.01) as load:
            time.sleep(1)
            started = time.monotonic()
            ok, output = action()
            wall = time.monotonic() - started
            time.sleep(1)
        stats = load.stats
        run = Run(contender, round_, round(wall, 2), stats.total, stats.failed,
                  round(stats.p95_ms, 1), ok and stats.failed == 0,
                  "" if ok else output[-2000:])
        print(f"  {contender:<16} round {round_}: {wall:6.1f} s · {stats.total:5d} requests · "
              f"{stats.failed} failed · p95 {stats.p95_ms:.0f} ms"
              + ("" if ok else "  FAILED"), flush=True)
        phases = [line for line in output.splitlines() if line.startswith("phases (")]
        if phases:  # where tminus's time went, phase by phase
            print(f"    {phases[-1]}", flush=True)
        if self.verbose:  # and step by step
            for line in output.splitlines():
                if line.lstrip().startswith(("✓", "==", "[")):
                    print(f"      {line.strip()}", flush=True)
        if not ok:
            print(output[-3000:], file=sys.stderr)
        if stats.failed:
            print("    failures: " + "; ".join(load.failures[:5]), file=sys.stderr)
        return run


def summarise(runs: list[Run]) -> dict[str, float]:
    medians: dict[str, float] = {}
    for name in dict.fromkeys(r.contender for r in runs):
        medians[name] = statistics.median(r.wall_s for r in runs if r.contender == name)
    return medians


def table(runs: list[Run], medians: dict[str, float]) -> str:
    bare = medians.get("bare rollout")
    lines = ["| contender | round | wall s | requests | failed | p95 ms | x bare (median) |",
             "|---|---|---|---|---|---|---|"]
    for run in runs:
        ratio = f"{medians[run.contender] / bare:.2f}" if bare else "n/a"
        lines.append(f"| {run.contender} | {run.round} | {run.wall_s:.1f} | {run.requests} | "
                     f"{run.failed} | {run.p95_ms:.0f} | {ratio} |")
    return "\n".join(lines)


def verdict(runs: list[Run], medians: dict[str, float]) -> None:
    """The table, the medians, their ratios to the bare rollout and the issue's targets."""
    print()
    print(table(runs, medians))
    bare = medians.get("bare rollout", 0.0)
    print()
    for name, median in medians.items():
        print(f"{name:<16} median {median:5.1f} s" + (f"  ({median / bare:.2f}x bare rollout)"
                                                      if bare else ""))
    worst_rollback = max((r.wall_s for r in runs if r.contender == "rollback"), default=0.0)
    print(f"rollback: slowest {worst_rollback:.1f} s (target ≤ 10 s); lean deploy "
          f"{medians.get('lean deploy', 0) / bare:.2f}x bare (target ≤ 1.0x)" if bare else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one round (nox -s bench -- --quick)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("TMINUS_BENCH_PORT",
                                                                        "38080")))
    parser.add_argument("--project", default=os.environ.get("TMINUS_BENCH_PROJECT",
                                                            "tminus-bench"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true",
                        help="also print every step tminus reports, with its time")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    if shutil.which("docker-compose") is None or shutil.which("pg_dump") is None:
        print("bench_deploy: needs docker-compose and pg_dump; skipped")
        return 0
    # The e2e fixtures lay out and build the demo stack; they read these at import.
    os.environ["TMINUS_E2E_PROJECT"] = args.project
    os.environ["TMINUS_E2E_HTTP_PORT"] = str(args.port)
    from tests.e2e.conftest import GOOD, build_images, lay_out, tear_down

    workdir = Path(tempfile.mkdtemp(prefix="tminus-bench-deploy-"))
    root = workdir / "stack"
    bench = Bench(root, args.project, args.port, verbose=args.verbose)
    runs: list[Run] = []
    try:
        lay_out(root, http_port=args.port)
        tear_down(root)
        print(f"building the demo images ({', '.join(GOOD)}) …", flush=True)
        build_images(root)
        ok, out = bench.invoke("deploy", "production", GOOD[0], "--skip-checks",
                               "--skip-backup", "--watch", "0")
        if not ok:
            print(out, file=sys.stderr)
            return 1
        old, new = GOOD
        lean = ("deploy", "production", new, "--skip-checks", "--skip-backup", "--watch", "0")
        default = ("deploy", "production", new, "--skip-checks")
        back = ("rollback", old)
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}", flush=True)
            runs.append(bench.measure("bare rollout", round_, lambda: bench.bare(new)))
            runs.append(bench.measure("bare rollout", round_, lambda: bench.bare(old)))
            runs.append(bench.measure("lean deploy", round_, lambda: bench.invoke(*lean)))
            runs.append(bench.measure("rollback", round_, lambda: bench.invoke(*back)))
            runs.append(bench.measure("default deploy", round_, lambda: bench.invoke(*default)))
            runs.append(bench.measure("rollback", round_, lambda: bench.invoke(*back)))
    finally:
        tear_down(root)
        shutil.rmtree(workdir, ignore_errors=True)
    medians = summarise(runs)
    verdict(runs, medians)
    if args.json:
        report: dict[str, Any] = {"runs": [asdict(r) for r in runs], "medians": medians}
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
