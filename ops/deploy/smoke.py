"""The smoke test: is what runs now actually serving? A Report, like predeploy's.

Four sections, each a few findings: the health endpoint (200 and the expected status), the
containers of every service (running, and healthy where they have a HEALTHCHECK), latency (p95
of N requests under the SLA), and recent logs (no line matching the error pattern).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ops.deploy.backend import backend_for
from ops.deploy.stack import Stack
from ops.report import Finding, Report, Section, failed, passed, skipped
from ops.runtime.docker_engine import container_logs
from ops.runtime.probe import get, new_session, sample

SECTIONS = (("health", "Health Endpoint"), ("containers", "Containers"),
            ("latency", "Latency"), ("logs", "Recent Logs"))


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


def smoke_test(stack: Stack, *, url: str | None = None) -> Report:
    """Run the four sections; printing is the caller's business."""
    from ops.deploy.deploy import running_version

    target = url or stack.health_url
    release = running_version(stack, stack.versioned_services()) or "unknown"
    report = Report(release=release, project=f"{stack.project} ({stack.env_name})",
                    kind="smoke")
    runners: dict[str, Callable[[], Iterable[Finding]]] = {
        "health": lambda: health_findings(stack, target),
        "containers": lambda: backend_for(stack).health(),
        "latency": lambda: latency_findings(stack, target),
        "logs": lambda: log_findings(stack)}
    started = time.perf_counter()
    for section_id, title in SECTIONS:
        begun = time.perf_counter()
        findings = list(runners[section_id]())
        report.sections.append(Section(section_id, title, findings,
                                       time.perf_counter() - begun))
    report.duration_s = time.perf_counter() - started
    return report
