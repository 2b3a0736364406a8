"""The demo worker: takes jobs from the Redis list ``queue:jobs`` and records results.

A single writer on purpose: the deploy configuration marks it ``recreate``, since two versions
must not consume the same queue at once.

Metrics (``prometheus_client``, on ``WORKER_METRICS_PORT``, 9100): ``worker_jobs_processed_total``
and ``worker_jobs_failed_total`` (every job taken, and those that failed, by ``version``),
``worker_queue_length``, and the database's connection counts (``db_connections{state}``,
``db_max_connections``) read from ``pg_stat_activity`` at each scrape: the worker is the stack's
one long-lived single process, so it is the "small exporter" of the database as well.

Demo-release flaw (a build arg): ``WORKER_FAIL_RATIO`` fails that share of the jobs.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

VERSION = os.environ.get("TMINUS_BUILD_VERSION") or os.environ.get("APP_VERSION", "dev")
FAIL_RATIO = float(os.environ.get("WORKER_FAIL_RATIO", "0") or 0)
QUEUE = "queue:jobs"
stopping = threading.Event()
REGISTRY = CollectorRegistry()
PROCESSED = Counter("worker_jobs_processed_total", "Jobs taken from the queue (done or failed)",
                    ["version"], registry=REGISTRY)
FAILED = Counter("worker_jobs_failed_total", "Jobs that failed", ["version"], registry=REGISTRY)
QUEUE_LENGTH = Gauge("worker_queue_length", "Jobs waiting in the queue", registry=REGISTRY)


class DatabaseConnections(Collector):
    """``pg_stat_activity`` counts at scrape time (nothing exported when the query fails)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            driver: Any = importlib.import_module("psycopg2")
        except ImportError:
            driver = importlib.import_module("psycopg")
        try:
            with driver.connect(self.url, connect_timeout=2) as conn, conn.cursor() as cur:
                cur.execute("SELECT coalesce(state, 'other'), count(*) FROM pg_stat_activity "
                            "WHERE backend_type = 'client backend' GROUP BY 1")
                rows = cur.fetchall()
                cur.execute("SHOW max_connections")
                limit = float(cur.fetchone()[0])
        except Exception:  # the database down: no figure, rather than a wrong one
            return
        family = GaugeMetricFamily("db_connections", "Client connections to Postgres by state",
                                   labels=["state"])
        for state, count in rows:
            family.add_metric([str(state)], float(count))
        yield family
        yield GaugeMetricFamily("db_max_connections", "Postgres max_connections", value=limit)


def stop(_signum: int, _frame: object) -> None:
    stopping.set()


def failing(count: int) -> bool:
    """Whether job number ``count`` fails (deterministic: 0.5 fails every other job)."""
    return FAIL_RATIO > 0 and int((count + 1) * FAIL_RATIO) > int(count * FAIL_RATIO)


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    PROCESSED.labels(VERSION)
    FAILED.labels(VERSION)
    if os.environ.get("DATABASE_URL"):
        REGISTRY.register(DatabaseConnections(os.environ["DATABASE_URL"]))
    start_http_server(int(os.environ.get("WORKER_METRICS_PORT", "9100")), registry=REGISTRY)
    url = os.environ.get("REDIS_URL")
    client = None
    if url:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5)
    print(f"worker {VERSION} started", flush=True)
    taken = 0
    while not stopping.is_set():
        if client is None:
            time.sleep(1)
            continue
        QUEUE_LENGTH.set(client.llen(QUEUE))
        item = client.blpop([QUEUE], timeout=1)
        if item is None:
            client.set("worker:heartbeat", str(time.time()), ex=30)
            continue
        job = json.loads(item[1])
        PROCESSED.labels(VERSION).inc()
        status = "done"
        if failing(taken):
            FAILED.labels(VERSION).inc()
            status = "failed"
        taken += 1
        client.hset(f"job:{job.get('id', 'unknown')}", mapping={"status": status,
                                                                "worker": VERSION})
    print("worker stopped", flush=True)


if __name__ == "__main__":
    main()
