"""The post-deploy watch: the T-1 decision tree applied to the minutes after a switch.

The deploy measures a latency baseline before it switches (``measure_baseline``), then watches
the new version (``post_deploy_watch``) and acts on the first rule breached:

- ``database_errors``: database errors over the window > 0 (3 at least) → stop, and recommend
  ``rollback --with-db`` (``action: full-rollback`` performs it: the pre-deploy backup, then
  the code; a database is restored only when configured so);
- ``worker_failures``: failed / processed jobs > 50 % → roll back the worker service only;
- ``error_rate``: 5xx / requests (not /health, /metrics) > 5 % → quick rollback;
- ``p95``: p95 latency > 2 x the baseline → quick rollback.

Where the figures come from (``figures["source"]``): with ``prometheus_url``, PromQL over the new
version's series (the ``version`` label every replica exports) against the old version's, same
queries and same window; without it, the entry point's real traffic: HAProxy's per-server
counters (``haproxy_stats_url``) grouped by the version label of the container behind each
server, and probes of every ``smoke_urls`` entry (the latency). The database and worker rules
need Prometheus; without it they are reported as not measurable, never as passed.

The watch stops as soon as a rule is breached with at least its ``min_samples`` behind the figure
(requests for the API rules, jobs for the worker rule, errors for the database rule; at the end of
the window the whole window's figures decide, however few), and keeps
its figures and the decision (rule, value, threshold, window, PromQL) on every outcome. A
versioned service that has fewer running replicas than the deploy started is a failure of the
release (a replica that dies in the watch window is the release's fault until shown otherwise),
not something to replace quietly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ops.config import WatchRule, WatchSettings
from ops.deploy.backend import backend_for
from ops.deploy.stack import Stack
from ops.deploy.strategies.plan import current_version
from ops.errors import DeployFailed, OpsError
from ops.runtime.haproxy import container_addresses, read_stats
from ops.runtime.probe import Stats, get, new_session
from ops.runtime.process import fault_point
from ops.runtime.prometheus import value_at

#: Enough samples that one slow request (a cold replica, a GC pause) does not move the p95.
MIN_SAMPLES = 100
WATCH_INTERVAL_S = 0.02
#: Not user traffic: excluded from the error rate and the latency.
NOT_TRAFFIC = "/health|/metrics"
#: Precedence when several rules breach at once: the most specific cause first (a database
#: error also shows as 5xx answers, and its remedy is not the quick rollback).
RULE_ORDER = ("database_errors", "worker_failures", "error_rate", "p95")


# --- what the watch decides ------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One rule's figure for the new version, with what it rests on."""

    rule: str
    value: float | None  # None: no data yet (or not measurable by this source)
    samples: float
    limit: float | None  # the effective threshold (for p95: ms, from the baseline)
    window: str
    query: str  # the PromQL, or how the entry point's figure was computed
    baseline: float | None = None
    note: str | None = None
    #: the median beside a p95 from probes: what a short window's verdict also has to show
    typical: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("value", "samples", "limit", "baseline", "typical"):
            if isinstance(out[key], float):
                out[key] = round(out[key], 4)
        return out


@dataclass(frozen=True)
class Decision:
    rule: str
    action: str
    value: float
    limit: float
    samples: float
    window: str
    query: str
    after_s: float
    at: float = 0.0  # wall-clock time of the decision (what PromQL's ``time=`` would replay)

    def explain(self) -> str:
        return (f"{self.rule} {shown(self.rule, self.value)} > {shown(self.rule, self.limit)} "
                f"over {self.window} "
                f"({self.samples:.0f} samples, after {self.after_s:.1f}s) → {self.action}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(value=round(self.value, 4), limit=round(self.limit, 4),
                   samples=round(self.samples, 1), after_s=round(self.after_s, 2),
                   at=round(self.at, 3),
                   explanation=self.explain())
        return out


def shown(rule: str, value: float) -> str:
    """A rule's figure as a person reads it: a share, milliseconds or a count."""
    if rule in {"error_rate", "worker_failures"}:
        return f"{value:.1%}"
    if rule == "p95":
        return f"{value:.0f} ms"
    return f"{value:g}"


class WatchBreached(DeployFailed):
    """A rule of the decision tree was breached; ``decision`` says which and what to do."""

    def __init__(self, decision: Decision, *, service: str | None = None) -> None:
        super().__init__(f"post-deploy watch: {decision.explain()}")
        self.decision = decision
        self.service = service  # rollback-service: the one service to roll back


def judge(measurements: dict[str, Measurement], settings: WatchSettings, *,
          after_s: float, final: bool = False) -> Decision | None:
    """The first rule (in ``RULE_ORDER``) breached, or None. Before the window ends a rule
    decides only with ``min_samples`` behind its figure (stopping early on three requests would
    be noise); at the end of the window the figures of the whole window decide, as few as
    they are (a slow release sends few requests through in a short window) -- but a latency
    figure on fewer than ``min_samples`` requests is one or two of them (a cold replica's first
    answer, a busy host's pause), so it decides only when the median of its slowest URL is past
    the limit too: a release that is slow is slow for the typical request."""
    for name in RULE_ORDER:
        rule: WatchRule = getattr(settings, name)
        found = measurements.get(name)
        if not rule.enabled or found is None or found.value is None or found.limit is None:
            continue
        few = found.samples < rule.min_samples
        if few and not final:
            continue
        if few and found.typical is not None and found.typical <= found.limit:
            continue
        if found.samples >= 1 and found.value > found.limit:
            return Decision(name, rule.action, found.value, found.limit, found.samples,
                            found.window, found.query, after_s, time.time())
    return None


def p95_limit(baseline_ms: float | None, settings: WatchSettings) -> float | None:
    if baseline_ms is None:
        return None
    return max(settings.p95.threshold * baseline_ms, settings.p95_floor_ms)


def promql(rule: str, version: str, window: str) -> tuple[str, str]:
    """(figure, samples) queries of ``rule`` for ``version``'s series over ``window``."""
    v = version.replace("\\", "\\\\").replace('"', '\\"')
    traffic = f'version="{v}", path!~"{NOT_TRAFFIC}"'
    requests = f"sum(increase(http_requests_total{{{traffic}}}[{window}]))"
    if rule == "error_rate":
        return (f'(sum(rate(http_requests_total{{{traffic}, status=~"5.."}}[{window}])) '
                f"or vector(0)) / sum(rate(http_requests_total{{{traffic}}}[{window}]))",
                requests)
    if rule == "p95":
        return ("histogram_quantile(0.95, sum by (le) "
                f"(rate(http_request_duration_seconds_bucket{{{traffic}}}[{window}]))) * 1000",
                requests)
    if rule == "worker_failures":
        jobs = f'version="{v}"'
        return (f"(sum(rate(worker_jobs_failed_total{{{jobs}}}[{window}])) or vector(0)) "
                f"/ sum(rate(worker_jobs_processed_total{{{jobs}}}[{window}]))",
                f"sum(increase(worker_jobs_processed_total{{{jobs}}}[{window}]))")
    if rule == "database_errors":
        errors = f'sum(increase(app_db_errors_total{{version="{v}"}}[{window}])) or vector(0)'
        return errors, errors
    raise ValueError(rule)


def rule_query(rule: str, configured: WatchRule, version: str) -> tuple[str, str]:
    figure, samples = promql(rule, version, configured.window)
    if configured.query:
        figure = configured.query.replace("{version}", version).replace(
            "{window}", configured.window)
    return figure, samples


class PrometheusSource:
    """The new version's figures from PromQL; the old version's p95 (same query, same window)
    is the baseline."""

    name = "prometheus"

    def __init__(self, url: str, settings: WatchSettings, version: str) -> None:
        self.url = url
        self.settings = settings
        self.version = version

    def figure(self, rule: str, version: str, at: float | None = None) -> tuple[
            float | None, float, str]:
        configured: WatchRule = getattr(self.settings, rule)
        figure_q, samples_q = rule_query(rule, configured, version)
        value = value_at(self.url, figure_q, at=at)
        samples = value_at(self.url, samples_q, at=at) or 0.0
        return value, samples, figure_q

    def measure(self, baseline_p95: float | None) -> dict[str, Measurement]:
        out = {}
        for rule in RULE_ORDER:
            configured: WatchRule = getattr(self.settings, rule)
            if not configured.enabled:
                continue
            value, samples, query = self.figure(rule, self.version)
            if rule == "p95":
                limit = p95_limit(baseline_p95, self.settings)
                note = None if limit is not None else "no baseline: rule not applied"
            else:
                limit, note = configured.threshold, None
            out[rule] = Measurement(rule, value, samples, limit, configured.window, query,
                                    baseline_p95 if rule == "p95" else None, note)
        return out


# --- the entry point's view (no Prometheus) ------------------------------------------------------


@dataclass
class EntryPointSource:
    """HAProxy's per-server counters since the watch began, for the servers whose container
    runs the new version, plus the probes' latency."""

    stack: Stack
    settings: WatchSettings
    version: str
    stats_url: str | None
    start: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    name: str = "entrypoint"

    def begin(self) -> None:
        if self.stats_url:
            self.start = {(s.backend, s.server): dict(s.responses)
                          for s in read_stats(self.stats_url)}
        else:
            self.name = "probes"

    def counters(self) -> tuple[float, float, dict[str, dict[str, int]]]:
        """(5xx, answered) of the new version's servers since ``begin``, and per version."""
        stats_url = self.stats_url or ""
        running = [c for s in self.stack.versioned_services() for c in self.stack.running(s)]
        versions = container_addresses(self.stack.client,
                                       [(c.id, c.version or "?") for c in running])
        # Without addresses in the CSV (no `stats show-legends`), a server is still known when
        # every running replica carries one version: after the switch, the new one.
        only = {c.version for c in running}
        unnamed = (only.pop() or "?") if len(only) == 1 else "unknown (no address)"
        by_version: dict[str, dict[str, int]] = {}
        for server in read_stats(stats_url):
            before = self.start.get((server.backend, server.server), {})
            delta = {k: v - before.get(k, 0) for k, v in server.responses.items()}
            if sum(delta.values()) <= 0:
                continue
            version = (versions.get(server.ip, "unknown (gone)") if server.ip else unnamed)
            into = by_version.setdefault(version, {"5xx": 0, "total": 0})
            into["5xx"] += max(delta["5xx"], 0)
            into["total"] += max(sum(delta.values()), 0)
        mine = by_version.get(self.version, {"5xx": 0, "total": 0})
        return float(mine["5xx"]), float(mine["total"]), by_version

    def measure(self, baseline_p95: float | None, probes: Any,
                typical: float | None = None) -> dict[str, Measurement]:
        """``typical``: the median of the slowest probed URL (what a short window's p95
        verdict also has to show)."""
        window = "the watch so far"
        out: dict[str, Measurement] = {}
        if self.stats_url:
            errors, total, by_version = self.counters()
            out["error_rate"] = Measurement(
                "error_rate", errors / total if total else None, total,
                self.settings.error_rate.threshold, window,
                f"haproxy {self.stats_url}: Δhrsp_5xx / Δresponses of the servers whose "
                f"container runs {self.version}", note=f"by version: {by_version}")
        else:
            out["error_rate"] = Measurement(
                "error_rate", probes.error_rate if probes.total else None, probes.total,
                self.settings.error_rate.threshold, window,
                "probes of smoke_urls: failed / sent")
        out["p95"] = Measurement(
            "p95", probes.p95_ms if probes.total else None, probes.total,
            p95_limit(baseline_p95, self.settings), window,
            "probes of smoke_urls through the entry point: nearest-rank p95", baseline_p95,
            None if baseline_p95 is not None else "no baseline: rule not applied",
            typical=typical)
        for rule in ("worker_failures", "database_errors"):
            out[rule] = Measurement(rule, None, 0, None, window, "",
                                    note="needs prometheus_url: not measured")
        return out


# --- the baseline and the watch ------------------------------------------------------------------


def probe_urls(stack: Stack) -> list[str]:
    """What the watch and the baseline probe: every smoke URL, else the health URL."""
    return [str(u) for u in stack.env.smoke_urls] or [stack.health_url]


def measure_baseline(stack: Stack) -> float | None:
    """The p95 before the switch: what "twice as slow" is measured against. With Prometheus,
    the old version's p95 from the same PromQL and window as the watch's (when the window has
    too few requests, the smoke URLs are probed first to give it some); else probes of the
    smoke URLs, as the watch will probe them, counting only answers of the running version
    (the deploy measures while the new replicas start, and the proxy routes to a replica as
    soon as its health check passes)."""
    urls = probe_urls(stack)
    count = max(stack.settings.smoke.requests, MIN_SAMPLES)
    if stack.dry_run:
        stack.steps.say(f"[dry-run] GET {', '.join(urls)} x {count} (latency baseline)")
        return None
    backend = backend_for(stack)
    old = next((v for s in stack.versioned_services()
                if (v := current_version(backend.replicas(s)))), None)
    with stack.steps.step("latency baseline") as rec:
        if stack.env.prometheus_url is None:
            # one request at a time, as the watch probes: concurrent probes on a small host
            # measure their own queueing, and an inflated baseline hides a slow release
            stats, other = probe_sample(urls, count, version=old, concurrency=1)
            rec.detail = (f"p95 {stats.p95_ms:.0f} ms over {stats.total} requests"
                          + (f" of {old} ({other} answered by another version left out)"
                             if other else ""))
            return stats.p95_ms if stats.total and stats.failed < stats.total else None
        if old is None:
            return None
        source = PrometheusSource(str(stack.env.prometheus_url), stack.env.watch, old)
        window = stack.env.watch.p95.window
        try:
            value, samples, _query = source.figure("p95", old)
            if value is None or samples < stack.env.watch.p95.min_samples:
                probe_sample(urls, count, version=old)
                time.sleep(2 * stack.env.watch.interval_s)  # let a scrape see the probes
                value, samples, _query = source.figure("p95", old)
        except OpsError as exc:
            rec.detail = f"Prometheus: {exc.message}"
            return None
        rec.detail = (f"p95 {value:.0f} ms of {old} over {window} ({samples:.0f} requests, "
                      "Prometheus)" if value is not None else
                      f"no {old} latency in Prometheus over {window}")
        return value


def probe_sample(urls: list[str], count: int, *, version: str | None,
                 concurrency: int = 4) -> tuple[Any, int]:
    """``count`` GETs shared among ``urls`` from a few threads (a baseline of 100 requests of a
    100 ms page takes 3 s, not 10): the Stats of the answers of ``version`` (an answer whose
    JSON names another version is left out; one that names none counts), and how many were
    left out."""
    from concurrent.futures import ThreadPoolExecutor

    def run(share: int, offset: int) -> list[Any]:
        session = new_session()
        try:
            return [get(session, urls[(offset + i) % len(urls)], timeout=5)
                    for i in range(share)]
        finally:
            session.close()

    workers = max(1, min(concurrency, count))
    shares = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        answers = [a for batch in pool.map(run, shares, range(workers)) for a in batch]
    stats, other = Stats(), 0
    for answer in answers:
        said = (answer.body or {}).get("version")
        if version and isinstance(said, str) and said != version:
            other += 1
            continue
        stats.add(answer)
    return stats, other


def post_deploy_watch(stack: Stack, seconds: float, baseline_p95: float | None, *,
                      skipped_why: str | None = None,
                      on_figures: Callable[[dict[str, Any]], None] | None = None,
                      version: str | None = None, replicas: dict[str, int] | None = None
                      ) -> dict[str, Any] | None:
    """Watch the new ``version`` for up to ``seconds``; WatchBreached (a DeployFailed) as soon
    as a rule is breached. ``skipped_why``: the reason there is no baseline (the p95 rule off);
    ``on_figures`` sees the figures at every evaluation and at the end (the result of a
    rolled-back deploy has them); ``replicas``: the ready replicas each service must keep."""
    settings = stack.env.watch
    urls = probe_urls(stack)
    if seconds <= 0:
        stack.steps.say("  post-deploy watch skipped (--watch 0)")
        return None
    source_name = "prometheus" if stack.env.prometheus_url else (
        "entrypoint" if stack.env.haproxy_stats_url else "probes")
    if stack.dry_run:
        stack.steps.say(f"[dry-run] watch {', '.join(urls)} for {seconds:g}s from {source_name} "
                        f"(roll back on > {settings.error_rate.threshold:.0%} errors or p95 > "
                        f"{settings.p95.threshold:g}x baseline)")
        return None
    version = version or _running_new_version(stack)
    fault_point("deploy:watching")
    # the replicas the watch begins with, before it says it began: one lost after is seen
    at_start = running_replicas(stack, replicas or {})
    with stack.steps.step(f"post-deploy watch ({seconds:g}s, {source_name})") as rec:
        stack.steps.waiting(f"{seconds:g}s of {', '.join(urls)}; judged from {source_name}")
        figures, decision = watch_loop(stack, seconds, baseline_p95, version, source_name,
                                       skipped_why=skipped_why, on_figures=on_figures,
                                       replicas=replicas or {}, at_start=at_start)
        rec.detail = summary_line(figures)
        if decision is not None:
            figures["decision"] = decision.to_dict()
            if on_figures is not None:
                on_figures(figures)
            if decision.action != "warn":
                service = (settings.worker_service if decision.action == "rollback-service"
                           else None)
                raise WatchBreached(decision, service=service)
            stack.steps.say(f"  warning: {decision.explain()}")
        if figures.get("lost_replicas"):
            raise DeployFailed("post-deploy watch: a replica was lost: "
                               + "; ".join(figures["lost_replicas"])
                               + " (judged a failure of the release, not replaced)")
        return figures


def slowest_median(by_url: dict[str, Stats]) -> float | None:
    """The largest per-URL median: with a fast and a slow smoke URL, the slow one's requests
    are the typical ones of the release's slowness (a median over both would hide it)."""
    medians = [stats.p50_ms for stats in by_url.values() if stats.total]
    return max(medians) if medians else None


def watch_loop(stack: Stack, seconds: float, baseline_p95: float | None, version: str,
               source_name: str, *, skipped_why: str | None,
               on_figures: Callable[[dict[str, Any]], None] | None,
               replicas: dict[str, int], at_start: dict[str, dict[str, str | None]]
               ) -> tuple[dict[str, Any], Decision | None]:
    """Probe the URLs continuously; every ``interval_s`` measure, judge and report. Ends at the
    first breach, a lost replica, or the end of the window."""
    settings = stack.env.watch
    urls = probe_urls(stack)
    prom = (PrometheusSource(str(stack.env.prometheus_url), settings, version)
            if stack.env.prometheus_url else None)
    entry = EntryPointSource(stack, settings, version,
                             str(stack.env.haproxy_stats_url)
                             if stack.env.haproxy_stats_url else None)
    if prom is None:
        entry.begin()
    probes = Stats()
    by_url = {url: Stats() for url in urls}
    session = new_session()
    started = last_eval = time.monotonic()
    figures: dict[str, Any] = {}
    try:
        while True:
            for url in urls:
                answer = get(session, url, timeout=5)
                probes.add(answer)
                by_url[url].add(answer)
            now = time.monotonic()
            ended = now - started >= seconds
            if now - last_eval >= settings.interval_s or ended:
                last_eval = now
                measured = (prom.measure(baseline_p95) if prom is not None
                            else entry.measure(baseline_p95, probes, slowest_median(by_url)))
                lost = lost_replicas(stack, replicas, at_start)
                figures = watch_figures(source_name, version, probes, measured, baseline_p95,
                                        skipped_why, now - started, lost)
                decision = judge(measured, settings, after_s=now - started, final=ended)
                if on_figures is not None:
                    on_figures(figures)
                if decision is not None or lost or ended:
                    return figures, decision
            time.sleep(WATCH_INTERVAL_S)
    finally:
        session.close()


def _running_new_version(stack: Stack) -> str:
    backend = backend_for(stack)
    for service in stack.versioned_services():
        found = current_version(backend.replicas(service))
        if found:
            return str(found)
    return "unknown"


def running_replicas(stack: Stack, services: Iterable[str]) -> dict[str, dict[str, str | None]]:
    """service → {replica id: when it started}, for the replicas running now."""
    backend = backend_for(stack)
    return {service: {r.id: r.started_at for r in backend.replicas(service)
                      if r.status == "running"}
            for service in services}


def lost_replicas(stack: Stack, expected: dict[str, int],
                  at_start: dict[str, dict[str, str | None]]) -> list[str]:
    """What happened to the replicas the watch began with: "app: 2 of 3 running", "app:
    tminus_app_4 restarted". Running, not healthy: a health check that times out once on a
    busy host is the health check's business (the proxy stops routing to it); a replica that
    exited, or crashed and was restarted by a restart policy, is lost -- the release's fault
    until shown otherwise."""
    lost = []
    now = running_replicas(stack, expected)
    for service, count in expected.items():
        running = now.get(service, {})
        if len(running) < count:
            lost.append(f"{service}: {len(running)} of {count} running")
        restarted = [rid[:12] for rid, started in at_start.get(service, {}).items()
                     if rid in running and started and running[rid] != started]
        if restarted:
            lost.append(f"{service}: {', '.join(restarted)} restarted (its process exited)")
    return lost


def watch_figures(source: str, version: str, probes: Any, measured: dict[str, Measurement],
                  baseline_p95: float | None, skipped_why: str | None, elapsed: float,
                  lost: list[str]) -> dict[str, Any]:
    figures: dict[str, Any] = probes.summary()
    figures.update(source=source, version=version, elapsed_s=round(elapsed, 2),
                   baseline_p95_ms=round(baseline_p95, 1) if baseline_p95 else None,
                   rules={name: m.to_dict() for name, m in measured.items()})
    if skipped_why:
        figures["p95_rule"] = f"skipped: {skipped_why}"
    if lost:
        figures["lost_replicas"] = lost
    return figures


def summary_line(figures: dict[str, Any]) -> str:
    rules = figures.get("rules", {})
    parts = [f"{figures.get('requests', 0)} probes"]
    error = rules.get("error_rate", {})
    if error.get("value") is not None:
        parts.append(f"error rate {error['value']:.1%} over {error['samples']:.0f} requests")
    p95 = rules.get("p95", {})
    if p95.get("value") is not None:
        parts.append(f"p95 {p95['value']:.0f} ms"
                     + (f" (baseline {p95['baseline']:.0f} ms)" if p95.get("baseline") else ""))
    if figures.get("p95_rule"):
        parts.append("p95 rule skipped (no baseline from a mixed stack)")
    return ", ".join(parts) + f" [{figures.get('source')}]"
