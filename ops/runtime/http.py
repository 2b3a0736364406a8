"""Is a link alive? HEAD first (cheap), GET when a server refuses HEAD; short timeouts.

Used by the runbook check under ``--online``. A 429 means "alive, but slow down", so it is not a
broken link; redirects are followed; anything that never answers is broken with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

#: Statuses after which HEAD is retried as GET: servers that do not implement HEAD properly.
RETRY_WITH_GET = {403, 404, 405, 501}
USER_AGENT = "tminus-linkcheck/1 (+https://example.invalid/tminus)"


@dataclass(frozen=True)
class LinkStatus:
    url: str
    ok: bool
    status: int | None
    reason: str


def check_link(url: str, *, timeout: float = 5.0) -> LinkStatus:
    import requests

    headers = {"User-Agent": USER_AGENT}
    try:
        response = requests.head(url, allow_redirects=True, timeout=timeout, headers=headers)
        if response.status_code in RETRY_WITH_GET:
            with requests.get(url, allow_redirects=True, timeout=timeout, headers=headers,
                              stream=True) as got:
                response = got
    except requests.RequestException as exc:
        return LinkStatus(url, False, None, _reason(exc))
    code = response.status_code
    if code == 429:
        return LinkStatus(url, True, code, "rate limited (429), counted as alive")
    return LinkStatus(url, code < 400, code, f"HTTP {code}")


def check_links(urls: Iterable[str], *, timeout: float = 5.0,
                workers: int = 8) -> dict[str, LinkStatus]:
    """Each distinct URL once, several at a time (the wait is the network, not the CPU)."""
    unique = list(dict.fromkeys(urls))
    if not unique:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(unique))) as pool:
        results = pool.map(lambda u: check_link(u, timeout=timeout), unique)
        return {status.url: status for status in results}


def _reason(exc: Exception) -> str:
    import requests

    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    if isinstance(exc, requests.TooManyRedirects):
        return "too many redirects"
    return type(exc).__name__
