"""Golden files: a rendered text compared with the one committed under tests/unit/golden/.

``UPDATE_GOLDEN=1`` rewrites the file after an intended change, on a developer's machine. In CI
(``CI`` set, as every CI system and ``CI=true bash .ci/run`` do) it fails instead: a golden test
that rewrites its own expectation there could never fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def rewriting_refused_in_ci() -> bool:
    """True when UPDATE_GOLDEN asks for a rewrite where none may happen."""
    return bool(os.environ.get("UPDATE_GOLDEN")) and \
        os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


def match_golden(path: Path, text: str) -> None:
    if rewriting_refused_in_ci():
        pytest.fail(f"UPDATE_GOLDEN is set in CI: {path.name} is never rewritten there "
                    "(regenerate it locally and commit it)")
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
