"""The house rule "secrets never leave memory", in one place.

Every message, log line, dry-run line and metadata file that could show a secret shows it through
here: a value as its first characters and its length (``sk_l…(40 chars)``), a URL with its
password replaced, a driver's error text with the password cut out wherever it was echoed, a
name with its control characters escaped.

URLs are read the conservative way, because the clients that use them disagree: libpq ends the
credentials at the first ``@`` (or ``/``) and ignores ``#``; SQLAlchemy takes the password up to
the first ``@`` after the colon; redis-py (``urllib.parse``) ends the authority at the first
``/``, ``?`` or ``#`` and the credentials at the last ``@`` before it. So here everything between
``scheme://`` and the **last** ``@`` is credentials, of which only a plain username before the
first ``:`` is shown; ``password=``-style query parameters are secrets wherever they appear; and a
URL whose host part does not parse, or that has no scheme, is shown as its scheme alone
(``<unparseable postgresql URL>``) — never partly, never by crashing.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

from ops.errors import UsageError

#: Names (environment keys, settings, query parameters) whose values are secrets by nature.
SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|PWD|CREDENTIALS?|DSN|PRIVATE)",
                         re.IGNORECASE)
#: Query parameters that carry a credential (``?password=`` for libpq and redis-py,
#: ``sslpassword``, ``pass``, ``pwd``, access tokens, signatures of signed URLs).
SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|cred|private|signature",
                          re.IGNORECASE)
#: The replacement shown where a secret was.
HIDDEN = "***"
#: A driver's error line is cut to this many characters.
SUMMARY_LIMIT = 240

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]{0,31})://")
#: A username that is certainly only a username: no delimiter that could make it part of a
#: path, a query or a password in some client's reading.
_SAFE_USER = re.compile(r"[A-Za-z0-9._~%+\-]{0,128}")
_HOST = r"(?:\[[0-9A-Za-z:.%_\-]*\]|[^\s:/?#\[\]@,]*)"
_HOSTPORT = re.compile(rf"{_HOST}(?::\d{{0,5}})?(?:,{_HOST}(?::\d{{0,5}})?)*")
_PARAM = re.compile(r"[?&;#]([^=&#?;]*)=")
_NEXT_PARAM = re.compile(r"&(?=[A-Za-z_][A-Za-z0-9_.%\-]*=)")
#: Schemes whose clients may read a lone ``user@`` as the password (``redis://secret@host``).
_LONE_USERINFO_IS_SECRET = frozenset({"redis", "rediss", "valkey", "valkeys", "unix"})
#: C0 and C1 controls, DEL, and the Unicode controls that reorder or break terminal lines.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: What to do about a URL that cannot be read unambiguously.
ENCODE_HINT = ("percent-encode special characters in the user and password "
               "(@ → %40, : → %3A, / → %2F, ? → %3F, # → %23)")
#: Pieces of a secret shorter than this are not scrubbed on their own (they would garble text).
_MIN_PIECE = 4


class UnparseableURL(UsageError, ValueError):
    """A URL that cannot be read unambiguously; the message shows its scheme only.

    A ``ValueError`` too, so code that guarded ``urllib.parse``'s errors keeps working.
    """


# --- values and names ----------------------------------------------------------------------------


def mask(value: str, *, short_visible: bool = False) -> str:
    """Four characters and the length; at most 8 characters show nothing, or everything when
    ``short_visible`` (key-name segments such as ``job:42`` are ids, not secrets)."""
    if len(value) > 8:
        return f"{printable(value[:4])}…({len(value)} chars)"
    return printable(value) if short_visible else f"…({len(value)} chars)"


def printable(text: str) -> str:
    r"""``text`` with control characters and terminal escapes written as Python would
    (``\x1b``, ``\n``, ``\u202e``), so a hostile name cannot move the cursor, recolour the
    screen or hide what follows. Backslashes are left alone: paths and regexes stay readable."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def is_secret_name(name: str) -> bool:
    """A key whose value is a secret by its name: ``SECRET_KEY``, ``db_password``, ``API_TOKEN``."""
    return SECRET_NAME.search(name) is not None


# --- URLs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parts:
    """A URL cut where the most cautious client would cut it; every field is raw text."""

    scheme: str
    userinfo: str | None  # before the last "@"; None when there is no "@"
    hostport: str
    tail: str  # path, query and fragment, as written

    def user(self) -> str | None:
        """The username when it is certainly only a username, else None (show nothing)."""
        if self.userinfo is None:
            return None
        user, colon, _ = self.userinfo.partition(":")
        if not colon and self.scheme.lower() in _LONE_USERINFO_IS_SECRET:
            return None
        return user if _SAFE_USER.fullmatch(user) else None

    def has_secret_userinfo(self) -> bool:
        return self.userinfo is not None and self.userinfo != self.user()


def _parse(url: str) -> _Parts | None:
    """The URL's parts, or None when it cannot be read unambiguously (no scheme, a host part
    that is not ``host[:port][,host[:port]…]`` or ``[v6][:port]``)."""
    match = _SCHEME.match(url)
    if match is None:
        return None
    rest = url[match.end():]
    at = rest.rfind("@")
    userinfo = rest[:at] if at >= 0 else None
    after = rest[at + 1:]
    cut = next((i for i, ch in enumerate(after) if ch in "/?#"), len(after))
    hostport, tail = after[:cut], after[cut:]
    if not _HOSTPORT.fullmatch(hostport):
        return None
    if userinfo is not None and _has_secret_param(userinfo):
        return None  # `?password=a@b`: a host after that "@", or the rest of the password?
    return _Parts(match.group(1), userinfo, hostport, tail)


def _has_secret_param(text: str) -> bool:
    return any(SECRET_PARAM.search(unquote_plus(found.group(1)))
               for found in _PARAM.finditer(text))


def url_scheme(url: str) -> str | None:
    """The scheme when the value starts with one (``postgresql+psycopg``), else None."""
    match = _SCHEME.match(url)
    return match.group(1) if match else None


def is_parseable_url(url: str) -> bool:
    """Whether :func:`mask_url` can show where the URL points (else it shows only the scheme)."""
    return _parse(url) is not None


def unparseable(url: str) -> str:
    """What may be shown of a URL that cannot be read: its scheme, nothing else."""
    scheme = url_scheme(url)
    return f"<unparseable {printable(scheme)} URL>" if scheme else "<unparseable URL>"


def unparseable_reason(url: str) -> str:
    """Why a URL is shown by its scheme only, without showing any of it but the scheme."""
    scheme = url_scheme(url)
    if scheme is None:
        return "not a URL with a scheme (scheme://…): shown by its key only"
    return f"the {printable(scheme)} URL cannot be read unambiguously: shown by its scheme only"


def _masked_tail(tail: str, replacement: str | None) -> str:
    """``tail`` with the value of every credential-like parameter replaced (or the parameter
    dropped when ``replacement`` is None). A value runs to the next ``&name=``, so an unencoded
    ``&`` or ``#`` inside it stays hidden."""
    out: list[str] = []
    pos = 0
    while True:
        found = _PARAM.search(tail, pos)
        if found is None:
            break
        if not SECRET_PARAM.search(unquote_plus(found.group(1))):
            out.append(tail[pos:found.end()])
            pos = found.end()
            continue
        following = _NEXT_PARAM.search(tail, found.end())
        end = following.start() if following else len(tail)
        if replacement is None:
            out.append(tail[pos:found.start()])
            if following is not None:  # keep the delimiter the dropped parameter had
                out.append(tail[found.start()])
                end = following.end()
        else:
            out.append(tail[pos:found.end()] + replacement)
        pos = end
    out.append(tail[pos:])
    return "".join(out)


def _rebuild(parts: _Parts, userinfo: str | None, tail: str) -> str:
    credentials = f"{userinfo}@" if userinfo is not None else ""
    return f"{parts.scheme}://{credentials}{parts.hostport}{tail}"


def with_password(url: str, replacement: str | None) -> str:
    """``url`` with its password replaced by ``replacement``, or dropped when it is None — the
    one in the userinfo and any ``password=``-style query parameter alike.

    Raises ``UnparseableURL`` (a ``ValueError``) when the URL cannot be read unambiguously or
    its username is not certainly only a username: no URL is better than one that leaks.
    """
    parts = _parse(url)
    if parts is None:
        raise UnparseableURL(unparseable_reason(url), hint=ENCODE_HINT)
    userinfo = parts.userinfo
    if userinfo is not None and ":" in userinfo:
        user = userinfo.partition(":")[0]
        if not _SAFE_USER.fullmatch(user):
            raise UnparseableURL(f"the {printable(parts.scheme)} URL's username cannot be "
                                 "told apart from its password", hint=ENCODE_HINT)
        userinfo = (user or None) if replacement is None else f"{user}:{replacement}"
    return _rebuild(parts, userinfo, _masked_tail(parts.tail, replacement))


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without any credential, the decoded password the client would use or None).

    For a client tool given the password out of band (``PGPASSWORD``, a passfile): the
    userinfo password wins, else the last ``password=`` query parameter. Raises
    ``UnparseableURL`` as :func:`with_password` does.
    """
    bare = with_password(url, None)
    parts = _parse(url)
    if parts is None:  # pragma: no cover - with_password has raised already
        raise UnparseableURL(unparseable(url))
    if parts.userinfo is not None and ":" in parts.userinfo:
        return bare, unquote(parts.userinfo.partition(":")[2])
    password = None
    for found in _PARAM.finditer(parts.tail):
        if unquote_plus(found.group(1)).lower() == "password":
            following = _NEXT_PARAM.search(parts.tail, found.end())
            password = unquote(parts.tail[found.end():following.start() if following else None])
    return bare, password


def mask_url(url: str) -> str:
    """The URL with its credentials shown as ``***``: safe for messages, logs and backup.json.

    A URL that cannot be read unambiguously is shown as ``<unparseable SCHEME URL>``.
    """
    parts = _parse(url)
    if parts is None:
        return unparseable(url)
    userinfo = parts.userinfo
    if userinfo is not None:
        user = parts.user()
        if user is None:
            userinfo = HIDDEN
        elif ":" in userinfo:
            userinfo = f"{user}:{HIDDEN}"
    return printable(_rebuild(parts, userinfo, _masked_tail(parts.tail, HIDDEN)))


def describe_url(url: str) -> str:
    """Where the URL points — ``scheme://user@host:port/path`` — with no credential, query or
    fragment: for messages that name a database."""
    parts = _parse(url)
    if parts is None:
        return unparseable(url)
    path = _masked_tail(parts.tail, HIDDEN)
    path = re.split(r"[?#;]", path, maxsplit=1)[0]
    user = parts.user()
    userinfo = HIDDEN if user is None and parts.userinfo is not None else user or None
    return printable(_rebuild(parts, userinfo, path))


# --- text that may echo a secret -----------------------------------------------------------------


def secrets_of(url: str) -> set[str]:
    """Every string some client could take as the URL's secret, raw, decoded and encoded.

    Deliberately generous: each ``@`` is a possible end of the credentials (libpq and
    SQLAlchemy stop at the first, urllib at the last), ``password=`` values count to the next
    ``&`` and to the next ``&name=``, and a password's pieces between delimiters count too (libpq
    reads ``u:pa/ss@h`` as host ``u``, port ``pa``, database ``ss@h`` and may echo either).
    For a URL that cannot be parsed at all (a ``key=value`` conninfo among them) every piece of
    it counts.
    """
    match = _SCHEME.match(url)
    rest = url[match.end():] if match else url
    scheme = match.group(1).lower() if match else ""
    found: set[str] = set()
    for at, char in enumerate(rest):
        if char != "@":
            continue
        userinfo = rest[:at]
        user, colon, _ = userinfo.partition(":")
        if colon:
            # after the first ":" for most clients; after a later one when what came before
            # was a scheme without "//" (`postgresql:u:pw@h`) or a colon in the username
            found.update(userinfo[i + 1:] for i, c in enumerate(userinfo) if c == ":")
            if not _SAFE_USER.fullmatch(user):
                found.add(user)
        elif scheme in _LONE_USERINFO_IS_SECRET or not _SAFE_USER.fullmatch(userinfo):
            found.add(userinfo)
    for param in _PARAM.finditer(rest):
        if SECRET_PARAM.search(unquote_plus(param.group(1))):
            value = rest[param.end():]
            following = _NEXT_PARAM.search(rest, param.end())
            found.add(value)  # libpq: to the next "&"; urllib: to "&" or "#"; and each between
            found.update(value[:i] for i, c in enumerate(value) if c in "&#")
            if following is not None:
                found.add(rest[param.end():following.start()])
    if _parse(url) is None:
        found.add(rest)
    pieces = {p for secret in found for p in re.split(r"[/?#@:&=,\[\]\s'\"]", secret)
              if len(p) >= _MIN_PIECE}
    forms: set[str] = set()
    for secret in found | pieces:
        for form in (secret, unquote(secret), unquote_plus(secret), quote(secret, safe="")):
            forms.add(form)
            forms.add(" ".join(form.split()))
    return {form for form in forms if form.strip()}


def scrub(text: str, url: str | Iterable[str]) -> str:
    """``text`` on one line with every possible secret of the URL(s) replaced by ``***``."""
    line = " ".join(text.split())
    urls = [url] if isinstance(url, str) else list(url)
    for secret in sorted({s for u in urls for s in secrets_of(u)}, key=len, reverse=True):
        line = line.replace(secret, HIDDEN)
    return line


def summarise(text: str, url: str | Iterable[str] = (), *, limit: int = SUMMARY_LIMIT,
              default: str = "no output") -> str:
    """A driver's error text fit for a one-line message: its first non-empty line, every
    secret of the URL(s) scrubbed, control characters escaped, at most ``limit`` characters."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    line = printable(scrub(first, url)) if first else default
    return line if len(line) <= limit else line[:limit - 1] + "…"


# --- settings ------------------------------------------------------------------------------------


def looks_like_url(value: str) -> bool:
    """A value that may carry credentials the URL way: ``scheme://…`` or ``user:pw@host``."""
    return "://" in value or re.match(r"[^\s/@:]*:[^\s]*@", value) is not None


def masked_settings(data: Any, name: str = "") -> Any:
    """Plain settings data (``model_dump(mode="json")``) fit to print: a string under a
    secret-looking key is masked, a URL shows no credential, everything else as it is."""
    if isinstance(data, Mapping):
        return {key: masked_settings(value, str(key)) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [masked_settings(value, name) for value in data]
    if isinstance(data, str):
        if looks_like_url(data):
            return mask_url(data)
        if name and is_secret_name(name) and not name.endswith("_names"):
            return mask(data)
    return data


# --- logs ----------------------------------------------------------------------------------------

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s'\"<>]*")


def mask_urls_in(text: str) -> str:
    """Every ``scheme://…`` in free text (up to a space or a quote) shown by :func:`mask_url`."""
    return _URL_IN_TEXT.sub(lambda found: mask_url(found.group()), text)


def redact_log_message(message: str, *, config_dump: bool = False) -> str:
    """A log line fit to print: URLs masked; with ``config_dump`` (Invoke's ``invoke.config``
    lines, ``Per-project config file (…): {…}``) the mapping is re-read and printed through
    :func:`masked_settings`, or hidden entirely when it cannot be re-read."""
    head, sep, body = message.partition(": {")
    if not (config_dump and sep):
        return mask_urls_in(message)
    try:
        data = ast.literal_eval("{" + body)
    except Exception:  # anything that is not plain data (or too deep) stays hidden
        return f"{mask_urls_in(head)}: {{…}} (hidden: it may hold secrets)"
    return f"{mask_urls_in(head)}: {masked_settings(data)!r}"


class LogRedactor(logging.Filter):
    """Masks every record before a handler prints it.

    ``invoke --debug`` logs each configuration source it merges, ``invoke.yaml`` and
    ``INVOKE_OPS_*`` values verbatim — ``database_url`` with its password included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact_log_message(message, config_dump=record.module == "config")
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def install_log_redaction(*names: str) -> None:
    """Attach one :class:`LogRedactor` to each named logger (default: ``invoke`` and ``ops``),
    once. A logger's filter sees the records logged to it by name, which is how Invoke logs."""
    for name in names or ("invoke", "ops"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, LogRedactor) for f in logger.filters):
            logger.addFilter(LogRedactor())
