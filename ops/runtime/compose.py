"""Pure argv builders for the compose CLI and the few ``docker`` container commands a deploy needs.

Nothing here runs anything (except ``detect_program``, which only asks which CLI is installed):
every function returns the argv a ``Runner`` executes, or prints under ``--dry-run``. The release
version is never interpolated into an argument: it reaches compose as ``TMINUS_VERSION`` in the
Runner's environment (see ``version_env``), and the compose file does the substitution.

The naming rule for a built service without ``image:`` lives here too, beside the CLI detection
it depends on: docker-compose v1 names the image ``<project>_<service>``, compose v2
``<project>-<service>``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ops.errors import ConfigError, UnavailableError
from ops.runtime.images import VERSION_VARIABLE
from ops.runtime.process import Argv

COMPOSE_V2 = ("docker", "compose")
COMPOSE_V1 = ("docker-compose",)


@dataclass(frozen=True)
class Compose:
    """One compose project: the program (v2 plugin or v1 binary), its name and file."""

    project: str
    file: Path
    program: tuple[str, ...] = COMPOSE_V2

    def default_image(self, service: str) -> str:
        """The image this project's compose names ``service`` when it has no ``image:``."""
        return default_image_name(self.project, service, self.program)

    def base(self) -> Argv:
        return [*self.program, "-p", self.project, "-f", str(self.file)]

    def build(self, services: Iterable[str] = ()) -> Argv:
        return [*self.base(), "build", *services]

    def up(self, services: Iterable[str] = (), *, no_deps: bool = False,
           no_recreate: bool = False, force_recreate: bool = False,
           scale: Mapping[str, int] | None = None, no_build: bool = True) -> Argv:
        argv = [*self.base(), "up", "-d"]
        if no_build:
            argv.append("--no-build")
        if no_deps:
            argv.append("--no-deps")
        if no_recreate:
            argv.append("--no-recreate")
        if force_recreate:
            argv.append("--force-recreate")
        for service, replicas in (scale or {}).items():
            argv += ["--scale", f"{service}={replicas}"]
        return [*argv, *services]

    def scale_to(self, service: str, replicas: int) -> Argv:
        """Add replicas next to the running ones, leaving those untouched (rolling, scale up)."""
        return self.up([service], no_deps=True, no_recreate=True, scale={service: replicas})

    def recreate(self, service: str, replicas: int | None = None) -> Argv:
        """Stop the old containers, then start new ones: for single-writer services."""
        scale = {service: replicas} if replicas is not None else None
        return self.up([service], no_deps=True, force_recreate=True, scale=scale)

    def run_rm(self, service: str, command: Iterable[str]) -> Argv:
        """A one-off container of ``service`` (e.g. migrations), removed afterwards."""
        return [*self.base(), "run", "--rm", "--no-deps", "-T", service, *command]

    def migrate(self, service: str, revision: str = "head") -> Argv:
        return self.run_rm(service, ["python3", "-m", "alembic", "upgrade", revision])

    def downgrade(self, service: str, revision: str) -> Argv:
        return self.run_rm(service, ["python3", "-m", "alembic", "downgrade", revision])

    def ps(self, services: Iterable[str] = (), *, quiet: bool = False) -> Argv:
        argv = [*self.base(), "ps"]
        if quiet:
            argv.append("-q")
        return [*argv, *services]

    def stop(self, services: Iterable[str] = (), *, timeout: int | None = None) -> Argv:
        argv = [*self.base(), "stop"]
        if timeout is not None:
            argv += ["-t", str(timeout)]
        return [*argv, *services]

    def rm(self, services: Iterable[str] = ()) -> Argv:
        return [*self.base(), "rm", "-f", "-s", *services]

    def down(self, *, volumes: bool = False, timeout: int | None = None) -> Argv:
        argv = [*self.base(), "down", "--remove-orphans"]
        if volumes:
            argv.append("-v")
        if timeout is not None:
            argv += ["-t", str(timeout)]
        return argv


def stop_containers(ids: Iterable[str], *, timeout: int) -> Argv:
    """``docker stop``: SIGTERM (the app then drains), SIGKILL after ``timeout`` seconds."""
    return ["docker", "stop", "-t", str(timeout), *ids]


def remove_containers(ids: Iterable[str]) -> Argv:
    return ["docker", "rm", "-f", *ids]


def version_env(version: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Runner environment for a compose call at ``version``."""
    env = dict(os.environ if base is None else base)
    env[VERSION_VARIABLE] = version
    return env


def detect_program(preference: str | None = None) -> tuple[str, ...]:
    """``docker compose`` when the plugin answers, else Debian's ``docker-compose`` (1.29).

    This only asks (``… version``), so it runs under ``--dry-run`` too: the printed commands are
    the ones a real run would execute. The v2 plugin must answer (``docker`` is installed without
    it); the v1 binary is taken when it is on PATH, without starting it (a Python start, 0.35 s
    of every deploy and rollback): a broken install fails on its first real call, with its error.
    """
    if preference in {"v1", "docker-compose"}:
        candidates: tuple[tuple[str, ...], ...] = (COMPOSE_V1,)
    elif preference in {"v2", "docker compose"}:
        candidates = (COMPOSE_V2,)
    else:
        candidates = (COMPOSE_V2, COMPOSE_V1)
    for program in candidates:
        if shutil.which(program[0]) is None:
            continue
        if program == COMPOSE_V1:
            return program
        try:
            done = subprocess.run([*program, "version"], capture_output=True, text=True,
                                  timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return program
    raise UnavailableError("neither `docker compose` nor `docker-compose` is installed",
                           hint="install the compose plugin, or Debian's docker-compose")


def default_image_name(project: str, service: str, program: Sequence[str] = COMPOSE_V2) -> str:
    """Compose's own name for a built service's image when the file gives none.

    docker-compose v1 joins project and service with ``_``, compose v2 with ``-``; tminus tags
    that repository with the release, so ``compose up`` finds what ``invoke build`` made only
    when both agree on the program.
    """
    separator = "_" if tuple(program) == COMPOSE_V1 else "-"
    return f"{project}{separator}{service}"


def image_namer(project: str, program: Sequence[str] | None = None) -> Callable[[str], str]:
    """``service -> default_image_name(project, service, program)``, the program detected lazily.

    The compose CLI is asked only when a service actually needs the rule (most compose files name
    every image), once per namer. With neither CLI installed (a release cut on a laptop without
    Docker) v2's rule is used: v1 is end-of-life, and ``detect_program`` prefers v2 too.
    """
    chosen: list[tuple[str, ...]] = [tuple(program)] if program else []

    def name(service: str) -> str:
        if not chosen:
            try:
                chosen.append(detect_program())
            except UnavailableError:
                chosen.append(COMPOSE_V2)
        return default_image_name(project, service, chosen[0])

    return name


def project_name(root: Path, env_name: str, configured: str | None) -> str:
    """The compose project an environment runs as: configured, else ``<directory>-<environment>``.

    Compose project names allow lowercase letters, digits, ``-`` and ``_``; anything else becomes
    ``-``. Deploys (``ops.deploy.stack``) and image naming (``ops.release.build``) share this rule.
    """
    raw = configured or f"{root.name}-{env_name}"
    name = re.sub(r"[^a-z0-9_-]+", "-", raw.lower()).strip("-_")
    if not name:
        raise ConfigError(f"cannot derive a compose project name from {raw!r}",
                          hint=f"set ops.environments.{env_name}.project_name")
    return name
