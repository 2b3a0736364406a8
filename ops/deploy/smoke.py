"""The smoke test: is what runs now actually serving? A Report, like predeploy's.

Six sections, each a few findings: the health endpoint (200 and the expected status), the
containers of every service (running, and healthy where they have a HEALTHCHECK), latency (p95
of N requests under the SLA), recent logs (no line matching the error pattern), real traffic
(every ``smoke_urls`` entry answers 200, and the entry point's error rate over a short window:
HAProxy's own 5xx counters when ``haproxy_stats_url`` is set, else the probes'), and the T-1
document's metrics summary from Prometheus (request rate, error rate, p95, worker queue,
database connections) when ``prometheus_url`` is set.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from ops.deploy.backend import backend_for
from ops.deploy.deploy import running_version
from ops.deploy.stack import Stack
from ops.errors import OpsError
from ops.report import Finding, Report, Section, failed, passed, skipped
from ops.runtime.docker_engine import container_logs
from ops.runtime.haproxy import read_stats
from ops.runtime.probe import Stats, get, new_session, sample
from ops.runtime.prometheus import value_at

SECTIONS = (("health", "Health Endpoint"), ("containers", "Containers"),
            ("latency", "Latency"), ("logs", "Recent Logs"), ("traffic", "Real Traffic"),
            ("metrics", "Metrics Summary"))
NOT_TRAFFIC = 'path!~"/health|/metrics"'
#: The T-1 runbook's key queries over the whole service (every version); {w} is the window.
SUMMARY_QUERIES = {
    "request_rate": f"sum(rate(http_requests_total{{{NOT_TRAFFIC}}}[{{w}}]))",
    "error_rate": (f'(sum(rate(http_requests_total{{{NOT_TRAFFIC}, status=~"5.."}}[{{w}}])) '
                   f"or vector(0)) / sum(rate(http_requests_total{{{NOT_TRAFFIC}}}[{{w}}]))"),
    "p95_ms": ("histogram_quantile(0.95, sum by (le) "
               f"(rate(http_request_duration_seconds_bucket{{{NOT_TRAFFIC}}}[{{w}}]))) * 1000"),
    "worker_queue": "max(worker_queue_length)",
    "db_connections": "sum(db_connections)",
}
UNITS = {"request_rate": "req/s", "error_rate": "", "p95_ms": "ms", "worker_queue": "jobs",
         "db_connections": "connections"}


def health_findings(stack: Stack, url: str) -> Iterator[Finding]:
    expect = stack.settings.smoke.expect_status
    session = new_session()
    try:
        answer = get(session, url, timeout=5)
    finally:
        session.close()
    if answer.status is None:
        yield failed("smoke.health", f"{url} does not answer ({answer.error})",
                     hint="is the entry point (proxy) running? docker compose ps")
        return
    status = (answer.body or {}).get("status")
    version = (answer.body or {}).get("version")
    if answer.status == 200 and status == expect:
        yield passed("smoke.health", f"{url} → 200, status {status!r}"
                     + (f", version {version}" if version else ""),
                     detail={"latency_ms": round(answer.latency_ms, 1), "version": version})
    else:
        deps = (answer.body or {}).get("dependencies")
        yield failed("smoke.health", f"{url} → {answer.status}, status {status!r} "
                     f"(expected 200 and {expect!r})",
                     hint=f"dependencies: {deps}" if deps else None)


def latency_findings(stack: Stack, url: str) -> Iterator[Finding]:
    count, limit = stack.settings.smoke.requests, stack.settings.smoke.p95_ms
    stats = sample(url, count, timeout=5)
    detail: dict[str, Any] = stats.summary()
    if stats.failed:
        yield failed("smoke.latency", f"{stats.failed} of {stats.total} requests failed",
                     detail=detail)
    elif stats.p95_ms > limit:
        yield failed("smoke.latency", f"p95 {stats.p95_ms:.0f} ms over {count} requests "
                     f"> SLA {limit:g} ms", detail=detail)
    else:
        yield passed("smoke.latency", f"p95 {stats.p95_ms:.0f} ms over {count} requests "
                     f"(SLA {limit:g} ms)", detail=detail)


def log_findings(stack: Stack) -> Iterator[Finding]:
    if stack.client is None:
        yield skipped("smoke.logs", "no Docker engine answers")
        return
    window = stack.settings.smoke.log_window_s
    pattern = re.compile(stack.settings.smoke.error_pattern)
    hits: list[str] = []
    running = stack.containers()
    if not running:
        yield skipped("smoke.logs", f"no container of project {stack.project} runs: no log to read")
        return
    for container in running:
        for line in container_logs(stack.client, container.id, since_s=window).splitlines():
            if pattern.search(line):
                hits.append(f"{container.name}: {line.strip()[:160]}")
    minutes = f"{window / 60:g} min"
    if hits:
        yield failed("smoke.logs", f"{len(hits)} line(s) match {pattern.pattern!r} in the last "
                     f"{minutes}", hint=hits[0], detail={"lines": hits[:20]})
    else:
        yield passed("smoke.logs", f"no line matches {pattern.pattern!r} in the last {minutes} "
                     f"of {len(running)} container(s)")


def traffic_findings(stack: Stack) -> Iterator[Finding]:
    """Every smoke URL answers 200; the entry point's error rate over a short window."""
    urls = [str(u) for u in stack.env.smoke_urls]
    conf = stack.settings.smoke
    stats_url = str(stack.env.haproxy_stats_url) if stack.env.haproxy_stats_url else None
    if not urls:
        yield skipped("smoke.smoke_urls", "no smoke_urls configured for this environment")
        if not stats_url:
            yield skipped("smoke.error_rate", "neither smoke_urls nor haproxy_stats_url: only "
                          "/health is probed (the latency section)")
            return
    before = {(s.backend, s.server): s.responses for s in read_stats(stats_url)} \
        if stats_url else {}
    probes: dict[str, Stats] = {u: Stats() for u in urls or [stack.health_url]}
    session = new_session()
    deadline = time.monotonic() + conf.traffic_window_s
    try:
        while time.monotonic() < deadline:
            for url, stats in probes.items():
                stats.add(get(session, url, timeout=5))
            time.sleep(0.02)
    finally:
        session.close()
    if urls:
        bad = {u: s for u, s in probes.items() if s.failed}
        if bad:
            yield failed("smoke.smoke_urls", "; ".join(
                f"{u}: {s.failed} of {s.total} failed ({', '.join(s.errors)})"
                for u, s in bad.items()),
                detail={u: s.summary() for u, s in probes.items()})
        else:
            yield passed("smoke.smoke_urls", f"{len(urls)} URL(s) answer 200 "
                         f"({sum(s.total for s in probes.values())} requests)",
                         detail={u: s.summary() for u, s in probes.items()})
    yield error_rate_finding(stack, stats_url, before, probes)


def error_rate_finding(stack: Stack, stats_url: str | None,
                       before: dict[tuple[str, str], dict[str, int]],
                       probes: dict[str, Any]) -> Finding:
    """The entry point's error rate since ``before`` (its counters), else the probes'."""
    conf = stack.settings.smoke
    if stats_url:
        errors = total = 0
        for server in read_stats(stats_url):
            was = before.get((server.backend, server.server), {})
            errors += server.responses["5xx"] - was.get("5xx", 0)
            total += server.total - sum(was.values())
        source = f"entry point counters ({stats_url})"
    else:
        errors = sum(s.failed for s in probes.values())
        total = sum(s.total for s in probes.values())
        source = "probes (no haproxy_stats_url)"
    rate = errors / total if total else 0.0
    text = (f"{rate:.1%} errors over {total} requests in {conf.traffic_window_s:g}s "
            f"from {source}")
    detail = {"errors": errors, "requests": total, "error_rate": round(rate, 4)}
    if rate > conf.max_error_rate:
        return failed("smoke.error_rate", f"{text} > {conf.max_error_rate:.0%}", detail=detail)
    return passed("smoke.error_rate", text, detail=detail)


def metrics_summary(prometheus_url: str, window: str) -> dict[str, dict[str, Any]]:
    """The T-1 runbook's key figures now: {name: {"value", "unit", "query"}}; value None when
    Prometheus has no data for it."""
    out: dict[str, dict[str, Any]] = {}
    for name, template in SUMMARY_QUERIES.items():
        promql = template.replace("{w}", window)
        value = value_at(prometheus_url, promql)
        out[name] = {"value": None if value is None else round(value, 4), "unit": UNITS[name],
                     "query": promql}
    return out


def metrics_table(summary: dict[str, dict[str, Any]]) -> str:
    """The summary as a table a person reads (the PromQL stays in the JSON)."""
    from tabulate import tabulate

    def shown(name: str, value: float | None) -> str:
        if value is None:
            return "no data"
        if name == "error_rate":
            return f"{value:.2%}"
        return f"{value:,.1f} {UNITS[name]}".strip()

    return tabulate([(name, shown(name, row["value"])) for name, row in summary.items()],
                    headers=["metric", "value"])


def metrics_findings(stack: Stack) -> Iterator[Finding]:
    if stack.env.prometheus_url is None:
        yield skipped("smoke.metrics", "no prometheus_url configured for this environment")
        return
    window = stack.env.watch.error_rate.window
    try:
        summary = metrics_summary(str(stack.env.prometheus_url), window)
    except OpsError as exc:
        yield failed("smoke.metrics", exc.message, hint=exc.hint)
        return
    line = ", ".join(f"{k} {v['value']}" for k, v in summary.items())
    yield passed("smoke.metrics", f"over {window}: {line}", detail={"summary": summary,
                                                                  "window": window})


def smoke_test(stack: Stack, *, url: str | None = None) -> Report:
    """Run the six sections; printing is the caller's business."""
    target = url or stack.health_url
    release = running_version(stack, stack.versioned_services()) or "unknown"
    report = Report(release=release, project=f"{stack.project} ({stack.env_name})",
                    kind="smoke")
    runners: dict[str, Callable[[], Iterable[Finding]]] = {
        "health": lambda: health_findings(stack, target),
        "containers": lambda: backend_for(stack).health(),
        "latency": lambda: latency_findings(stack, target),
        "logs": lambda: log_findings(stack),
        "traffic": lambda: traffic_findings(stack),
        "metrics": lambda: metrics_findings(stack)}
    started = time.perf_counter()
    for section_id, title in SECTIONS:
        begun = time.perf_counter()
        findings = list(runners[section_id]())
        report.sections.append(Section(section_id, title, findings,
                                       time.perf_counter() - begun))
    report.duration_s = time.perf_counter() - started
    return report


def print_metrics_table(report: Report, stream: TextIO | None = None) -> None:
    """The metrics summary's table under the report (nothing when Prometheus gave none)."""
    found = next((f for f in report.findings() if f.id == "smoke.metrics" and f.detail), None)
    if found is None or not isinstance(found.detail, dict):
        return
    out = stream or sys.stdout
    out.write(f"\nMetrics summary (Prometheus, last {found.detail['window']}):\n")
    out.write(metrics_table(found.detail["summary"]) + "\n")
