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

import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CERTS_D = Path("/etc/docker/certs.d")


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
        log = (self.workdir / "registry.log").open("wb")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(self.workdir / "config.yml")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.trust_dir.mkdir(parents=True, exist_ok=True)
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
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        shutil.rmtree(self.trust_dir, ignore_errors=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def login(self, docker_config: Path, *, docker_host: str | None = None) -> None:
        """``docker login`` into a client config of the test's own (never the user's)."""
        env = dict(os.environ, DOCKER_CONFIG=str(docker_config))
        if docker_host:
            env["DOCKER_HOST"] = docker_host
        run("docker", "login", "--username", self.username, "--password-stdin", self.address,
            stdin=self.password, env=env)


def start_registry(workdir: Path, host: str = "127.0.0.1") -> TestRegistry:
    registry = TestRegistry(host, free_port(host), workdir)
    try:
        return registry.start()
    except BaseException:
        registry.stop()
        raise
