"""The masking rule of ``ops.redact``: properties over a URL grammar, one example per shape.

The property: a canary password placed in any URL the grammar makes — in the userinfo or in a
``password=``-style query parameter, raw with every special character unencoded, percent-encoded
or half of each — never appears in what ``mask_url``, ``describe_url`` or ``with_password`` show,
nor in a driver error run through ``scrub``: not raw, not percent-encoded, not decoded. Every
canary carries the marker ``KQ``, which nothing else in the grammar can produce, so a hit is a
leak and never a coincidence.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ops.errors import ExitCode
from ops.redact import (
    HIDDEN,
    LogRedactor,
    UnparseableURL,
    describe_url,
    mask,
    mask_url,
    masked_settings,
    printable,
    redact_log_message,
    scrub,
    split_password,
    with_password,
)

#: Every character that means something in some client's reading of a URL, and then some.
SPECIALS = "@:/?#[]!$&'()*+,;=%\"<>\\^`{|}~ \t\n\x1b-._"
MARKER = "KQ"
EXAMPLES = 400

schemes = st.sampled_from(["postgresql", "postgres", "postgresql+psycopg", "redis", "rediss",
                           "mysql", "http", "amqp"])
users = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", max_size=8)
hosts = st.sampled_from(["localhost", "127.0.0.1", "[::1]", "db.internal", "h1:5432,h2:5433",
                         "", "cache"])
ports = st.sampled_from(["", ":5432", ":6379", ":1"])
paths = st.sampled_from(["", "/", "/app", "/0", "/my_db"])
queries = st.sampled_from(["", "?sslmode=require", "?application_name=worker&connect_timeout=3"])
fragments = st.sampled_from(["", "#top"])
param_names = st.sampled_from(["password", "pass", "pwd", "sslpassword", "PASSWORD",
                               "pass%77ord", "auth_token"])


@st.composite
def canaries(draw: st.DrawFn, alphabet: str = SPECIALS + "abcxyz019") -> str:
    """A password with the marker somewhere among special characters."""
    before = draw(st.text(alphabet=alphabet, max_size=6))
    after = draw(st.text(alphabet=alphabet, max_size=6))
    return before + MARKER + after


@st.composite
def encodings(draw: st.DrawFn, canary: str) -> str:
    """The canary as written in the URL: raw, fully percent-encoded, or with some characters
    left as they are."""
    how = draw(st.sampled_from(["raw", "encoded", "partly"]))
    if how == "raw":
        return canary
    if how == "encoded":
        return quote(canary, safe="")
    return quote(canary, safe=draw(st.text(alphabet=SPECIALS, max_size=5)))


@st.composite
def urls_with_password(draw: st.DrawFn) -> tuple[str, str, str]:
    """(url, canary, the canary as written in the url), the canary as the userinfo password."""
    canary = draw(canaries())
    written = draw(encodings(canary))
    user = draw(users)
    url = (f"{draw(schemes)}://{user}:{written}@{draw(hosts)}{draw(ports)}{draw(paths)}"
           f"{draw(queries)}{draw(fragments)}")
    return url, canary, written


@st.composite
def urls_with_password_parameter(draw: st.DrawFn) -> tuple[str, str, str]:
    """(url, canary, as written), the canary as a ``password=``-style query parameter. An
    unencoded ``&`` cannot be part of a parameter's value for any client, so it is encoded."""
    canary = draw(canaries(alphabet=SPECIALS.replace("&", "") + "abcxyz019"))
    written = draw(encodings(canary)).replace("&", "%26")
    userinfo = draw(st.sampled_from(["", "app@", "app:other@"]))
    before = draw(st.sampled_from(["?", "?sslmode=require&", "?db=0&"]))
    after = draw(st.sampled_from(["", "&connect_timeout=3", "#frag"]))
    url = (f"{draw(schemes)}://{userinfo}{draw(hosts)}{draw(ports)}{draw(paths)}{before}"
           f"{draw(param_names)}={written}{after}")
    return url, canary, written


@st.composite
def unparseable_urls(draw: st.DrawFn) -> tuple[str, str, str]:
    """A canary in a URL whose host part does not parse, or that has no scheme."""
    canary = draw(canaries())
    written = draw(encodings(canary))
    broken = draw(st.sampled_from(["[::1:5432", "host:port/db", "[::1]x", "h:99999999/db",
                                   "a b:1"]))
    shape = draw(st.sampled_from(["{s}://u:{p}@{h}", "u:{p}@{h}", "{s}:u:{p}@{h}",
                                  "{s}://u:{p}@{h}/db"]))
    return shape.format(s=draw(schemes), p=written, h=broken), canary, written


def forms(canary: str, written: str) -> set[str]:
    """The canary as a reader could find it: raw, encoded, as written, decoded; and each with
    its whitespace collapsed (which is how ``scrub`` prints a line)."""
    found = {canary, quote(canary, safe=""), written, unquote(written)}
    return found | {" ".join(form.split()) for form in found} - {""}


def assert_hidden(shown: str, canary: str, written: str) -> None:
    leaked = [form for form in forms(canary, written) if MARKER in form and form in shown]
    assert not leaked, f"{leaked!r} in {shown!r}"


any_password_url = st.one_of(urls_with_password(), urls_with_password_parameter())


# --- properties ----------------------------------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None)
@given(any_password_url)
@example(("postgresql://app:ab#KQ@db/app", "ab#KQ", "ab#KQ"))
@example(("redis://h:6379/0?password=KQ#x", "KQ#x", "KQ#x"))
def test_the_canary_never_appears_in_the_masked_url(case: tuple[str, str, str]) -> None:
    url, canary, written = case
    assert_hidden(mask_url(url), canary, written)


@settings(max_examples=EXAMPLES, deadline=None)
@given(any_password_url)
def test_the_canary_never_appears_in_the_described_url(case: tuple[str, str, str]) -> None:
    url, canary, written = case
    assert_hidden(describe_url(url), canary, written)


@settings(max_examples=EXAMPLES, deadline=None)
@given(any_password_url, st.sampled_from([None, HIDDEN]))
def test_the_canary_never_appears_in_the_url_without_its_password(
        case: tuple[str, str, str], replacement: str | None) -> None:
    url, canary, written = case
    try:
        shown = with_password(url, replacement)
    except UnparseableURL as refused:
        shown = refused.one_line()
    assert_hidden(shown, canary, written)


@settings(max_examples=EXAMPLES, deadline=None)
@given(any_password_url, st.sampled_from(["written", "decoded"]))
def test_a_driver_error_that_echoes_the_canary_is_scrubbed(case: tuple[str, str, str],
                                                           echoed: str) -> None:
    url, canary, written = case
    password = written if echoed == "written" else unquote(written)
    text = f'FATAL:  password authentication failed: "{password}"\nDETAIL: {url}'
    assert_hidden(scrub(text, url), canary, written)


@settings(max_examples=EXAMPLES, deadline=None)
@given(unparseable_urls())
def test_an_unparseable_url_shows_only_its_scheme(case: tuple[str, str, str]) -> None:
    url, canary, written = case
    shown = mask_url(url)
    assert shown.startswith("<unparseable ")
    assert_hidden(shown, canary, written)
    assert_hidden(describe_url(url), canary, written)
    assert_hidden(scrub(f"invalid URI: {url} ({written})", url), canary, written)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(), st.text())
def test_masking_never_raises_for_any_text(url: str, text: str) -> None:
    mask_url(url)
    describe_url(url)
    scrub(text, url)
    try:
        with_password(url, None)
    except UnparseableURL as refused:
        assert refused.exit_code is ExitCode.USAGE


# --- one example per shape (issue 11) ------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://app:pa#ss@db:5432/app", "postgresql://app:***@db:5432/app"),
    ("postgresql://app:pa?ss@db:5432/app", "postgresql://app:***@db:5432/app"),
    ("postgresql://app:pa/ss@db:5432/app", "postgresql://app:***@db:5432/app"),
    ("postgresql://app:p@ss@db:5432/app", "postgresql://app:***@db:5432/app"),
])
def test_a_password_with_a_delimiter_is_masked_up_to_the_last_at(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_a_postgres_password_query_parameter_is_masked() -> None:
    assert mask_url("postgresql://u@h/db?password=x") == "postgresql://u@h/db?password=***"


def test_a_redis_password_query_parameter_is_masked() -> None:
    assert mask_url("redis://h:6379/0?password=x") == "redis://h:6379/0?password=***"


def test_a_query_password_runs_to_the_next_parameter_not_to_a_hash() -> None:
    shown = mask_url("postgresql://h/db?password=a#b&sslmode=require")
    assert shown == "postgresql://h/db?password=***&sslmode=require"


def test_an_encoded_parameter_name_is_still_a_password() -> None:
    assert "secret" not in mask_url("postgresql://h/db?pass%77ord=secret")


def test_a_url_without_a_scheme_is_shown_as_unparseable() -> None:
    assert mask_url("user:pw@host:5432/db") == "<unparseable URL>"


def test_an_unparseable_url_shows_its_scheme_only_and_does_not_raise() -> None:
    assert mask_url("postgresql://u:pw@[::1:5432") == "<unparseable postgresql URL>"


def test_a_lone_redis_userinfo_is_hidden_because_clients_read_it_as_the_password() -> None:
    assert mask_url("redis://hunter2@cache:6379/0") == "redis://***@cache:6379/0"


def test_a_lone_postgres_userinfo_is_the_username_and_stays_readable() -> None:
    assert mask_url("postgresql://postgres@127.0.0.1:5432/db") == \
        "postgresql://postgres@127.0.0.1:5432/db"


def test_a_username_that_could_be_part_of_a_password_is_hidden_too() -> None:
    assert mask_url("postgresql://ap/p:pw@h/db") == "postgresql://***@h/db"


def test_a_query_password_holding_an_at_sign_is_ambiguous_and_shown_unparseable() -> None:
    assert mask_url("postgresql://h/db?password=x@y") == "<unparseable postgresql URL>"


def test_described_url_names_where_it_points_without_credentials_or_query() -> None:
    assert describe_url("postgresql://app:pw@db:5432/app?password=x&sslmode=require") == \
        "postgresql://app@db:5432/app"


def test_url_without_its_password_keeps_every_other_parameter() -> None:
    assert with_password("postgresql://u:p#w@h/db?password=x&sslmode=require", None) == \
        "postgresql://u@h/db?sslmode=require"


def test_url_without_its_password_refuses_an_unparseable_url_as_a_usage_error() -> None:
    with pytest.raises(UnparseableURL) as refused:
        with_password("postgresql://u:pw@[::1:5432", None)
    assert "pw" not in refused.value.one_line()
    assert refused.value.exit_code is ExitCode.USAGE


def test_split_password_takes_the_query_password_when_the_userinfo_has_none() -> None:
    assert split_password("postgresql://u@h/db?password=a%40b&sslmode=require") == \
        ("postgresql://u@h/db?sslmode=require", "a@b")


@pytest.mark.parametrize("url", [
    "postgresql://app:pa#ssword1@db/app",
    "postgresql://app:pa/ssword1@db/app",
    "postgresql://app:p@ssword1@db/app",
    "postgresql://app@db/app?password=pa#ssword1",
    "app:pa#ssword1@db:5432/app",
    "postgresql://app:pa#ssword1@[::1:5432",
])
def test_scrub_removes_the_password_and_its_pieces_in_every_shape(url: str) -> None:
    text = 'FATAL: password "pa#ssword1" rejected; invalid port "pa"; database "ssword1@db"'
    scrubbed = scrub(text, url)
    assert "pa#ssword1" not in scrubbed
    assert "ssword1" not in scrubbed


def test_scrub_keeps_the_username_readable() -> None:
    assert scrub('password authentication failed for user "app"',
                 "postgresql://app:s3cret-pw@db/app") == \
        'password authentication failed for user "app"'


# --- names and settings --------------------------------------------------------------------------


def test_printable_escapes_terminal_escapes_and_controls_like_repr() -> None:
    assert printable("key\x1b[2J\x07\x9b\n\u202eend") == "key\\x1b[2J\\x07\\x9b\\n\\u202eend"


def test_printable_leaves_unicode_text_and_backslashes_alone() -> None:
    assert printable("롤백 C:\\path é") == "롤백 C:\\path é"


def test_mask_escapes_the_characters_it_shows() -> None:
    assert mask("\x1b[31mlongsecretvalue") == "\\x1b[31…(20 chars)"


def test_settings_show_urls_masked_and_secret_named_values_hidden() -> None:
    data = {"environments": {"production": {"database_url": "postgresql://u:pw@h/db",
                                            "health_url": "http://ops:tok@h/health"}},
            "api_token": "abcdefghijklmnop", "secrets": {"key_names": ["SECRET_KEY"]}}
    assert masked_settings(data) == {
        "environments": {"production": {"database_url": "postgresql://u:***@h/db",
                                         "health_url": "http://ops:***@h/health"}},
        "api_token": "abcd…(16 chars)", "secrets": {"key_names": ["SECRET_KEY"]}}


def test_invoke_config_debug_lines_are_masked() -> None:
    line = ("Per-project config file (/r/invoke.yaml): {'ops': {'environments': {'production': "
            "{'database_url': 'postgresql://app:pa#ss@h/app'}}}}")
    assert redact_log_message(line, config_dump=True) == (
        "Per-project config file (/r/invoke.yaml): {'ops': {'environments': {'production': "
        "{'database_url': 'postgresql://app:***@h/app'}}}}")


def test_an_invoke_config_debug_line_that_is_not_plain_data_is_hidden() -> None:
    shown = redact_log_message("Defaults: {'x': <object at 0x1>, 'u': 'redis://:pw@h'}",
                               config_dump=True)
    assert shown == "Defaults: {…} (hidden: it may hold secrets)"


def test_the_log_filter_masks_a_record_before_any_handler_sees_it() -> None:
    record = logging.LogRecord("invoke", logging.DEBUG, "config.py", 1,
                               "token %s", ("postgresql://u:pw@h/db",), None)
    assert LogRedactor().filter(record)
    assert record.getMessage() == "token postgresql://u:***@h/db"
