"""HTTP probes and a bounded load client: health answers, latency percentiles, failed requests.

The deploy's waits, its post-deploy watch, the smoke test and the e2e load tests all measure
through here, so "a failed request" means the same thing everywhere: a connection error, a
timeout, or a status other than the expected one.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ops.errors import UsageError


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (what an SLA means by "p95"); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Answer:
    ok: bool
    status: int | None
    latency_ms: float
    body: dict[str, Any] | None = None
    error: str | None = None


def get(session: Any, url: str, *, timeout: float = 5.0, expect: int = 200) -> Answer:
    import requests

    started = time.perf_counter()
    try:
        response = session.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return Answer(False, None, (time.perf_counter() - started) * 1000,
                      error=type(exc).__name__)
    latency = (time.perf_counter() - started) * 1000
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = None
    return Answer(response.status_code == expect, response.status_code, latency, body)


@dataclass
class Stats:
    """Counts and latencies of a batch of requests; what the watch and load tests report."""

    total: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    version_sequence: list[str] = field(default_factory=list)

    def add(self, answer: Answer) -> None:
        self.total += 1
        self.latencies_ms.append(answer.latency_ms)
        if not answer.ok:
            self.failed += 1
            self.errors[answer.error or f"HTTP {answer.status}"] += 1
        version = (answer.body or {}).get("version")
        if isinstance(version, str):
            self.versions[version] += 1
            if not self.version_sequence or self.version_sequence[-1] != version:
                self.version_sequence.append(version)

    @property
    def error_rate(self) -> float:
        return self.failed / self.total if self.total else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies_ms, 95)

    def summary(self) -> dict[str, Any]:
        return {"requests": self.total, "failed": self.failed,
                "error_rate": round(self.error_rate, 4), "p50_ms": round(self.p50_ms, 1),
                "p95_ms": round(self.p95_ms, 1), "versions": dict(self.versions),
                "errors": dict(self.errors)}


def new_session() -> Any:
    import requests

    session = requests.Session()
    session.headers["User-Agent"] = "tminus-probe"
    return session


def sample(url: str, count: int, *, timeout: float = 5.0, pause_s: float = 0.0) -> Stats:
    """``count`` sequential GETs: the smoke test's and the baseline's latency sample."""
    stats = Stats()
    session = new_session()
    try:
        for _ in range(count):
            stats.add(get(session, url, timeout=timeout))
            if pause_s:
                time.sleep(pause_s)
    finally:
        session.close()
    return stats


def watch(url: str, seconds: float, *, interval_s: float = 0.1, timeout: float = 5.0) -> Stats:
    """Probe ``url`` continuously for ``seconds``: the post-deploy watch window."""
    stats = Stats()
    session = new_session()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            stats.add(get(session, url, timeout=timeout))
            time.sleep(interval_s)
    finally:
        session.close()
    return stats


def wait_until_ok(url: str, timeout_s: float, *, expect_status: str | None = None,
                  interval_s: float = 0.5) -> Answer:
    """Poll until ``url`` answers 200 (and ``status: expect_status`` when given), or time out."""
    session = new_session()
    deadline = time.monotonic() + timeout_s
    last = Answer(False, None, 0.0, error="not tried")
    try:
        while True:
            last = get(session, url, timeout=min(5.0, max(timeout_s, 1.0)))
            status_ok = expect_status is None or (last.body or {}).get("status") == expect_status
            if last.ok and status_ok:
                return last
            if time.monotonic() >= deadline:
                return last
            time.sleep(interval_s)
    finally:
        session.close()


def require_loopback(url: str) -> None:
    """Load is only ever generated against this machine."""
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(f"refusing to send load to {host!r}: only loopback addresses",
                         hint="point the load client at 127.0.0.1")


class LoadClient:
    """Continuous GETs from a few threads, bounded in count and time, until ``stop()``."""

    def __init__(self, url: str, *, concurrency: int = 4, max_requests: int = 200_000,
                 max_seconds: float = 600.0, timeout: float = 5.0,
                 pause_s: float = 0.005) -> None:
        require_loopback(url)
        self.url = url
        self.concurrency = concurrency
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.pause_s = pause_s
        self.stats = Stats()
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self.duration_s = 0.0

    def __enter__(self) -> LoadClient:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._started = time.monotonic()
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._loop, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self) -> None:
        session = new_session()
        deadline = self._started + self.max_seconds
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if self.stats.total >= self.max_requests:
                        return
                answer = get(session, self.url, timeout=self.timeout)
                with self._lock:
                    self.stats.add(answer)
                    if not answer.ok and len(self.failures) < 20:
                        self.failures.append(
                            f"{time.strftime('%H:%M:%S')} {answer.error or answer.status}")
                if self.pause_s:
                    time.sleep(self.pause_s)
        finally:
            session.close()

    def stop(self) -> Stats:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        self.duration_s = time.monotonic() - self._started
        return self.stats
