"""What the hardcoded-secret scan knows is not a secret, one rule at a time.

The rules are detect-secrets filters (``ops.secretscan.is_alembic_revision_id``,
``is_known_digest`` and the two that replace detect-secrets' whole-lockfile skips). Here each is
called the way detect-secrets calls it, with the plugin that found the value, on the line that
holds it. Every digest and id is computed at run time, so this file never trips a scanner.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.high_entropy_strings import (
    Base64HighEntropyString,
    HexHighEntropyString,
)
from detect_secrets.settings import configure_settings_from_baseline, get_settings
from detect_secrets.util.code_snippet import get_code_snippet

from ops.atomic import make_ignored_dir
from ops.runtime.alembic_scripts import revision_id_lines as alembic_revision_ids
from ops.secretscan import (
    configure_detect_secrets,
    install_not_secret_filters,
    is_alembic_revision_id,
    is_known_digest,
    is_lock_file_not_read_by_field,
    is_non_text_file_not_read_by_field,
)

HEX = HexHighEntropyString()
B64 = Base64HighEntropyString()
AWS = AWSKeyDetector()
AWS_KEY = "AKIA" + "J7QWERTYZX4PLMNB"


def sha256(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def sri(name: str) -> str:
    """A Subresource Integrity value as npm, pnpm and yarn write it."""
    return "sha512-" + base64.b64encode(hashlib.sha512(name.encode()).digest()).decode()


def h1(name: str) -> str:
    """The base64 of a go.sum ``h1:`` hash (without the ``h1:``)."""
    return base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()


def git_sha(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()  # noqa: S324 - a commit id's shape


def rev(name: str) -> str:
    """An Alembic-shaped revision id (12 hex)."""
    return sha256(name)[:12]


UP, DOWN, OTHER = rev("add users"), rev("initial"), rev("add orders")

CLASSIC = f'''"""add users table

Revision ID: {UP}
Revises: {DOWN}
Create Date: 2024-03-11 09:12:44.318290

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '{UP}'
down_revision = '{DOWN}'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("email", sa.String(255)))


def downgrade():
    op.drop_column("users", "email")
'''

ANNOTATED_MERGE = f'''"""merge heads

Revision ID: {UP}
Revises: {DOWN}, {OTHER}
Create Date: 2025-01-20 16:03:51.004512

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "{UP}"
down_revision: Union[str, Sequence[str], None] = (
    "{DOWN}",
    "{OTHER}",
)
branch_labels: Union[str, Sequence[str], None] = ("billing",)
depends_on: Union[str, Sequence[str], None] = "{OTHER}"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def revision_id_filtered(path: Path, text: str, number: int, secret: str,
                         plugin: object = HEX) -> bool:
    """``is_alembic_revision_id`` as detect-secrets calls it for the finding on that line."""
    context = get_code_snippet(lines=text.splitlines(), line_number=number)
    return is_alembic_revision_id(str(path), secret, plugin, context)


# --- Alembic revision files ----------------------------------------------------------------------


def test_classic_template_names_revision_and_down_revision_lines() -> None:
    ids = alembic_revision_ids(CLASSIC)
    assert ids[line_of(CLASSIC, "revision = ")] == {UP}
    assert ids[line_of(CLASSIC, "down_revision = ")] == {DOWN}


def test_annotated_template_lines_are_revision_lines() -> None:
    ids = alembic_revision_ids(ANNOTATED_MERGE)
    assert ids[line_of(ANNOTATED_MERGE, "revision: str")] == {UP}
    assert ids[line_of(ANNOTATED_MERGE, "depends_on:")] == {OTHER}
    assert ids[line_of(ANNOTATED_MERGE, "branch_labels:")] == {"billing"}


def test_every_line_of_a_multiline_down_revision_tuple_is_a_revision_line() -> None:
    ids = alembic_revision_ids(ANNOTATED_MERGE)
    first = line_of(ANNOTATED_MERGE, "down_revision:")
    assert all(ids[n] == {DOWN, OTHER} for n in range(first, first + 4))


def test_docstring_revision_id_and_revises_lines_carry_their_ids() -> None:
    ids = alembic_revision_ids(ANNOTATED_MERGE)
    assert ids[line_of(ANNOTATED_MERGE, "Revision ID:")] == {UP}
    assert ids[line_of(ANNOTATED_MERGE, "Revises:")] == {DOWN, OTHER}


def test_module_that_assigns_revision_without_down_revision_is_not_a_revision_file() -> None:
    assert alembic_revision_ids(f'revision = "{UP}"\nbranch_labels = None\n') == {}


def test_unparseable_python_is_not_a_revision_file() -> None:
    assert alembic_revision_ids(f'revision = "{UP}"\ndown_revision = (\n') == {}


def test_revision_file_is_parsed_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = CLASSIC + f"\nopen({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n"
    assert alembic_revision_ids(source)
    assert not marker.exists()


def test_hex_finding_on_a_revision_line_is_filtered(tmp_path: Path) -> None:
    path = tmp_path / f"{UP}_add_users.py"
    path.write_text(CLASSIC, encoding="utf-8")
    assert revision_id_filtered(path, CLASSIC, line_of(CLASSIC, "revision = "), UP)


def test_revision_id_repeated_on_another_line_is_not_filtered(tmp_path: Path) -> None:
    text = CLASSIC + f'\nLEGACY_KEY = "{UP}"\n'
    path = tmp_path / f"{UP}_add_users.py"
    path.write_text(text, encoding="utf-8")
    assert not revision_id_filtered(path, text, line_of(text, "LEGACY_KEY"), UP)


def test_credential_plugin_finding_on_a_revision_line_is_not_filtered(tmp_path: Path) -> None:
    text = CLASSIC.replace(f"revision = '{UP}'", f"revision = '{AWS_KEY}'")
    path = tmp_path / "pasted.py"
    path.write_text(text, encoding="utf-8")
    assert not revision_id_filtered(path, text, line_of(text, "revision = "), AWS_KEY, AWS)


def test_same_assignment_in_a_module_that_is_not_a_revision_file_is_not_filtered(
        tmp_path: Path) -> None:
    text = f'revision = "{UP}"\n'
    path = tmp_path / "settings.py"
    path.write_text(text, encoding="utf-8")
    assert not revision_id_filtered(path, text, 1, UP)


def test_edited_revision_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / f"{UP}_add_users.py"
    path.write_text(CLASSIC, encoding="utf-8")
    number = line_of(CLASSIC, "revision = ")
    assert revision_id_filtered(path, CLASSIC, number, UP)
    edited = CLASSIC.replace("down_revision = ", "previous = ")
    path.write_text(edited, encoding="utf-8")
    assert not revision_id_filtered(path, edited, number, UP)


# --- lockfile fields -----------------------------------------------------------------------------

# (lockfile, the line detect-secrets' plugin saw, the value it reported, the plugin). Lines are
# the file's own and, where detect-secrets' YAML/INI transformers rewrite them, the rewritten form.
LOCKFILE_FIELDS = [
    ("package-lock.json", f'      "integrity": "{sri("js-tokens")}",', sri("js-tokens"), B64),
    ("package-lock.json",
     f'      "resolved": "git+ssh://git@github.com/acme/left-pad.git#{git_sha("lp")}",',
     git_sha("lp"), HEX),
    ("npm-shrinkwrap.json", f'      "integrity": "{sri("ms")}"', sri("ms"), B64),
    ("pnpm-lock.yaml", f'    resolution: {{integrity: {sri("react")}}}', sri("react"), B64),
    ("pnpm-lock.yaml", f'integrity: "{sri("react")}"', sri("react"), B64),
    ("pnpm-lock.yaml", f'commit: "{git_sha("fork")}"', git_sha("fork"), HEX),
    ("yarn.lock", f"  integrity {sri('lodash')}", sri("lodash"), B64),
    ("yarn.lock", f'  resolved "https://registry.yarnpkg.com/lodash/-/lodash-4.17.21.tgz'
                  f'#{git_sha("lodash")}"', git_sha("lodash"), HEX),
    ("yarn.lock", f"  checksum: 10c0/{hashlib.sha512(b'ms').hexdigest()}",
     hashlib.sha512(b"ms").hexdigest(), HEX),
    ("poetry.lock", f'content-hash = "{sha256("poetry")}"', sha256("poetry"), HEX),
    ("poetry.lock", f'resolved_reference = "{git_sha("httpx")}"', git_sha("httpx"), HEX),
    ("uv.lock", f'source = {{ git = "https://github.com/acme/sdk?rev=v2#{git_sha("sdk")}" }}',
     git_sha("sdk"), HEX),
    ("Pipfile.lock", f'            "sha256": "{sha256("Pipfile")}"', sha256("Pipfile"), HEX),
    ("Pipfile.lock", f'            "ref": "{git_sha("requests")}"', git_sha("requests"), HEX),
    ("go.sum", f"github.com/google/uuid v1.6.0 h1:{h1('uuid')}", h1("uuid"), B64),
    ("go.sum", f'golang.org/x/sys v0.18.0/go.mod h1 = "{h1("sys")}"', h1("sys"), B64),
]


@pytest.mark.parametrize(("lockfile", "line", "secret", "plugin"), LOCKFILE_FIELDS,
                         ids=[f"{f}:{line.strip()[:18]}" for f, line, _, _ in LOCKFILE_FIELDS])
def test_lockfile_hash_field_is_a_known_digest(lockfile: str, line: str, secret: str,
                                               plugin: object) -> None:
    assert is_known_digest(f"web/{lockfile}", line, secret, plugin)


def test_lockfile_hash_field_values_are_high_entropy_findings_to_detect_secrets() -> None:
    """The table above is not vacuous: each value is one detect-secrets reports by itself."""
    for _lockfile, _line, secret, plugin in LOCKFILE_FIELDS:
        assert isinstance(plugin, HexHighEntropyString | Base64HighEntropyString)
        assert plugin.calculate_shannon_entropy(secret) > plugin.entropy_limit, secret


def test_credential_plugin_finding_on_a_lockfile_hash_line_is_not_a_digest() -> None:
    line = f'      "integrity": "{AWS_KEY}",'
    assert not is_known_digest("package-lock.json", line, AWS_KEY, AWS)


def test_high_entropy_value_in_another_lockfile_field_is_not_a_digest() -> None:
    token = sri("npm-token")
    assert not is_known_digest("package-lock.json", f'      "_authToken": "{token}"', token, B64)


def test_lockfile_field_in_a_file_that_is_not_that_lockfile_is_not_a_digest() -> None:
    value = sri("js-tokens")
    assert not is_known_digest("src/config.json", f'  "integrity": "{value}"', value, B64)


# --- digests anywhere and tminus's release files -------------------------------------------------


@pytest.mark.parametrize("line", [
    'api@sha256 = "{hex}"',  # `api@sha256:<hex>` as detect-secrets' INI transformer rewrites it
    '"sha256": "{hex}",',
    "sha256: {hex}",
])
def test_labelled_sha256_digest_is_a_known_digest_in_any_file(line: str) -> None:
    digest = sha256("image")
    assert is_known_digest("docs/deploy.md", line.format(hex=digest), digest, HEX)


def test_value_of_a_key_merely_ending_in_sha256_is_not_a_digest() -> None:
    digest = sha256("signing key")
    assert not is_known_digest("app/settings.py", f'TOKEN_SHA256 = "{digest}"', digest, HEX)


def test_bare_64_hex_value_outside_release_files_is_not_a_digest() -> None:
    digest = sha256("hmac key")
    assert not is_known_digest("app/settings.py", f'SIGNING_KEY = "{digest}"', digest, HEX)


@pytest.mark.parametrize(("filename", "line", "secret"), [
    ("checkpoints/VERSION_v0.2.0.txt", 'model_epoch_100.pt = "{digest}"', "{digest}"),
    ("checkpoints/VERSION_v0.2.0.txt", 'commit = "{commit}"', "{commit}"),
    ("releases/manifest_v0.2.0.json", '    "commit": "{commit}",', "{commit}"),
    ("releases/manifest_v0.2.0.json", '  "model.pt": {{"sha256": "{digest}", "size": 9}}',
     "{digest}"),
    ("releases/manifest_v0.2.0.sha256", "{digest}  manifest_v0.2.0.json", "{digest}"),
])
def test_release_file_digests_and_commit_ids_are_known_digests(filename: str, line: str,
                                                               secret: str) -> None:
    values = {"digest": sha256("model"), "commit": git_sha("release")}
    assert is_known_digest(filename, line.format(**values), secret.format(**values), HEX)


def test_a_file_merely_named_like_a_release_file_without_a_version_is_not_one() -> None:
    digest = sha256("model")
    assert not is_known_digest("k8s/manifest_vault.json", f'"key": "{digest}"', digest, HEX)


# --- detect-secrets' whole-file lockfile skips ---------------------------------------------------


@pytest.mark.parametrize("name", ["package-lock.json", "yarn.lock", "Pipfile.lock",
                                  "poetry.lock"])
def test_lockfile_read_by_field_is_no_longer_skipped_by_name(name: str) -> None:
    assert not is_lock_file_not_read_by_field(f"app/{name}")


@pytest.mark.parametrize("name", ["uv.lock", "go.sum", "yarn.lock", "poetry.lock"])
def test_lockfile_read_by_field_is_no_longer_skipped_by_extension(name: str) -> None:
    assert not is_non_text_file_not_read_by_field(name)


def test_lockfiles_tminus_has_no_fields_for_are_still_skipped_as_detect_secrets_does() -> None:
    assert is_lock_file_not_read_by_field("Cargo.lock")
    assert is_non_text_file_not_read_by_field("Gemfile.lock")
    assert is_non_text_file_not_read_by_field("logo.png")


# --- the filters in detect-secrets' settings -----------------------------------------------------


def test_configured_settings_carry_the_not_secret_filters_in_place_of_the_lockfile_skips() -> None:
    settings = configure_detect_secrets(None)
    used = {item["path"] for item in settings["filters_used"]}
    assert {"ops.secretscan.is_alembic_revision_id", "ops.secretscan.is_known_digest",
            "ops.secretscan.is_lock_file_not_read_by_field",
            "ops.secretscan.is_non_text_file_not_read_by_field"} <= used
    assert "detect_secrets.filters.heuristic.is_lock_file" not in used


def test_filters_survive_the_settings_round_trip_a_worker_process_makes() -> None:
    """Workers load the settings as a baseline, which puts detect-secrets' default
    ``is_non_text_file`` back; installing again swaps it out once more."""
    settings = configure_detect_secrets(None)
    configure_settings_from_baseline(settings)
    install_not_secret_filters()
    active = set(get_settings().filters)
    assert "detect_secrets.filters.heuristic.is_non_text_file" not in active
    assert "ops.secretscan.is_non_text_file_not_read_by_field" in active


# --- the cache directory's ignore marker ---------------------------------------------------------


def test_created_cache_directory_carries_a_gitignore_of_everything(tmp_path: Path) -> None:
    make_ignored_dir(tmp_path / ".tminus" / "cache")
    marker = tmp_path / ".tminus" / "cache" / ".gitignore"
    assert marker.read_text(encoding="utf-8").splitlines()[-1] == "*"


def test_existing_directory_gets_no_ignore_marker(tmp_path: Path) -> None:
    make_ignored_dir(tmp_path)
    assert not (tmp_path / ".gitignore").exists()
