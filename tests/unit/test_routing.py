"""Waiting until the entry point routes to every new replica, against a real HTTP server on
loopback that stands in for the proxy (it answers as the replicas it rotates through)."""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ops.config import EnvironmentSettings, Settings
from ops.deploy.stack import Routing, Stack, Steps, wait_routed
from ops.errors import DeployFailed
from ops.runtime.compose import Compose
from ops.runtime.process import Runner

OLD = ["a" * 12, "b" * 12]
NEW = ["c" * 12 + "0" * 52, "d" * 12 + "0" * 52]


@contextmanager
def proxy(hostnames: Sequence[str | None]) -> Iterator[str]:
    """An entry point that answers /health round-robin as ``hostnames`` (None: no hostname)."""
    turn = itertools.cycle(hostnames)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                host = next(turn)
            body = {"status": "healthy"} | ({"hostname": host} if host else {})
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()


def stack_at(tmp_path: Path, url: str) -> Stack:
    env = EnvironmentSettings.model_validate({"health_url": url})
    out = io.StringIO()
    return Stack(tmp_path, Settings(environments={"production": env}), "production", env,
                 Compose("shop-production", tmp_path / "docker-compose.yml"), None,
                 Runner(out=out), Steps(out=out))


@pytest.fixture
def both_versions() -> Iterator[str]:
    with proxy([*OLD, *(n[:12] for n in NEW)]) as url:
        yield url


def test_routing_is_done_once_every_new_replica_answered_through_the_entry_point(
        tmp_path: Path, both_versions: str) -> None:
    routing = Routing(stack_at(tmp_path, both_versions), NEW)
    try:
        for _ in range(3):
            routing.probe()
        assert not routing.done  # old, old, one new
        routing.probe()
        assert routing.identified and routing.done
    finally:
        routing.close()


def test_routing_never_counts_answers_from_old_replicas_as_the_new_ones(tmp_path: Path) -> None:
    with proxy(OLD) as url, pytest.raises(DeployFailed, match="routed to 0 of 2 new replica"):
        wait_routed(stack_at(tmp_path, url), NEW, timeout_s=0.5)


def test_answers_that_name_no_replica_fall_back_to_one_healthy_answer(tmp_path: Path) -> None:
    with proxy([None]) as url:
        routing = Routing(stack_at(tmp_path, url), NEW)
        try:
            routing.probe()
            assert routing.done and not routing.identified  # Docker's health decides then
        finally:
            routing.close()
