"""The golden files cannot be rewritten in CI: UPDATE_GOLDEN there fails the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden import match_golden


def test_update_golden_in_ci_fails_and_leaves_the_file_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    golden = tmp_path / "golden.txt"
    golden.write_text("expected\n", encoding="utf-8")
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("UPDATE_GOLDEN", "1")
    with pytest.raises(pytest.fail.Exception, match="UPDATE_GOLDEN is set in CI"):
        match_golden(golden, "something else\n")
    assert golden.read_text(encoding="utf-8") == "expected\n"


def test_update_golden_outside_ci_rewrites_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    golden = tmp_path / "golden.txt"
    golden.write_text("old\n", encoding="utf-8")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("UPDATE_GOLDEN", "1")
    match_golden(golden, "new\n")
    assert golden.read_text(encoding="utf-8") == "new\n"


def test_without_update_golden_a_difference_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    golden = tmp_path / "golden.txt"
    golden.write_text("expected\n", encoding="utf-8")
    monkeypatch.delenv("UPDATE_GOLDEN", raising=False)
    with pytest.raises(AssertionError):
        match_golden(golden, "different\n")
