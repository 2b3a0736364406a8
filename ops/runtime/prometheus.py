"""Prometheus's HTTP API: instant PromQL queries, and promtool for checking config and rules.

The watch asks questions ("the 5xx share of v0.3.0's requests over the last 30 s") and needs one
number back, or "no data". ``parse_vector`` turns the API's JSON into that, apart from the HTTP
call, so the answers recorded from a real Prometheus (tests/unit/golden/) specify it.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import UnavailableError, UsageError


class PrometheusUnavailable(UnavailableError):
    """Prometheus does not answer, or answers something that is not its API."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


def parse_vector(payload: dict[str, Any]) -> list[Sample]:
    """The samples of an instant query's answer; NaN and ±Inf (0/0, an empty histogram) are
    dropped, since "no data" must not read as a figure. A scalar answer is one sample."""
    if payload.get("status") != "success":
        raise UsageError(f"Prometheus refused the query: {payload.get('errorType', '?')}: "
                         f"{payload.get('error', 'no reason given')}")
    data = payload.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    items: list[dict[str, Any]]
    if kind == "scalar":
        items = [{"metric": {}, "value": result}]
    elif kind == "vector":
        items = list(result or [])
    else:
        raise UsageError(f"Prometheus answered a {kind!r}, not an instant vector",
                         hint="a watch query must be an instant query (no [range] at the top)")
    samples = []
    for item in items:
        value = float(item["value"][1])
        if math.isfinite(value):
            samples.append(Sample({str(k): str(v) for k, v in item["metric"].items()}, value))
    return samples


def scalar(samples: list[Sample]) -> float | None:
    """One figure from a query that aggregates to one series; None when there is no data."""
    if not samples:
        return None
    return sum(s.value for s in samples)


def query(base_url: str, promql: str, *, at: float | None = None,
          timeout: float = 5.0) -> dict[str, Any]:
    """``GET /api/v1/query`` (evaluated at ``at``, a Unix time, when given): the raw JSON."""
    import requests

    params: dict[str, str] = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    url = base_url.rstrip("/") + "/api/v1/query"
    try:
        response = requests.get(url, params=params, timeout=timeout)
    except requests.RequestException as exc:
        raise PrometheusUnavailable(f"Prometheus at {base_url} does not answer "
                                    f"({type(exc).__name__})",
                                    hint="is the prometheus service running?") from None
    try:
        payload: dict[str, Any] = response.json()
    except ValueError:
        raise PrometheusUnavailable(f"{url} answered HTTP {response.status_code}, not JSON",
                                    hint="prometheus_url must be the server's base URL") from None
    return payload


def value_at(base_url: str, promql: str, *, at: float | None = None) -> float | None:
    return scalar(parse_vector(query(base_url, promql, at=at)))


def promtool() -> str | None:
    """The system's promtool (Debian's ``prometheus`` package); never one from the project."""
    return shutil.which("promtool", path="/usr/local/bin:/usr/bin:/bin")


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    output: str


def promtool_check(tool: str, what: str, path: Path, *, timeout: float = 30.0,
                   syntax_only: bool = False) -> ToolResult:
    """``promtool check config|rules PATH``: its verdict and what it said.

    ``syntax_only`` (config only) leaves out promtool's checks of the files the config names:
    a config written for the Prometheus container names them by their paths inside it.
    """
    if what not in {"config", "rules"}:
        raise ValueError(what)
    argv = [tool, "check", what, *(["--syntax-only"] if syntax_only else []), str(path)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ToolResult(False, f"promtool check {what} timed out after {timeout:g}s")
    return ToolResult(done.returncode == 0, (done.stdout + done.stderr).strip())
