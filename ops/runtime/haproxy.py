"""HAProxy's stats CSV (``/stats;csv``): the entry point's own per-server counters.

Without Prometheus, the watch judges real traffic from here: every answered request is counted
per server by status class (``hrsp_5xx`` ...), with the average response time over the last 1024
requests (``rtime``, ms). ``parse_csv`` is pure; ``read_stats`` fetches.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from ops.errors import UnavailableError


class StatsUnavailable(UnavailableError):
    """The entry point's stats page does not answer."""


@dataclass(frozen=True)
class ServerStats:
    backend: str
    server: str
    address: str | None  # "172.18.0.5:8000"; None while the slot has no address
    status: str  # UP | DOWN | MAINT | no check ...
    responses: dict[str, int]  # "1xx".."5xx", "other"
    rtime_ms: int

    @property
    def ip(self) -> str | None:
        return self.address.rsplit(":", 1)[0] if self.address else None

    @property
    def total(self) -> int:
        return sum(self.responses.values())


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def parse_csv(text: str) -> list[ServerStats]:
    """The server rows (not FRONTEND/BACKEND) of a stats CSV."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise StatsUnavailable("not an HAProxy stats CSV (no '# pxname,...' header)")
    reader = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    servers = []
    for row in reader:
        name = row.get("svname") or ""
        if name in {"FRONTEND", "BACKEND"} or not name:
            continue
        classes = {c: _int(row.get(f"hrsp_{c}")) for c in ("1xx", "2xx", "3xx", "4xx", "5xx")}
        classes["other"] = _int(row.get("hrsp_other"))
        address = row.get("addr") or None
        servers.append(ServerStats(row.get("pxname") or "", name, address,
                                   row.get("status") or "", classes, _int(row.get("rtime"))))
    return servers


def read_stats(url: str, *, timeout: float = 3.0) -> list[ServerStats]:
    import requests

    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise StatsUnavailable(f"the entry point's stats at {url} do not answer "
                               f"({type(exc).__name__})",
                               hint="haproxy_stats_url: the proxy's /stats;csv") from None
    return parse_csv(response.text)


def container_addresses(client: Any, containers: list[tuple[str, str]]) -> dict[str, str]:
    """IP address → label of each (container id, label): which version a server slot of the
    proxy points at. A container gone meanwhile is left out."""
    from docker.errors import NotFound

    out: dict[str, str] = {}
    if client is None:
        return out
    for container_id, label in containers:
        try:
            attrs = client.containers.get(container_id).attrs
        except NotFound:
            continue
        for network in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).values():
            address = (network or {}).get("IPAddress")
            if address:
                out[address] = label
    return out
