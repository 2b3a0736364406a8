"""Release versions: ``vMAJOR.MINOR.PATCH`` with an optional SemVer pre-release.

Every task validates its version here before it does anything else, so that ``v1.2.3;rm -rf /``
never reaches git, docker or a file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from ops.errors import UsageError

_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_PATTERN = re.compile(
    r"v(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
)


@total_ordering
@dataclass(frozen=True)
class ReleaseVersion:
    """A parsed release tag, ordered by SemVer 2.0 precedence."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        core = f"v{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(self.pre)}" if self.pre else core

    def __str__(self) -> str:
        return self.tag

    def _key(self) -> tuple[object, ...]:
        # SemVer 11.4: a release outranks its pre-releases; numeric identifiers sort below
        # alphanumeric ones and compare numerically.
        pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre_key)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ReleaseVersion):
            return NotImplemented
        return self._key() < other._key()


def is_release_tag(text: str) -> bool:
    return _PATTERN.fullmatch(text) is not None


def version_of_tag(name: str) -> ReleaseVersion | None:
    """The version an existing tag names, with or without the ``v`` (``0.12.0``, ``v2.0.0``),
    also in the short forms ``v0.23`` (0.23.0) and ``v20241220`` (20241220.0.0).

    Teams tag both ways; "the previous release" must see both, while tminus itself only ever
    creates ``v`` tags.
    """
    if len(name) > MAX_LENGTH:
        return None
    candidate = name if name.startswith("v") else f"v{name}"
    short = _SHORT.fullmatch(candidate)
    if short is not None:  # v0.23 and v20241220: tags teams really use, read as v0.23.0
        candidate = f"v{short['major']}.{short['minor'] or 0}.0"
    if not is_release_tag(candidate):
        return None
    return parse_version(candidate)


_SHORT = re.compile(r"v(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?")


#: The longest version accepted. A version becomes file names (``manifest_<v>.sha256``,
#: ``VERSION_<v>.txt``, a backup directory) and a file name has at most 255 bytes: a 5 000-char
#: pre-release would fail deep inside a task with ``File name too long``.
MAX_LENGTH = 128


def parse_version(text: str | None) -> ReleaseVersion:
    """Parse a release version or raise a usage error (exit 2) saying what is expected."""
    raw = text or ""
    if len(raw) > MAX_LENGTH:
        raise UsageError(f"release version too long ({len(raw)} characters, at most "
                         f"{MAX_LENGTH}): {raw[:20]!r}…",
                         hint="a version is vMAJOR.MINOR.PATCH with a short pre-release, "
                              "e.g. v1.4.0-rc.1")
    match = _PATTERN.fullmatch(raw)
    if not match:
        shown = raw if raw.isprintable() and len(raw) <= 40 else repr(raw[:40])
        prefixed = f"v{raw.strip()}"
        raise UsageError(
            f"malformed release version {shown if raw.strip() else '(empty)'}: "
            "expected vMAJOR.MINOR.PATCH "
            "with an optional pre-release, e.g. v0.2.0 or v1.4.0-rc.1",
            hint=(f"write {prefixed}: an existing tag {raw.strip()} is found as release "
                  f"{prefixed}") if _PATTERN.fullmatch(prefixed) else None,
        )
    pre = tuple(match["pre"].split(".")) if match["pre"] else ()
    return ReleaseVersion(int(match["major"]), int(match["minor"]), int(match["patch"]), pre)
