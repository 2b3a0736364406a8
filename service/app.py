"""The demo API: ``/health`` and ``/version`` over the standard library's HTTP server.

It has no third-party web framework on purpose, so its image needs only a Python interpreter and
the Debian packages for Postgres and Redis clients. ``/health`` really asks Postgres and Redis when
their URLs are set. ``/work`` is the "normal request" (a little simulated work, ``APP_WORK_MS``,
and a query when the database is set); ``/metrics`` exports, with ``prometheus_client``,
``http_requests_total{method,path,status,version}``, the ``http_request_duration_seconds``
histogram, ``app_db_errors_total`` and ``app_build_info{version}``, so Prometheus can tell the
replicas of two versions apart (the post-deploy watch compares them).

Demo-release flaws (build args, see the Dockerfile; the e2e specs of the watch use them):
``APP_ERROR_RATIO`` answers 500 to that share of normal requests while ``/health`` stays 200;
``APP_SLOW_FACTOR`` multiplies the work time; ``APP_DB_ERRORS`` makes the work's query fail to
connect (a wrong database address).

SIGTERM does not stop the server at once: for ``APP_DRAIN_S`` seconds ``/health`` answers 503
"draining" while every other request is still served, so the proxy's health check takes the
replica out of rotation before it stops listening; then the server stops accepting, finishes the
requests in flight and exits. That is what lets a rolling deploy remove a replica without dropping
a request.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# The image bakes TMINUS_BUILD_VERSION; APP_VERSION (e.g. from an env_file) must not mask it.
VERSION = os.environ.get("TMINUS_BUILD_VERSION") or os.environ.get("APP_VERSION", "dev")
STARTED = time.time()
DRAIN_S = float(os.environ.get("APP_DRAIN_S", "4"))
# Added latency per request: only for building a deliberately slow release (an e2e spec of the
# post-deploy watch's "p95 more than twice the baseline" rule).
SLOW_S = float(os.environ.get("APP_SLOW_MS", "0") or 0) / 1000
# 100 ms of work per normal request: a busy host adds tens of ms to every answer; against 100 ms,
# a release three times slower still shows as more than twice as slow.
WORK_S = float(os.environ.get("APP_WORK_MS", "100") or 0) / 1000
SLOW_FACTOR = float(os.environ.get("APP_SLOW_FACTOR", "1") or 1)
ERROR_RATIO = float(os.environ.get("APP_ERROR_RATIO", "0") or 0)
DB_ERRORS = bool(os.environ.get("APP_DB_ERRORS"))
draining = threading.Event()
#: Paths with their own label value; anything else is "other" (a bounded label set).
ROUTES = ("/health", "/version", "/work", "/metrics", "/")
# Fine buckets where the demo's latencies live (tens of ms), so a p95 from the histogram is close.
BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5,
           0.75, 1.0, 2.5, 5.0, 10.0)
REGISTRY = CollectorRegistry()
REQUESTS = Counter("http_requests_total", "HTTP requests answered, by route and status",
                   ["method", "path", "status", "version"], registry=REGISTRY)
DURATION = Histogram("http_request_duration_seconds", "Time to answer an HTTP request",
                     ["method", "path", "version"], buckets=BUCKETS, registry=REGISTRY)
DB_ERROR_COUNT = Counter("app_db_errors_total", "Database connection or query errors",
                         ["version"], registry=REGISTRY)
BUILD = Gauge("app_build_info", "The release this replica runs (always 1)", ["version"],
              registry=REGISTRY)
BUILD.labels(version=VERSION).set(1)
for _route in ("/work", "/version", "/"):  # series from 0, so increase() sees the first errors
    for _status in ("200", "500"):
        REQUESTS.labels("GET", _route, _status, VERSION)
    DURATION.labels("GET", _route, VERSION)
_served = itertools.count()


def check_postgres(url: str) -> str:
    query(url, "SELECT 1")
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


def flawed(ratio: float) -> bool:
    """Every request whose turn falls in ``ratio`` (deterministic: 0.2 is one request in five)."""
    if ratio <= 0:
        return False
    n = next(_served)
    return int((n + 1) * ratio) > int(n * ratio)


def work() -> tuple[int, dict[str, Any]]:
    """A normal request: some work (no query: a connection per request is not what a healthy
    release does); the database-error flaw adds the query a broken release would run."""
    time.sleep(WORK_S * SLOW_FACTOR)
    url = os.environ.get("DATABASE_URL")
    if url and DB_ERRORS:
        # A release whose database address is wrong: every query fails to connect (a client
        # error only, so the server's log stays clean for the smoke tests that read it).
        parsed = urlparse(url)
        userinfo = parsed.netloc.rpartition("@")[0]
        netloc = (f"{userinfo}@" if userinfo else "") + f"{parsed.hostname}:1"
        wrong = parsed._replace(netloc=netloc).geturl()
        try:
            query(wrong, "SELECT 1")
        except Exception as exc:  # any driver error: what a broken release's query raises
            DB_ERROR_COUNT.labels(VERSION).inc()
            return 500, {"error": f"database: {type(exc).__name__}"}
    return 200, {"done": True, "version": VERSION}


def query(url: str, sql: str) -> None:
    # psycopg2 in the Debian-based image, psycopg 3 where tminus itself runs
    try:
        driver: Any = importlib.import_module("psycopg2")
    except ImportError:
        driver = importlib.import_module("psycopg")
    with driver.connect(url, connect_timeout=2) as conn, conn.cursor() as cur:
        cur.execute(sql)
        cur.fetchone()


class Handler(BaseHTTPRequestHandler):
    server_version = "tminus-demo"
    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection must not hold up the shutdown for ever

    def do_GET(self) -> None:
        started = time.perf_counter()
        route = self.path.split("?", 1)[0]
        route = route if route in ROUTES else ("/health" if route.startswith("/health")
                                                else "other")
        if route == "/metrics":
            self.answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            return
        if SLOW_S:
            time.sleep(SLOW_S)
        if route == "/health":
            status, body = health()
        elif route == "/version":
            status, body = 200, {"version": VERSION, "hostname": socket.gethostname()}
        elif route == "/work":
            status, body = work()
        elif route == "/":
            status, body = 200, {"service": "tminus-demo", "version": VERSION}
        else:
            status, body = 404, {"error": "not found"}
        if route not in {"/health", "other"} and status == 200 and flawed(ERROR_RATIO):
            status, body = 500, {"error": "injected failure (APP_ERROR_RATIO)"}
        self.answer(status, json.dumps(body).encode(), "application/json")
        REQUESTS.labels(self.command, route, str(status), VERSION).inc()
        DURATION.labels(self.command, route, VERSION).observe(time.perf_counter() - started)

    def answer(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
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
