"""The post-deploy watch: the T-1 decision tree applied to the minutes after a switch.

The deploy measures a latency baseline before it switches (``measure_baseline``), then watches
the new version for a window (``post_deploy_watch``) and asks ``watch_verdict`` whether the
figures mean "roll back". Kept apart from ``deploy.py`` so the deploy procedure only decides
*when* to watch, and this module decides *how* a release is judged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ops.deploy.stack import Stack
from ops.errors import DeployFailed
from ops.runtime.process import fault_point

#: The seed's decision tree: these figures in the watch window mean "roll back".
MAX_ERROR_RATE = 0.05
MAX_P95_FACTOR = 2.0
#: Below this, a doubled p95 is noise (20 ms → 60 ms on a busy host), not a regression.
P95_FLOOR_MS = 100.0
#: Enough samples that one slow request (a cold replica, a GC pause) does not move the p95.
MIN_SAMPLES = 100
WATCH_INTERVAL_S = 0.02


def measure_baseline(stack: Stack) -> float | None:
    """The p95 before the switch: what "twice as slow" is measured against."""
    from ops.runtime.probe import sample

    if stack.dry_run:
        count = max(stack.settings.smoke.requests, MIN_SAMPLES)
        stack.steps.say(f"[dry-run] GET {stack.health_url} x {count} (latency baseline)")
        return None
    with stack.steps.step("latency baseline") as rec:
        count = max(stack.settings.smoke.requests, MIN_SAMPLES)
        stats = sample(stack.health_url, count, timeout=5)
        rec.detail = f"p95 {stats.p95_ms:.0f} ms over {stats.total} requests"
        return stats.p95_ms if stats.failed < stats.total else None



def post_deploy_watch(stack: Stack, seconds: float, baseline_p95: float | None, *,
                      skipped_why: str | None = None,
                      on_figures: Callable[[dict[str, Any]], None] | None = None
                      ) -> dict[str, Any] | None:
    """Probe the health URL for ``seconds``; DeployFailed when the decision tree says so.
    ``skipped_why``: the reason there is no baseline (the p95 rule off), kept in the figures;
    ``on_figures`` sees them before the verdict (the result of a rolled-back deploy has them)."""
    from ops.runtime.probe import watch

    if seconds <= 0:
        stack.steps.say("  post-deploy watch skipped (--watch 0)")
        return None
    if stack.dry_run:
        stack.steps.say(f"[dry-run] watch {stack.health_url} for {seconds:g}s "
                        f"(roll back on > {MAX_ERROR_RATE:.0%} errors or p95 > "
                        f"{MAX_P95_FACTOR:g}x baseline)")
        return None
    fault_point("deploy:watching")
    with stack.steps.step(f"post-deploy watch ({seconds:g}s)") as rec:
        stack.steps.waiting(f"{seconds:g}s of probes of {stack.health_url}")
        stats = watch(stack.health_url, seconds, interval_s=WATCH_INTERVAL_S)
        figures = stats.summary()
        figures["baseline_p95_ms"] = round(baseline_p95, 1) if baseline_p95 else None
        if skipped_why:
            figures["p95_rule"] = f"skipped: {skipped_why}"
        rec.detail = (f"{stats.total} requests, {stats.error_rate:.1%} errors, "
                      f"p95 {stats.p95_ms:.0f} ms"
                      + (f" (baseline {baseline_p95:.0f} ms)" if baseline_p95 else "")
                      + ("; p95 rule skipped (no baseline from a mixed stack)"
                         if skipped_why else ""))
        if on_figures is not None:
            on_figures(figures)
        verdict = watch_verdict(stats.error_rate, stats.p95_ms, baseline_p95)
        if verdict:
            raise DeployFailed(f"post-deploy watch: {verdict}")
        return figures


def watch_verdict(error_rate: float, p95_ms: float, baseline_p95: float | None) -> str | None:
    """The decision tree: a reason to roll back, or None."""
    if error_rate > MAX_ERROR_RATE:
        return f"error rate {error_rate:.1%} > {MAX_ERROR_RATE:.0%}"
    if baseline_p95 is not None:
        limit = max(MAX_P95_FACTOR * baseline_p95, P95_FLOOR_MS)
        if p95_ms > limit:
            return (f"p95 {p95_ms:.0f} ms > {MAX_P95_FACTOR:g}x baseline "
                    f"{baseline_p95:.0f} ms")
    return None
