"""How a single .env value is judged: placeholders and cryptographic-key weakness (no I/O)."""

from __future__ import annotations

import secrets

import pytest

from ops.checks.secrets import key_weakness, placeholder_reason

PREFIXES = ["django-insecure-", "changeme"]


@pytest.mark.parametrize("value", [
    "changeme", "change-me", "CHANGE_ME_PLEASE", "your-api-key-here", "your_token_here",
    # pragma: allowlist nextline secret
    "xxx", "XXXXXXXX", "<stripe key>", "TODO", "example", "postgresql://app:change-me@db/app",
    # the fastapi template's and Java keystores' markers
    "changethis", "change_this_secret", "changeit", "postgresql://app:changethis@db/app",
])
def test_placeholder_shapes_are_recognised(value: str) -> None:
    assert placeholder_reason("STRIPE_API_KEY", value, None, set()) == "looks like a placeholder"


@pytest.mark.parametrize("value", [
    # pragma: allowlist nextline secret
    "info", "redis://redis:6379/0", "v0.2.0", "sk_live_" + "a1b2c3d4e5f6a7b8c9d0", "exampled",
    "changeitem", "changes-tracked",
])
def test_ordinary_values_are_not_placeholders(value: str) -> None:
    assert placeholder_reason("SOME_VALUE", value, None, set()) is None


def test_secret_named_key_equal_to_the_example_is_a_placeholder() -> None:
    assert placeholder_reason("API_TOKEN", "abc123", "abc123", set()) == \
        "still holds the example value"


def test_plain_setting_equal_to_the_example_is_fine() -> None:
    assert placeholder_reason("LOG_LEVEL", "info", "info", set()) is None


def test_unresolved_interpolation_is_a_placeholder_but_a_defined_or_defaulted_one_is_not() -> None:
    assert placeholder_reason("URL", "${HOST}/x", None, set()) == \
        "refers to an unresolved ${…} variable"
    assert placeholder_reason("URL", "${HOST}/x", None, {"HOST"}) is None
    assert placeholder_reason("URL", "${HOST:-localhost}/x", None, set()) is None


def test_reasons_never_repeat_the_value() -> None:
    value = "your-" + secrets.token_hex(8) + "-here"
    reason = placeholder_reason("K", value, None, set())
    assert reason is not None
    assert value not in reason


def test_random_key_of_enough_length_is_strong() -> None:
    assert key_weakness(secrets.token_urlsafe(48), 32, 10, PREFIXES) is None


def test_short_key_reports_its_length_not_its_value() -> None:
    assert key_weakness("s3cr3t", 32, 10, PREFIXES) == "is 6 characters (needs at least 32)"


def test_regular_key_reports_its_distinct_characters() -> None:
    assert key_weakness("0123" * 10, 32, 10, PREFIXES) == \
        "has only 4 distinct characters in 40 (needs at least 10)"


def test_known_insecure_prefix_is_weak_whatever_follows() -> None:
    assert key_weakness("django-insecure-" + secrets.token_urlsafe(40), 32, 10, PREFIXES) == \
        "starts with the known insecure prefix 'django-insecure-'"
