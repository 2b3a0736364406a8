"""The embedded demo: the service at the root of this checkout, released twice, then checked.

``invoke demo`` copies the service (API, worker, migrations, compose file, runbook, …) into a
fresh temporary directory, makes it its own git repository and cuts two real releases with
``create_release``: v0.1.0 without the newest migration, v0.2.0 adding it and retraining a
checkpoint. It writes a ``.env`` with freshly generated secrets and runs predeploy on the result.

Nothing here needs Docker or a database: the URLs point at loopback with names that need not
exist, so the checks that need those skip with their reason on a bare machine. Checkpoints are a
few KiB of deterministic bytes, never real weights.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import ops
from ops.atomic import atomic_write_text
from ops.checks import CheckContext, run_predeploy
from ops.config import Settings, load_settings
from ops.errors import ChecksFailed, UsageError
from ops.release.create import create_release
from ops.release.notes import parse_migration
from ops.report import Report, choose_format, emit
from ops.runtime.envfile import read_env
from ops.versioning import parse_version

#: Files and folders of the service, relative to the checkout root (copied when present).
SERVICE_FILES = ("alembic.ini", "docker-compose.yml", "compose.yaml", ".env.example",
                 "RUNBOOK.md", "redis_schema.yaml", "docs/SCHEMA.md", "checkpoints/README.md",
                 "releases/README.md", "invoke.yaml", ".dockerignore")
SERVICE_DIRS = ("service", "migrations", "proxy", "db", "redis")
RELEASES = ("v0.1.0", "v0.2.0")
CHECKPOINT_BYTES = 4096
GITIGNORE = """\
.env
.env.*
!.env.example
.tminus/
__pycache__/
*.py[cod]
backups/
CHECKLIST_*.md
releases/deployments.jsonl
"""
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache")


@dataclass(frozen=True)
class DemoRepo:
    root: Path
    releases: tuple[str, ...]
    held_back: tuple[str, ...]  # migration files added only in the second release


def checkout_root() -> Path:
    """The tminus checkout the ``ops`` package was loaded from: where the service lives."""

    root = Path(ops.__file__).resolve().parent.parent
    if not (root / "service").is_dir() or not (root / "alembic.ini").is_file():
        raise UsageError(f"the embedded demo service is not beside the ops package ({root})",
                         hint="run the demo from a tminus checkout (pip install -e .)")
    return root


def checkpoint_bytes(name: str, generation: int) -> bytes:
    """A few KiB that depend only on the name and generation: reproducible, not compressible."""
    out = bytearray()
    counter = 0
    while len(out) < CHECKPOINT_BYTES:
        out += hashlib.sha256(f"{name}:{generation}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:CHECKPOINT_BYTES])


# --- laying out the repository -------------------------------------------------------------------


def copy_service(source: Path, target: Path) -> None:
    for relative in SERVICE_FILES:
        if (source / relative).is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, target / relative)
    for relative in SERVICE_DIRS:
        if (source / relative).is_dir():
            shutil.copytree(source / relative, target / relative, ignore=_IGNORED,
                            symlinks=True)
    for dockerfile in source.glob("Dockerfile*"):
        if dockerfile.is_file():
            shutil.copy2(dockerfile, target / dockerfile.name)
    (target / "tasks.py").write_text(
        '"""The demo service\'s tasks: tminus\'s collection."""\n\nfrom ops.tasks import ns\n\n'
        '__all__ = ["ns"]\n', encoding="utf-8")
    (target / ".gitignore").write_text(GITIGNORE, encoding="utf-8")


def newest_migrations(versions: Path) -> dict[Path, str]:
    """The head revision's script → its revision: what the second release adds.

    Nothing is held back when there is only one migration: the first release needs a schema.
    """

    scripts = {}
    for path in sorted(versions.glob("*.py")):
        migration = parse_migration(path.read_text(encoding="utf-8"), path.name)
        if migration is not None:
            scripts[migration.revision] = (path, migration)
    if len(scripts) < 2:
        return {}
    parents = {m.down_revision for _, m in scripts.values()}
    return {path: revision for revision, (path, _) in scripts.items() if revision not in parents}


def without_sections(markdown: str, words: Iterable[str]) -> str:
    """The Markdown minus each ``##`` section whose heading names one of ``words``."""
    keep: list[str] = []
    dropping = False
    for line in markdown.splitlines(keepends=True):
        if line.startswith("## "):
            dropping = any(word in line for word in words)
        if not dropping:
            keep.append(line)
    return "".join(keep)


def demo_env(example: dict[str, str], version: str) -> dict[str, str]:
    """A value for each key of .env.example: fresh strong secrets, loopback URLs."""
    db = secrets.token_hex(4)
    values: dict[str, str] = {}
    for key, sample in example.items():
        upper = key.upper()
        if upper == "DATABASE_URL":
            values[key] = (f"postgresql://tminus_demo:{secrets.token_urlsafe(24)}"
                           f"@127.0.0.1:5432/tminus_demo_{db}")
        elif upper == "REDIS_URL":
            values[key] = "redis://127.0.0.1:6379/0"
        elif upper in {"APP_VERSION", "TMINUS_VERSION", "VERSION"}:
            values[key] = version
        elif "://" in sample:
            parts = urlsplit(sample)
            user = f"{secrets.token_hex(16)}@" if parts.username else ""
            values[key] = f"{parts.scheme}://{user}127.0.0.1{parts.path or '/'}"
        elif any(word in upper for word in ("SECRET", "KEY", "TOKEN", "PASSWORD", "PASS")):
            prefix = next((p for p in ("sk_test_", "sk_live_", "pk_test_", "pk_live_")
                           if sample.startswith(p)), "")
            values[key] = prefix + secrets.token_urlsafe(48)
        else:
            values[key] = sample
    return values


def build_demo(target: Path, *, source: Path | None = None,
               upto: str = RELEASES[-1]) -> DemoRepo:
    """Lay the service into ``target`` as a git repository with its releases up to ``upto``.

    Stopping at v0.1.0 gives the repository as it was on that release's day, so checking it is
    not a check of an old release under a newer one (which release_tag.monotonic rightly fails).
    """
    import git

    source = source or checkout_root()
    copy_service(source, target)
    settings = demo_settings(target)
    versions = target / "migrations" / "versions"
    held = newest_migrations(versions) if versions.is_dir() else {}
    held_text = {path: path.read_bytes() for path in held}
    revisions = list(held.values())
    schema = target / "docs" / "SCHEMA.md"
    schema_text = schema.read_text(encoding="utf-8") if schema.is_file() else None
    for path in held:
        path.unlink()
    if schema_text is not None:
        schema.write_text(without_sections(schema_text, revisions), encoding="utf-8")
    checkpoints = target / settings.artifacts.checkpoints_dir
    checkpoints.mkdir(parents=True, exist_ok=True)
    for name in ("ranker.safetensors", "embedder.onnx"):
        (checkpoints / name).write_bytes(checkpoint_bytes(name, 1))

    repo = git.Repo.init(target, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "tminus demo")
        config.set_value("user", "email", "demo@tminus.invalid")
        config.set_value("commit", "gpgsign", "false")
        config.set_value("tag", "gpgsign", "false")
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "feat: demo service with the users table and first checkpoints")
    create_release(target, settings, parse_version(RELEASES[0]))
    if upto == RELEASES[0]:
        return _finish(target, RELEASES[:1], {})

    for path, data in held_text.items():
        path.write_bytes(data)
    if schema_text is not None:
        schema.write_text(schema_text, encoding="utf-8")
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "feat(db): add the jobs table for the worker queue"
                    if held else "docs: schema changelog")
    (checkpoints / "ranker.safetensors").write_bytes(checkpoint_bytes("ranker.safetensors", 2))
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "perf(models): retrain the ranker checkpoint")
    create_release(target, settings, parse_version(RELEASES[1]))
    return _finish(target, RELEASES, held)


def _finish(target: Path, releases: tuple[str, ...], held: dict[Path, str]) -> DemoRepo:
    """Write the .env (never committed) for the newest release and describe the result."""

    example = read_env(target / ".env.example")
    write_env(target / ".env", demo_env(example, releases[-1]))
    return DemoRepo(target, releases, tuple(p.name for p in held))


def write_env(path: Path, values: dict[str, str]) -> None:
    lines = ["# Generated by `invoke demo`: fresh secrets for this demo only."]
    lines += [f"{key}={value}" for key, value in values.items()]
    atomic_write_text(path, "\n".join(lines) + "\n", mode=0o600)


def demo_settings(root: Path) -> Settings:
    """The demo's own configuration: the ``ops`` key of its copied invoke.yaml, else defaults."""
    import yaml

    path = root / "invoke.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    raw = data.get("ops") if isinstance(data, dict) else None
    settings = load_settings(raw if isinstance(raw, dict) else None)
    return settings.model_copy(update={"project_root": Path()})


# --- the task's job ------------------------------------------------------------------------------


def run_demo(*, keep: bool = False, output: Path | None = None, version: str = RELEASES[1],
             stream: TextIO | None = None) -> Report:
    """Build the demo, run predeploy on ``version`` and print the report (and write it)."""

    out = stream or sys.stdout
    release = parse_version(version)
    if release.tag not in RELEASES:
        raise UsageError(f"the demo has releases {' and '.join(RELEASES)}, not {release.tag}")
    if output is not None:
        choose_format(None, output)
        output = output.resolve()
    target = Path(tempfile.mkdtemp(prefix="tminus-demo-"))
    try:
        out.write(f"Laying the demo service into {target} …\n")
        demo = build_demo(target, upto=release.tag)
        out.write(f"Released {' and '.join(demo.releases)}; running predeploy for {release}.\n\n")
        out.flush()
        settings = demo_settings(target)
        ctx = CheckContext(root=target, settings=settings, version=release)
        report = run_predeploy(ctx)
        emit(report, fmt=None, output=output, stream=out)
    finally:
        if keep:
            out.write(f"\nDemo repository kept at {target}\n"
                      f"  cd {target} && invoke predeploy --version {release}\n")
        else:
            shutil.rmtree(target, ignore_errors=True)
    if not report.ok:
        raise ChecksFailed(f"predeploy checks failed for the demo's {release}")
    return report
