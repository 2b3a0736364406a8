"""tminus's own sessions: tests (default), lint, typecheck, e2e, bench, demo.

Dependencies come from pyproject.toml's dependency groups, so this file never repeats a version.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = "3.11"


def install(session: nox.Session, *groups: str) -> None:
    session.install("-e", ".")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole suite: unit, integration (git, Postgres, Redis) and e2e (Docker)."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON, default=False)
def e2e(session: nox.Session) -> None:
    """Run only the end-to-end tests against the real Docker engine."""
    install(session, "test")
    session.run("pytest", "-m", "e2e", *session.posargs,
                env={"OPS_REQUIRE_SERVICES": os.environ.get("OPS_REQUIRE_SERVICES", "1")})


@nox.session(python=PYTHON, default=False)
def lint(session: nox.Session) -> None:
    """Lint with ruff, then prove the layers point one way (docs/architecture.md)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", *(session.posargs or ["."]))
    # stdlib only: no import cycle between ops' packages, no upward import, allowlist that shrinks
    session.run("python", "scripts/check_layers.py")


@nox.session(python=PYTHON, default=False)
def typecheck(session: nox.Session) -> None:
    """Type-check ops, tasks.py, noxfile.py and tests with mypy --strict."""
    install(session, "typecheck")
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Time tminus against the standard tools (sha256sum, detect-secrets, pg_dump); print ratios."""
    install(session, "test")  # bench_predeploy_large builds its repository with tests/layouts.py
    quick = ["--quick"] if "--quick" in session.posargs else []
    for script in sorted(Path("benchmarks").glob("bench_*.py")):
        session.run("python", str(script), *quick)


@nox.session(python=PYTHON, default=False)
def demo(session: nox.Session) -> None:
    """Lay the demo service into a temp dir as a git repo with two releases and run predeploy."""
    install(session)
    session.run("invoke", "demo", *session.posargs)
