"""The demo stack on the real Docker engine, for the deploy e2e specs.

Session-wide: the local Debian base image (built once, cached by tag); the demo images v0.1.0
and v0.2.0, a deliberately broken v0.3.0 (its /health answers 503) and a slow v0.4.0; one
compose project in a temp copy of the demo stack on its own loopback ports, first deployed at
v0.1.0 with three app replicas by tminus itself. Torn down (containers and volumes) at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GitRepo, need

REPO = Path(__file__).resolve().parents[2]
STACK_FILES = ("docker-compose.yml", "alembic.ini", ".dockerignore")
STACK_DIRS = ("service", "migrations", "proxy", "db", "redis", "prometheus")
#: Overridable so that two e2e runs on one machine (two worktrees) do not share a project.
PROJECT = os.environ.get("TMINUS_E2E_PROJECT", "tminus-e2e")
HTTP_PORT = int(os.environ.get("TMINUS_E2E_HTTP_PORT", "18080"))
BASE = "tminus/debian-base:bookworm"
INVOKE = str(Path(sys.executable).with_name("invoke"))
GOOD = ("v0.1.0", "v0.2.0")
BROKEN = "v0.3.0"  # /health answers 503
SLOW = "v0.4.0"  # healthy, but every request takes 400 ms more


@dataclass
class DemoStack:
    """A compose project of the demo in a temp dir, driven through `invoke` like a user would."""

    root: Path
    url: str
    client: Any
    env: dict[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        password = (self.root / ".db-password").read_text(encoding="utf-8")
        return database_url(password, int(self.url.rsplit(":", 1)[1]))

    @property
    def health_url(self) -> str:
        return f"{self.url}/health"

    @property
    def version_url(self) -> str:
        return f"{self.url}/version"

    def invoke(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a task in the stack's directory; the completed process, whatever its status."""
        return subprocess.run([INVOKE, *args], cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([INVOKE, *args], cwd=self.root, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def app_containers(self) -> list[Any]:
        found: list[Any] = self.client.containers.list(filters={"label": [
            f"com.docker.compose.project={PROJECT}", "com.docker.compose.service=app"]})
        return found

    def app_versions(self) -> list[str]:
        return sorted(c.labels.get("tminus.version", "?") for c in self.app_containers())

    def converge(self, version: str, replicas: int = 3) -> None:
        """Bring the app to ``version`` at ``replicas`` (a precondition, not under test)."""
        if self.app_versions() != [version] * len(self.app_containers()) or \
                not self.app_containers():
            done = self.invoke("deploy", "production", version, "--skip-checks",
                               "--skip-backup", "--watch", "0", "--lock-wait", "60")
            assert done.returncode == 0, done.stdout + done.stderr
        if len(self.app_containers()) != replicas:
            done = self.invoke("scale", f"app={replicas}", "--step", str(replicas))
            assert done.returncode == 0, done.stdout + done.stderr


def database_url(password: str, http_port: int = HTTP_PORT) -> str:
    """The stack's Postgres as seen from the host (its published loopback port)."""
    return f"postgresql://app:{password}@127.0.0.1:{http_port + 2}/app"


def lay_out(dest: Path, *, http_port: int = HTTP_PORT) -> None:
    """Copy the demo stack and give it a fresh .env, its own ports and an invoke.yaml."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in STACK_FILES:
        shutil.copy2(REPO / name, dest / name)
    for name in STACK_DIRS:
        shutil.copytree(REPO / name, dest / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    password = secrets.token_hex(12)
    (dest / ".db-password").write_text(password, encoding="utf-8")
    (dest / ".env").write_text("\n".join([
        f"DATABASE_URL=postgresql://app:{password}@db:5432/app",
        "REDIS_URL=redis://redis:6379/0",
        f"SECRET_KEY={secrets.token_urlsafe(32)}",
        "LOG_LEVEL=info",
        f"TMINUS_BASE_IMAGE={BASE}",
        f"TMINUS_HTTP_PORT={http_port}",
        f"TMINUS_STATS_PORT={http_port + 1}",
        f"TMINUS_DB_PORT={http_port + 2}",
        f"TMINUS_REDIS_PORT={http_port + 3}",
        f"TMINUS_PROMETHEUS_PORT={http_port + 4}",
    ]) + "\n", encoding="utf-8")
    (dest / "tasks.py").write_text("from ops.tasks import ns\n\n__all__ = ['ns']\n",
                                   encoding="utf-8")
    (dest / "invoke.yaml").write_text(f"""\
ops:
  environments:
    production:
      project_name: {PROJECT}
      health_url: http://127.0.0.1:{http_port}/health
      health_timeout_s: 60
      watch_s: 3
      migrate: before
      db_rollback: restore
      database_url: {database_url(password, http_port)}
      redis_url: redis://127.0.0.1:{http_port + 3}/0
      services:
        app: {{required: true, replicas: 3}}
        worker: {{strategy: recreate, required: true}}
""", encoding="utf-8")


def build_images(root: Path) -> None:
    """v0.1.0 and v0.2.0 with compose, as a user would; v0.3.0 unhealthy, v0.4.0 slow."""
    env = dict(os.environ, TMINUS_BASE_IMAGE=BASE)
    compose = ["docker-compose", "-p", PROJECT, "-f", "docker-compose.yml"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True,
                      check=False).returncode == 0:
        compose = ["docker", "compose", "-p", PROJECT, "-f", "docker-compose.yml"]
    for version in GOOD:
        subprocess.run([*compose, "build"], cwd=root, env={**env, "TMINUS_VERSION": version},
                       check=True, capture_output=True)
    for version, flaw in ((BROKEN, "APP_FORCE_UNHEALTHY=1"), (SLOW, "APP_SLOW_MS=400")):
        subprocess.run(["docker", "build", "-q", "-f", "service/Dockerfile",
                        "--build-arg", f"BASE_IMAGE={BASE}",
                        "--build-arg", f"APP_VERSION={version}", "--build-arg", flaw,
                        "-t", f"tminus-demo/app:{version}", "-t", f"tminus-demo/worker:{version}",
                        "."], cwd=root, check=True, capture_output=True)


def tear_down(root: Path) -> None:
    subprocess.run(["docker-compose", "-p", PROJECT, "-f", "docker-compose.yml", "down", "-v",
                    "--remove-orphans", "-t", "5"], cwd=root, capture_output=True, check=False)


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    from ops.dev.baseimage import ensure_base_image
    from ops.runtime.process import Runner

    if shutil.which("debootstrap") is None and not docker_client.images.list(name=BASE):
        need("debootstrap is not installed and the base image is not cached")
    ensure_base_image(docker_client, Runner(), tag=BASE)
    return BASE


@pytest.fixture(scope="session")
def demo_stack(tmp_path_factory: pytest.TempPathFactory, docker_client: Any,
               base_image: str) -> Iterator[DemoStack]:
    if shutil.which("docker-compose") is None and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False).returncode:
        need("neither docker compose nor docker-compose is installed")
    root = tmp_path_factory.mktemp("stack")
    lay_out(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")}
    env.update({"TMINUS_USER": "e2e", "NO_COLOR": "1"})
    stack = DemoStack(root, f"http://127.0.0.1:{HTTP_PORT}", docker_client, env)
    tear_down(root)  # a previous run killed half-way must not leave its project behind
    build_images(root)
    try:
        stack.converge(GOOD[0], replicas=3)
        yield stack
    finally:
        tear_down(root)


# --- a one-file release image (static busybox FROM scratch): builds in a second, no base image --

BUSYBOX = Path("/bin/busybox")
BUSYBOX_DOCKERFILE = """\
FROM scratch
ARG GREETING=unset
COPY busybox /bin/busybox
LABEL greeting=$GREETING
CMD ["/bin/busybox", "true"]
"""


def lay_out_busybox_app(repo: GitRepo, image: str, *, more_services: str = "") -> None:
    """A service repository whose one built service ``app`` is ``image/app:${TMINUS_VERSION}``
    (its build arg GREETING from TMINUS_TEST_GREETING), with ``from ops.tasks import ns``."""
    if not BUSYBOX.is_file():
        pytest.skip("static busybox not installed (apt-get install busybox-static)")
    repo.write("docker-compose.yml", f"""\
services:
  app:
    build:
      context: app
      args:
        GREETING: "${{TMINUS_TEST_GREETING:-hello}}"
    image: "{image}/app:${{TMINUS_VERSION:-latest}}"
""" + more_services)
    repo.write("app/Dockerfile", BUSYBOX_DOCKERFILE)
    shutil.copy(BUSYBOX, repo.path / "app" / "busybox")
    repo.write("tasks.py", "from ops.tasks import ns\n")
