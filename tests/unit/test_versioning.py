"""Release versions: what is accepted, what is refused, and how they order."""

from __future__ import annotations

import pytest

from ops.errors import ExitCode, UsageError
from ops.versioning import parse_version, version_of_tag


@pytest.mark.parametrize("text", ["v0.2.0", "v1.4.0-rc.1", "v10.0.3", "v1.0.0-alpha.beta.1"])
def test_well_formed_versions_parse_and_round_trip(text: str) -> None:
    assert parse_version(text).tag == text


@pytest.mark.parametrize(
    "text", ["v0.2", "1.2.3", "v1.2.3;rm -rf /", "", "   ", "v01.2.3", "v1.2.3-", "v1.2.3+build",
             "V1.2.3", "v1.2.3\n", "v1.2.3 && reboot"])
def test_malformed_versions_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_version(text)
    assert caught.value.exit_code is ExitCode.USAGE
    assert "expected vMAJOR.MINOR.PATCH" in caught.value.message


def test_prerelease_sorts_below_its_release_and_numeric_identifiers_compare_numerically() -> None:
    ordered = ["v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta.2",
               "v1.0.0-beta.11", "v1.0.0-rc.1", "v1.0.0", "v1.0.1", "v1.10.0"]
    parsed = [parse_version(v) for v in ordered]
    rotated = parsed[4:] + parsed[:4]
    assert sorted(rotated) == parsed


def test_error_message_does_not_echo_unprintable_input_raw() -> None:
    with pytest.raises(UsageError) as caught:
        parse_version("v1.2.3\x1b[31m")
    assert "\x1b" not in caught.value.message


@pytest.mark.parametrize(("tag", "expected"), [
    ("v2.0.0", "v2.0.0"), ("0.12.0", "v0.12.0"), ("v0.23", "v0.23.0"), ("1.4", "v1.4.0"),
    ("v20241220", "v20241220.0.0"), ("3.8.4-rc.1", "v3.8.4-rc.1")])
def test_existing_tags_are_read_as_versions_in_the_forms_teams_use(tag: str,
                                                                   expected: str) -> None:
    found = version_of_tag(tag)
    assert found is not None
    assert found.tag == expected


@pytest.mark.parametrize("tag", ["latest", "release-candidate", "v1.2.3.4", "v1.2.3;x", ""])
def test_tags_that_name_no_version_are_not_releases(tag: str) -> None:
    assert version_of_tag(tag) is None


def test_version_without_the_v_is_refused_with_the_spelling_to_use() -> None:
    """A repository tagged 0.7.0: the user types what the tag says; the hint gives v0.7.0."""
    with pytest.raises(UsageError) as caught:
        parse_version("0.7.0")
    assert caught.value.hint == "write v0.7.0: an existing tag 0.7.0 is found as release v0.7.0"


def test_malformed_version_that_no_v_would_fix_has_no_hint() -> None:
    with pytest.raises(UsageError) as caught:
        parse_version("v1.2")
    assert caught.value.hint is None
