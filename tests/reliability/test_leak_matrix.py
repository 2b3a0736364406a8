"""The leak matrix: canary secrets in every awkward shape, every task, every format — none escapes.

A fixture service repository gets canary passwords planted in each shape that leaked before
(issue 11): a URL whose password holds ``#``, ``?``, ``/`` or an unencoded ``@``; ``?password=``
for Postgres and Redis; a URL without a scheme; an unparseable URL; an unquoted multi-line
private key and a bare word in ``.env``; URLs in ``invoke.yaml`` and in ``INVOKE_OPS_*``. The
real program (``.venv/bin/invoke``) then runs ``predeploy`` in text, JSON and JUnit, each with
and without ``--debug``, ``config`` and ``checklist``; stdout, stderr and every file the run wrote
under the repository are searched for each canary. Each canary is two markers around the special
character, and each marker is searched on its own, so half a password leaking counts too.

The URLs point at a closed loopback port, so the drivers really parse them and fail fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

INVOKE = Path(sys.executable).with_name("invoke")
VERSION = "v0.1.0"
#: Nothing listens here: connecting is refused at once.
HOST = "127.0.0.1:1"


@dataclass(frozen=True)
class Shape:
    """One way a secret can be written, and the markers that must never be seen."""

    name: str
    markers: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    """A fixture: the .env text, the invoke.yaml text, extra environment, what is planted."""

    name: str
    env_file: str
    invoke_yaml: str
    environ: dict[str, str]
    shapes: tuple[Shape, ...]
    #: every task and format (else only the two predeploy runs that exercise the drivers)
    full: bool = True


def _pair(tag: str) -> tuple[str, str]:
    return f"KcA{tag}q7Z", f"KcB{tag}w3X"


# --- the shapes ----------------------------------------------------------------------------------

H_A, H_B = _pair("hash")
Q_A, Q_B = _pair("qmark")
S_A, S_B = _pair("slash")
AT_A, AT_B = _pair("at")
PGQ = _pair("pgquery")[0]
RQ = _pair("redisquery")[0]
RAT_A, RAT_B = _pair("redisat")
NS_A = _pair("noscheme")[0]
UP_A = _pair("unparse")[0]
#: (shape, URL); the Postgres ones take turns as DATABASE_URL, the Redis ones as REDIS_URL.
PG_URLS = [
    (Shape("url password with #", (H_A, H_B)), f"postgresql://app:{H_A}#{H_B}@{HOST}/app"),
    (Shape("url password with ?", (Q_A, Q_B)), f"postgresql://app:{Q_A}?{Q_B}@{HOST}/app"),
    (Shape("url password with /", (S_A, S_B)), f"postgresql://app:{S_A}/{S_B}@{HOST}/app"),
    (Shape("url password with unencoded @", (AT_A, AT_B)),
     f"postgresql://app:{AT_A}@{AT_B}@{HOST}/app"),
    (Shape("postgres ?password= parameter", (PGQ,)),
     f"postgresql://app@{HOST}/app?sslmode=disable&password={PGQ}"),
    (Shape("url without a scheme", (NS_A,)), f"app:{NS_A}@{HOST}/app"),
    (Shape("unparseable url", (UP_A,)), f"postgresql://app:{UP_A}@[::1:5432"),
]
REDIS_URLS = [
    (Shape("redis ?password= parameter", (RQ,)), f"redis://{HOST}/0?password={RQ}"),
    (Shape("redis password with unencoded @", (RAT_A, RAT_B)),
     f"redis://:{RAT_A}@{RAT_B}@{HOST}/0"),
]
PEM_A, PEM_B = "MIIEKcPemBodyAq7Z0", "KcPemBodyBw3X"
PEM = Shape("unquoted multi-line private key", (PEM_A, PEM_B))
BARE = Shape("bare word line", ("KcBareWordq7Z",))
YAML_A, YAML_B = _pair("yaml")
YAML_R = _pair("yamlredis")[0]
YAML_H = _pair("yamlhealth")[0]
YAML = Shape("invoke.yaml urls", (YAML_A, YAML_B, YAML_R, YAML_H))
ENVVAR = Shape("INVOKE_OPS_* url", (_pair("envvar")[0],))

SECRET_KEY = "k" + "Jx8s9dk2l3mZ0qP4rT6vW8yB1nC3eF5gH7jK9aa"  # a strong, non-canary value


def _env_file(database: str, redis: str) -> str:
    """Every .env shape at once: one Postgres and one Redis URL in the driver slots, the others
    under keys of their own, the private key and the bare word."""
    others = [url for _, url in PG_URLS + REDIS_URLS if url not in {database, redis}]
    lines = [f"DATABASE_URL={database}", f"REDIS_URL={redis}", f"SECRET_KEY={SECRET_KEY}"]
    lines += [f"EXTRA_{n}_URL={url}" for n, url in enumerate(others)]
    lines += ["PRIVATE_KEY=-----BEGIN RSA PRIVATE KEY-----", PEM_A + "abc", PEM_B + "==",
              "-----END RSA PRIVATE KEY-----", BARE.markers[0], "LOG_LEVEL=info"]
    return "\n".join(lines) + "\n"


def variants() -> list[Variant]:
    env_shapes = (*(s for s, _ in PG_URLS + REDIS_URLS), PEM, BARE)
    found = []
    for n, (shape, url) in enumerate(PG_URLS):
        _, redis_url = REDIS_URLS[n % len(REDIS_URLS)]
        found.append(Variant(f"env:{shape.name} as DATABASE_URL", _env_file(url, redis_url),
                             "ops:\n  runbook:\n    max_age_days: 30\n", {}, env_shapes,
                             full=n == 0))
    for shape, url in REDIS_URLS[1:]:  # REDIS_URLS[0] was REDIS_URL in the first variant
        found.append(Variant(f"env:{shape.name} as REDIS_URL", _env_file(PG_URLS[0][1], url),
                             "", {}, env_shapes, full=False))
    yaml_text = textwrap.dedent(f"""\
        ops:
          environments:
            production:
              database_url: 'postgresql://app:{YAML_A}#{YAML_B}@{HOST}/app'
              redis_url: 'redis://{HOST}/0?password={YAML_R}'
              health_url: 'http://ops:{YAML_H}@{HOST}/health'
        """)
    found.append(Variant("invoke.yaml", _env_file(PG_URLS[1][1], REDIS_URLS[1][1]), yaml_text,
                         {}, (*env_shapes, YAML)))
    found.append(Variant(
        "INVOKE_OPS_*", _env_file(PG_URLS[2][1], REDIS_URLS[0][1]), "",
        {"INVOKE_OPS_ENVIRONMENTS_PRODUCTION_DATABASE_URL":
         f"postgresql://app@{HOST}/app?password={ENVVAR.markers[0]}"}, (*env_shapes, ENVVAR)))
    return found


#: The runs of a variant that is not ``full``: each driver slot's error path, text and JSON.
DRIVER_RUNS = {("predeploy", "text+debug"), ("predeploy", "json")}
#: (task label, format label, argv after `invoke`)
RUNS: list[tuple[str, str, list[str]]] = [
    *[("predeploy", f"{fmt}{'+debug' if debug else ''}",
       [*(["--debug"] if debug else []), "predeploy", "--version", VERSION,
        *(["--format", fmt] if fmt != "text" else [])])
      for fmt in ("text", "json", "junit") for debug in (False, True)],
    *[("config", "yaml" + ("+debug" if debug else ""), [*(["--debug"] if debug else []),
                                                        "config"]) for debug in (False, True)],
    *[("checklist", "markdown" + ("+debug" if debug else ""),
       [*(["--debug"] if debug else []), "checklist", "--version", VERSION])
      for debug in (False, True)],
]


# --- the fixture repository ----------------------------------------------------------------------

RUNBOOK = """\
# Runbook

## Health checks
`curl -fsS http://127.0.0.1:8080/health`

## Rollback
`invoke rollback v0.1.0`

## Scaling
`invoke scale api=2`

## Monitoring
p95 latency and error rate.

## Emergency contacts
- On-call: Alex Kim, +1-555-0100
"""
REVISION = '''\
"""create users

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("users")
'''


def build_service(path: Path) -> Path:
    repo = GitRepo(path)
    repo.write("tasks.py", "from ops.tasks import ns\n")
    repo.write(".gitignore", ".env\n.tminus/\ninvoke.yaml\n")
    repo.write(".env.example", "DATABASE_URL=postgresql://app:change-me@db:5432/app\n"
                               "REDIS_URL=redis://redis:6379/0\nSECRET_KEY=change-me\n"
                               "LOG_LEVEL=info\n")
    repo.write("RUNBOOK.md", RUNBOOK)
    repo.write("alembic.ini", "[alembic]\nscript_location = migrations\n")
    repo.write("migrations/env.py", "raise SystemExit('never run')\n")
    repo.write("migrations/script.py.mako", "${message}\n")
    repo.write("migrations/versions/0001_create_users.py", REVISION)
    repo.write("docs/SCHEMA.md", "## 0001 — create users\n")
    repo.write("redis_schema.yaml", 'keys:\n  "session:{id}": hash\n')
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "feat: service")
    repo.git("tag", "-a", VERSION, "-m", f"release {VERSION}")
    return path


@dataclass
class Outcome:
    variant: str
    task: str
    fmt: str
    returncode: int
    leaks: list[str] = field(default_factory=list)
    planted: int = 0


def _snapshot(root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in _files(root)}


def _files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def run_one(base: Path, root: Path, variant: Variant, task: str, fmt: str,
            argv: list[str]) -> Outcome:
    """Copy the fixture to ``root``, plant the variant, run one task, search everything it
    produced."""
    shutil.copytree(base, root, symlinks=True)
    (root / ".env").write_text(variant.env_file, encoding="utf-8")
    (root / ".env").chmod(0o600)
    if variant.invoke_yaml:
        (root / "invoke.yaml").write_text(variant.invoke_yaml, encoding="utf-8")
    before = _snapshot(root)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")}
    environ.update(NO_COLOR="1", TMINUS_USER="leak-matrix", **variant.environ)
    done = subprocess.run([str(INVOKE), *argv], cwd=root, capture_output=True, timeout=120,
                          check=False, env=environ)
    outputs: dict[str, bytes] = {"stdout": done.stdout, "stderr": done.stderr}
    for path in _files(root):
        if path.name in {".env", "invoke.yaml"} and path.parent == root:
            continue
        if before.get(path) != (path.stat().st_size, path.stat().st_mtime_ns):
            outputs[str(path.relative_to(root))] = path.read_bytes()
    outcome = Outcome(variant.name, task, fmt, done.returncode, planted=len(variant.shapes))
    for shape in variant.shapes:
        for marker in shape.markers:
            for where, data in outputs.items():
                if marker.encode() in data:
                    outcome.leaks.append(f"{shape.name}: {marker} in {where}")
    shutil.rmtree(root, ignore_errors=True)
    return outcome


def run_matrix(scratch: Path) -> tuple[list[Outcome], set[tuple[str, str, str]]]:
    """Every variant x every run, in parallel; the outcomes and the (shape, task, format)
    triples they covered."""
    base = build_service(scratch / "service")
    jobs = [(v, task, fmt, argv) for v in variants() for task, fmt, argv in RUNS
            if v.full or (task, fmt) in DRIVER_RUNS]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        outcomes = list(pool.map(lambda n: run_one(base, scratch / f"run{n}", *jobs[n]),
                                 range(len(jobs))))
    covered = {(shape.name, task, fmt) for v, task, fmt, _ in jobs for shape in v.shapes}
    return outcomes, covered


def test_no_planted_secret_appears_in_any_output_of_any_task_in_any_format(
        tmp_path: Path) -> None:
    outcomes, covered = run_matrix(tmp_path)

    shapes = {shape for shape, _, _ in covered}
    combos = {(task, fmt) for _, task, fmt in covered}
    planted = sum(o.planted for o in outcomes)
    leaks = [f"[{o.variant} | {o.task} {o.fmt}] {leak}" for o in outcomes for leak in o.leaks]
    print(f"\nleak matrix: {len(shapes)} secret shapes x {len(combos)} task/format runs "
          f"({len({t for t, _ in combos})} tasks) = {len(covered)} (shape, task, format) cells; "
          f"{len(outcomes)} runs, {planted} planted secrets searched, {len(leaks)} leaks")
    assert not leaks, "\n".join(leaks)
    # the runs really ran: predeploy fails (the .env is broken on purpose), config succeeds
    assert all(o.returncode in {0, 1, 2} for o in outcomes), [(o.task, o.returncode)
                                                              for o in outcomes]
    assert any(o.task == "config" and o.returncode == 0 for o in outcomes)
    assert any(o.task == "predeploy" and o.returncode == 1 for o in outcomes)
