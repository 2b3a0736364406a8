"""The demo API: ``/health`` and ``/version`` over the standard library's HTTP server.

It has no third-party web framework on purpose, so its image needs only a Python interpreter and
the Debian packages for Postgres and Redis clients. ``/health`` really asks Postgres and Redis when
their URLs are set.

SIGTERM does not stop the server at once: for ``APP_DRAIN_S`` seconds ``/health`` answers 503
"draining" while every other request is still served, so the proxy's health check takes the
replica out of rotation before it stops listening; then the server stops accepting, finishes the
requests in flight and exits. That is what lets a rolling deploy remove a replica without dropping
a request.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

# The image bakes TMINUS_BUILD_VERSION; APP_VERSION (e.g. from an env_file) must not mask it.
VERSION = os.environ.get("TMINUS_BUILD_VERSION") or os.environ.get("APP_VERSION", "dev")
STARTED = time.time()
DRAIN_S = float(os.environ.get("APP_DRAIN_S", "4"))
# Added latency per request: only for building a deliberately slow release (an e2e spec of the
# post-deploy watch's "p95 more than twice the baseline" rule).
SLOW_S = float(os.environ.get("APP_SLOW_MS", "0") or 0) / 1000
draining = threading.Event()


def check_postgres(url: str) -> str:
    # psycopg2 in the Debian-based image, psycopg 3 where tminus itself runs
    try:
        driver: Any = importlib.import_module("psycopg2")
    except ImportError:
        driver = importlib.import_module("psycopg")
    with driver.connect(url, connect_timeout=2) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return "ok"


def check_redis(url: str) -> str:
    """PING over a raw socket: one round trip needs no client library."""
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 2) as s:
        if parsed.password:
            s.sendall(f"AUTH {parsed.password}\r\n".encode())
            s.recv(64)
        s.sendall(b"PING\r\n")
        reply = s.recv(64)
    if not reply.startswith(b"+PONG"):
        raise RuntimeError(f"unexpected reply {reply[:20]!r}")
    return "ok"


def health() -> tuple[int, dict[str, Any]]:
    if draining.is_set():
        return 503, {"status": "draining", "version": VERSION, "hostname": socket.gethostname()}
    deps: dict[str, str] = {}
    for name, env, probe in (("postgres", "DATABASE_URL", check_postgres),
                             ("redis", "REDIS_URL", check_redis)):
        url = os.environ.get(env)
        if not url:
            continue
        try:
            deps[name] = probe(url)
        except Exception as exc:  # any failure of a dependency means "unhealthy"
            deps[name] = f"error: {type(exc).__name__}"
    if os.environ.get("APP_FORCE_UNHEALTHY"):
        deps["self"] = "error: forced unhealthy"
    healthy = all(v == "ok" for v in deps.values())
    body = {"status": "healthy" if healthy else "unhealthy", "version": VERSION,
            "uptime_s": round(time.time() - STARTED, 1), "dependencies": deps,
            "hostname": socket.gethostname()}
    return (200 if healthy else 503), body


class Handler(BaseHTTPRequestHandler):
    server_version = "tminus-demo"
    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection must not hold up the shutdown for ever

    def do_GET(self) -> None:
        if SLOW_S:
            time.sleep(SLOW_S)
        if self.path.startswith("/health"):
            status, body = health()
        elif self.path.startswith("/version"):
            status, body = 200, {"version": VERSION, "hostname": socket.gethostname()}
        elif self.path == "/":
            status, body = 200, {"service": "tminus-demo", "version": VERSION}
        else:
            status, body = 404, {"error": "not found"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if draining.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    do_HEAD = do_GET  # noqa: N815 - the stdlib's naming

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("APP_ACCESS_LOG"):
            super().log_message(format, *args)


def main() -> None:
    port = int(os.environ.get("APP_PORT", "8000"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - inside a container
    server.daemon_threads = False  # finish requests in flight on shutdown
    server.block_on_close = True

    def drain_then_stop() -> None:
        time.sleep(DRAIN_S)
        print("drained, stopping", flush=True)
        server.shutdown()

    def stop(signum: int, _frame: object) -> None:
        if draining.is_set():
            return
        draining.set()
        print(f"received signal {signum}, draining for {DRAIN_S:g}s", flush=True)
        threading.Thread(target=drain_then_stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"tminus-demo {VERSION} listening on :{port}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
