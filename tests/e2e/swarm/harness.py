"""Real infrastructure for the swarm specs: a TLS registry with htpasswd auth, and Docker engines
in network namespaces joined into a swarm.

Everything here is made by the test and removed by it, also when a test fails: the registry
process, its certificate trust in ``/etc/docker/certs.d/<host:port>/``, the namespaces, the
bridge and its veth pairs, the iptables FORWARD rule, each node's dockerd and its directories.
Every address is loopback or one of the bridge's, which the harness itself assigns.

Why not docker-in-docker: privileged containers are refused on these machines. Why ``nsenter
--net`` and not ``ip netns exec``: the latter remounts /sys and dockerd dies with "Devices cgroup
isn't mounted".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ops.deploy.lock import pid_alive

CERTS_D = Path("/etc/docker/certs.d")
#: In a trust directory the harness made: "<pid of the test process> <pid of the registry>".
#: Docker reads only *.crt, *.cert and *.key there; this file lets a later run remove what a
#: run that was killed (no teardown) left behind.
OWNER_FILE = "tminus-test-owner"
#: Helpers on one machine share the host engine (and the tminus-demo/* tags): whatever uses it
#: holds this lock, and only for as long as it does (the swarm nodes are engines of their own).
HOST_ENGINE_LOCK = Path("/tmp/tminus-docker.lock")


@contextmanager
def host_engine(*, wait: bool = True) -> Iterator[bool]:
    """Hold the host engine's lock; with ``wait=False`` yield False at once when it is busy."""
    with HOST_ENGINE_LOCK.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(*argv: str, check: bool = True, stdin: str | None = None,
        env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, input=stdin, env=env,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: "
                           f"{(done.stderr or done.stdout).strip()[-800:]}")
    return done.stdout.strip()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, ready: Callable[[], bool], *, timeout: float = 60,
             every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(every)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


# --- the registry --------------------------------------------------------------------------------


@dataclass
class TestRegistry:
    """Debian's docker-registry (CNCF distribution 2.8) with TLS and htpasswd auth."""

    __test__ = False  # not a pytest class

    host: str
    port: int
    workdir: Path
    username: str = "tminus-ci"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def trust_dir(self) -> Path:
        return CERTS_D / self.address

    @property
    def ca(self) -> Path:
        return self.workdir / "ca.crt"

    def start(self) -> TestRegistry:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._certificates()
        run("htpasswd", "-iBc", str(self.workdir / "htpasswd"), self.username,
            stdin=self.password)
        (self.workdir / "config.yml").write_text(f"""\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {self.workdir / 'data'}
  delete:
    enabled: true
http:
  addr: {self.address}
  tls:
    certificate: {self.workdir / 'server.crt'}
    key: {self.workdir / 'server.key'}
auth:
  htpasswd:
    realm: tminus-test
    path: {self.workdir / 'htpasswd'}
""", encoding="utf-8")
        # --pdeathsig: the registry dies with the test process even when that is killed and
        # never tears down (it runs in a session of its own, so nothing else would end it)
        with (self.workdir / "registry.log").open("wb") as log:  # Popen keeps a copy
            self.process = subprocess.Popen(
                ["setpriv", "--pdeathsig", "KILL", "--", "docker-registry", "serve",
                 str(self.workdir / "config.yml")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.trust_dir.mkdir(parents=True, exist_ok=True)
        (self.trust_dir / OWNER_FILE).write_text(f"{os.getpid()} {self.process.pid}\n",
                                                 encoding="utf-8")
        shutil.copy(self.ca, self.trust_dir / "ca.crt")
        wait_for(f"registry on {self.address}", self._answers, timeout=30)
        return self

    def _certificates(self) -> None:
        """A CA made for this run, and a server certificate for the registry's IP from it."""
        w = self.workdir
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        run("openssl", "req", "-x509", *ec, "-keyout", str(w / "ca.key"), "-out", str(w / "ca.crt"),
            "-days", "2", "-subj", "/CN=tminus test CA")
        run("openssl", "req", *ec, "-keyout", str(w / "server.key"),
            "-out", str(w / "server.csr"), "-subj", f"/CN={self.host}")
        (w / "san.ext").write_text(f"subjectAltName=IP:{self.host}\n", encoding="utf-8")
        run("openssl", "x509", "-req", "-in", str(w / "server.csr"), "-CA", str(w / "ca.crt"),
            "-CAkey", str(w / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(w / "san.ext"), "-out", str(w / "server.crt"))

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            log = (self.workdir / "registry.log").read_text(errors="replace")[-600:]
            raise RuntimeError(f"docker-registry exited {self.process.returncode}: {log}")
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            urllib.request.urlopen(f"https://{self.address}/v2/", context=context, timeout=2)
        except urllib.error.HTTPError as exc:
            return exc.code == 401  # up, and asking for credentials
        except OSError:
            return False
        return False

    def stop(self) -> None:
        """The process, its trust directory and its files go, whichever step fails."""
        try:
            if self.process is not None and self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(10)
        finally:
            shutil.rmtree(self.trust_dir, ignore_errors=True)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def login(self, docker_config: Path, *, docker_host: str | None = None) -> None:
        """``docker login`` into a client config of the test's own (never the user's)."""
        env = dict(os.environ, DOCKER_CONFIG=str(docker_config))
        if docker_host:
            env["DOCKER_HOST"] = docker_host
        run("docker", "login", "--username", self.username, "--password-stdin", self.address,
            stdin=self.password, env=env)


def sweep_leftovers() -> list[str]:
    """Trust directories (and their registries) of earlier runs whose test process is gone:
    a run killed before its teardown. A live run's entries are never touched."""
    removed = []
    for marker in CERTS_D.glob(f"*/{OWNER_FILE}") if CERTS_D.is_dir() else ():
        try:
            owner, registry = (int(x) for x in marker.read_text(encoding="utf-8").split())
        except (OSError, ValueError):
            continue
        if pid_alive(owner):
            continue
        try:
            command = Path(f"/proc/{registry}/cmdline").read_bytes()
        except OSError:
            command = b""
        if b"docker-registry" in command:
            with contextlib.suppress(ProcessLookupError):
                os.kill(registry, signal.SIGKILL)
        shutil.rmtree(marker.parent, ignore_errors=True)
        removed.append(marker.parent.name)
    return removed


def start_registry(workdir: Path, host: str = "127.0.0.1") -> TestRegistry:
    sweep_leftovers()
    registry = TestRegistry(host, free_port(host), workdir)
    try:
        return registry.start()
    except BaseException:
        registry.stop()
        raise


# --- engines in network namespaces, joined into a swarm -----------------------------------------


@dataclass
class Node:
    """One dockerd in its own network namespace, with its own data and exec roots."""

    name: str  # also the namespace's name
    address: str  # its veth address on the bridge
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> str:
        return f"/run/{self.name}.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        return Path(f"/var/lib/{self.name}")

    @property
    def exec_root(self) -> Path:
        return Path(f"/run/{self.name}")

    def docker(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
               timeout: float = 120) -> str:
        return run("docker", "-H", self.docker_host, *args, check=check, env=env,
                   timeout=timeout)

    def start_engine(self) -> None:
        with Path(f"/tmp/{self.name}-dockerd.log").open("wb") as log:  # Popen keeps a copy
            self.process = subprocess.Popen(
                ["nsenter", f"--net=/var/run/netns/{self.name}", "dockerd",
                 "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                 "-H", self.docker_host, "--pidfile", f"/run/{self.name}.pid",
                 "--log-level", "warn"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(f"dockerd of {self.name}", self._answers, timeout=60)

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            tail = Path(f"/tmp/{self.name}-dockerd.log").read_text(errors="replace")[-800:]
            raise RuntimeError(f"dockerd of {self.name} exited {self.process.returncode}: {tail}")
        return subprocess.run(["docker", "-H", self.docker_host, "info", "--format", "{{.ID}}"],
                              capture_output=True, timeout=10, check=False).returncode == 0

    def stop_engine(self, *, timeout: float = 30) -> None:
        """SIGTERM dockerd (its containers stop with it), as a node going away would."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class SwarmNet:
    """A bridge with an address of its own, the FORWARD rule, and one namespace per node."""

    tag: str  # short and unique: names the bridge, namespaces, veths
    subnet: int  # 10.213.<subnet>.0/24
    nodes: list[Node] = field(default_factory=list)
    _made: list[tuple[str, ...]] = field(default_factory=list)  # undo commands, newest last

    @property
    def bridge(self) -> str:
        return f"br{self.tag}"

    @property
    def gateway(self) -> str:
        return f"10.213.{self.subnet}.1"

    def _do(self, argv: tuple[str, ...], undo: tuple[str, ...] | None) -> None:
        run(*argv)
        if undo is not None:
            self._made.append(undo)

    def create(self, count: int) -> SwarmNet:
        self._do(("ip", "link", "add", self.bridge, "type", "bridge"),
                 ("ip", "link", "del", self.bridge))
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        # the host engine sets FORWARD's policy to DROP; nodes talk through the bridge
        self._do(("iptables", "-I", "FORWARD", "-i", self.bridge, "-o", self.bridge, "-j",
                  "ACCEPT"),
                 ("iptables", "-D", "FORWARD", "-i", self.bridge, "-o", self.bridge, "-j",
                  "ACCEPT"))
        for i in range(1, count + 1):
            node = Node(f"tminus-{self.tag}-n{i}", f"10.213.{self.subnet}.{10 + i}")
            self._do(("ip", "netns", "add", node.name), ("ip", "netns", "del", node.name))
            veth = f"v{self.tag}{i}"
            run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns",
                node.name)
            run("ip", "link", "set", veth, "master", self.bridge, "up")
            run("ip", "-n", node.name, "addr", "add", f"{node.address}/24", "dev", "eth0")
            run("ip", "-n", node.name, "link", "set", "eth0", "up")
            run("ip", "-n", node.name, "link", "set", "lo", "up")
            run("ip", "-n", node.name, "route", "add", "default", "via", self.gateway)
            self.nodes.append(node)
        return self

    def destroy(self) -> None:
        for node in self.nodes:
            node.stop_engine()
        for node in self.nodes:
            shutil.rmtree(node.data_root, ignore_errors=True)
            shutil.rmtree(node.exec_root, ignore_errors=True)
            for leftover in (Path(node.socket), Path(f"/run/{node.name}.pid"),
                             Path(f"/tmp/{node.name}-dockerd.log")):
                leftover.unlink(missing_ok=True)
        for undo in reversed(self._made):
            run(*undo, check=False)
        self._made.clear()


@dataclass
class Swarm:
    """A swarm over some nodes of a ``SwarmNet``: the first one is the manager."""

    nodes: list[Node]

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    def form(self) -> Swarm:
        with ThreadPoolExecutor(len(self.nodes)) as pool:  # engines start in parallel
            list(pool.map(lambda n: n.start_engine(), self.nodes))
        self.manager.docker("swarm", "init", "--advertise-addr", self.manager.address,
                            "--dispatcher-heartbeat", "1s", "--task-history-limit", "2")
        token = self.manager.docker("swarm", "join-token", "-q", "worker")
        with ThreadPoolExecutor(max(1, len(self.nodes) - 1)) as pool:
            list(pool.map(lambda n: n.docker("swarm", "join", "--token", token,
                                             "--advertise-addr", n.address,
                                             f"{self.manager.address}:2377"),
                          self.nodes[1:]))
        return self

    def node_ids(self) -> dict[str, str]:
        """node name (its namespace) → swarm node id, matched by address."""
        by_address = {}
        for line in self.manager.docker("node", "ls", "-q").split():
            addr = self.manager.docker("node", "inspect", "--format", "{{.Status.Addr}}", line)
            by_address[addr] = line
        return {n.name: by_address[n.address] for n in self.nodes if n.address in by_address}




# --- a loopback door to the entry point ----------------------------------------------------------


class Forwarder:
    """127.0.0.1:PORT → a node's entry point: the load client only ever sends load to loopback,
    and this relays it to an address of a namespace the test made. Threads, bounded by the
    load client's own limits; closed with the test."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self.server.close()
