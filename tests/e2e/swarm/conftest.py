"""Session-wide infrastructure of the swarm specs: the registry (and, later, the swarms).

Each piece is made once per session and removed at its end whatever happened, so a failing spec
leaves no process, certificate, namespace or firewall rule behind.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tests.e2e import conftest as demo
from tests.e2e.swarm.harness import (
    Forwarder,
    Node,
    Swarm,
    SwarmNet,
    TestRegistry,
    host_engine,
    start_registry,
)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestRegistry]:
    """A TLS + htpasswd registry on loopback, trusted by the host engine through certs.d."""
    for tool in ("docker-registry", "htpasswd", "openssl"):
        if shutil.which(tool) is None:
            need(f"{tool} is not installed (apt-get install docker-registry apache2-utils)")
    started = start_registry(Path(tmp_path_factory.mktemp("registry")))
    try:
        yield started
    finally:
        started.stop()


# --- the swarms ----------------------------------------------------------------------------------

#: The stack's name on the swarms (each swarm is its own cluster, so one name serves both).
STACK = "tminus-sw"
HTTP_PORT = 18180
#: Demo images the swarm specs run, pushed once to the registry on the bridge.
APP_VERSIONS = ("v0.1.0", "v0.2.0", "v0.3.0")


def _tools_or_skip() -> None:
    if os.geteuid() != 0:
        need("the swarm specs make network namespaces and a bridge: they need root")
    for tool in ("ip", "iptables", "nsenter", "dockerd", "docker-registry", "htpasswd",
                 "openssl"):
        if shutil.which(tool) is None:
            need(f"{tool} is not installed (see .ci/run)")


@pytest.fixture(scope="session")
def swarm_net() -> Iterator[SwarmNet]:
    """Four engines' namespaces on one bridge: node 1 forms the single-node swarm, nodes 2-4
    the three-node one. Engines start only when a swarm is formed."""
    _tools_or_skip()
    net = SwarmNet(secrets.token_hex(2), random.randint(100, 250))
    try:
        net.create(4)
        yield net
    finally:
        net.destroy()


@pytest.fixture(scope="session")
def swarm_registry(swarm_net: SwarmNet, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[TestRegistry]:
    """The registry on the bridge's own address, which the host engine and every node reach."""
    started = start_registry(Path(tmp_path_factory.mktemp("swarm-registry")),
                             host=swarm_net.gateway)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def pushed_images(swarm_registry: TestRegistry, docker_client: Any, base_image: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The demo images, built on the host engine and pushed: local reference → digest ref.
    The registry's tags are taken off the host engine again at the end."""
    from ops.runtime import registry as reg
    from ops.runtime.images import service_images

    root = tmp_path_factory.mktemp("swarm-images")
    demo.lay_out(root)
    registry = reg.Registry.parse(swarm_registry.address)
    auth = {"username": swarm_registry.username, "password": swarm_registry.password}
    pushed: dict[str, str] = {}
    refs = [f"tminus-demo/{s}:{v}" for v in APP_VERSIONS for s in ("app", "worker")]
    infra = [i.reference for i in service_images(root / "docker-compose.yml", APP_VERSIONS[0])
             if not i.versioned]  # proxy, db, redis, prometheus: whatever the demo runs
    started = time.monotonic()
    with host_engine():
        demo.build_images(root)
        for local in (*refs, *infra):
            target = registry.reference(local)
            pushed[local] = reg.pinned(target, reg.push(docker_client, local, target, auth=auth))
    print(f"\n[swarm images] built and pushed {len(pushed)} in {time.monotonic() - started:.1f}s")
    yield pushed
    with host_engine(wait=False) as free:  # tidying: never hold the teardown up for it
        for local in (*refs, *infra) if free else ():
            subprocess.run(["docker", "rmi", registry.reference(local)], capture_output=True,
                           check=False)


@dataclass
class SwarmStack:
    """The demo stack deployed to a swarm, driven through `invoke` with DOCKER_HOST set."""

    swarm: Swarm
    root: Path
    env: dict[str, str]
    door: Forwarder | None = None

    @property
    def url(self) -> str:
        return f"http://{self.swarm.manager.address}:{HTTP_PORT}"

    def invoke(self, *args: str, timeout: float = 600,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([demo.INVOKE, *args], cwd=self.root, env=env or self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([demo.INVOKE, *args], cwd=self.root, env=env or self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def docker(self, *args: str) -> str:
        return self.swarm.manager.docker(*args, env=self.env)

    def app_tasks(self, service: str = "app") -> list[dict[str, str]]:
        """The app's (or ``service``'s) running tasks: version label and node, read from the
        swarm."""
        lines = self.docker("service", "ps", f"{STACK}_{service}", "--filter",
                            "desired-state=running", "--format", "{{.ID}} {{.Node}}").split("\n")
        found = []
        for line in filter(None, lines):
            task_id = line.split()[0]
            node = self.docker("inspect", "--format", "{{.NodeID}} {{.Status.State}} "
                               "{{index .Spec.ContainerSpec.Labels \"tminus.version\"}}", task_id)
            node_id, state, version = node.split()
            found.append({"node": node_id, "state": state, "version": version})
        return [t for t in found if t["state"] == "running"]

    @property
    def loopback_url(self) -> str:
        """The entry point through a loopback relay (the load client sends load to loopback
        only)."""
        if self.door is None:
            self.door = Forwarder((self.swarm.manager.address, HTTP_PORT))
        return self.door.url

    def diagnose(self) -> str:
        """What the swarm says about every task, for a failed spec's message."""
        return "\n" + self.docker("service", "ps", "--no-trunc", "--format",
                                  "{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}",
                                  *self.docker("service", "ls", "-q").split())

    def app_versions(self) -> list[str]:
        return sorted(t["version"] for t in self.app_tasks())

    def store(self, service: str) -> tuple[Node, str]:
        """The node running ``service``'s task and its container there: read through the
        manager, reached through that node's own engine (the test's channel, not tminus's)."""
        task = self.docker("service", "ps", "-q", "--filter", "desired-state=running",
                           f"{STACK}_{service}").split()[0]
        node_id, container = self.docker(
            "inspect", "--format", "{{.NodeID}} {{.Status.ContainerStatus.ContainerID}}",
            task).split()
        name = {v: k for k, v in self.swarm.node_ids().items()}[node_id]
        return next(n for n in self.swarm.nodes if n.name == name), container

    def psql(self, sql: str) -> str:
        node, container = self.store("db")
        password = (self.root / ".db-password").read_text(encoding="utf-8")
        return node.docker("exec", "-e", f"PGPASSWORD={password}", container, "psql", "-h",
                           "127.0.0.1", "-U", "app", "-d", "app", "-v", "ON_ERROR_STOP=1",
                           "-Atc", sql)

    def redis_cli(self, *args: str) -> str:
        node, container = self.store("redis")
        return node.docker("exec", container, "redis-cli", *args)


def _swarm_stack(swarm: Swarm, registry: TestRegistry, root: Path, config: Path) -> SwarmStack:
    demo.lay_out(root, http_port=HTTP_PORT)
    address = swarm.manager.address
    (root / "invoke.yaml").write_text(f"""\
ops:
  environments:
    production:
      backend: swarm
      registry: {registry.address}
      project_name: {STACK}
      health_url: http://{address}:{HTTP_PORT}/health
      health_timeout_s: 60
      watch_s: 2
      migrate: before
      services:
        app: {{required: true, replicas: 3}}
        worker: {{required: true, replicas: 1}}
      swarm:
        update_parallelism: 1
        update_delay_s: 1
        update_monitor_s: 4
        converge_timeout_s: 90
""", encoding="utf-8")
    registry.login(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")}
    env.update({"TMINUS_USER": "e2e", "NO_COLOR": "1", "DOCKER_HOST": swarm.manager.docker_host,
                "DOCKER_CONFIG": str(config)})
    return SwarmStack(swarm, root, env)


@pytest.fixture(scope="session")
def single_swarm(swarm_net: SwarmNet, swarm_registry: TestRegistry,
                 pushed_images: dict[str, str],
                 tmp_path_factory: pytest.TempPathFactory) -> SwarmStack:
    swarm = Swarm(swarm_net.nodes[:1]).form()
    return _swarm_stack(swarm, swarm_registry, tmp_path_factory.mktemp("single"),
                        tmp_path_factory.mktemp("single-docker-config"))


@pytest.fixture(scope="session")
def three_swarm(swarm_net: SwarmNet, swarm_registry: TestRegistry,
                pushed_images: dict[str, str],
                tmp_path_factory: pytest.TempPathFactory) -> SwarmStack:
    swarm = Swarm(swarm_net.nodes[1:4]).form()
    return _swarm_stack(swarm, swarm_registry, tmp_path_factory.mktemp("three"),
                        tmp_path_factory.mktemp("three-docker-config"))
