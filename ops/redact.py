"""The house rule "secrets never leave memory", in one place.

Every message, log line, dry-run line and metadata file that could show a secret shows it through
here: a value as its first characters and its length (``sk_l…(40 chars)``), a URL with its
password replaced, a driver's error text with the password cut out wherever it was echoed.
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit


def mask(value: str, *, short_visible: bool = False) -> str:
    """Four characters and the length; at most 8 characters show nothing, or everything when
    ``short_visible`` (key-name segments such as ``job:42`` are ids, not secrets)."""
    if len(value) > 8:
        return f"{value[:4]}…({len(value)} chars)"
    return value if short_visible else f"…({len(value)} chars)"


def with_password(url: str, replacement: str | None) -> str:
    """``url`` with its password replaced by ``replacement``, or dropped when it is None."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    secret = f":{replacement}" if replacement is not None else ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = f":{parts.port}" if _port(parts) is not None else ""
    return urlunsplit((parts.scheme, f"{user}{secret}@{host}{port}", parts.path, parts.query,
                       parts.fragment))


def mask_url(url: str) -> str:
    """The URL with its password shown as ``***``: safe for messages, logs and backup.json."""
    try:
        return with_password(url, "***")
    except ValueError:
        return "<unparseable URL>"


def scrub(text: str, url: str) -> str:
    """``text`` on one line with the URL's password (raw and decoded) removed."""
    line = " ".join(text.split())
    raw = urlsplit(url).netloc.rpartition("@")[0].partition(":")[2]
    for secret in {raw, unquote(raw)} - {""}:
        line = line.replace(secret, "***")
    return line


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None
