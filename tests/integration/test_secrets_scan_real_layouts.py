"""The hardcoded-secret scan on the layouts real repositories have: Alembic migrations, the
lockfiles of npm, pnpm, yarn, Poetry, uv, Pipenv and Go, tminus's own release files, image
digests, model weights and binaries.

What is an id or a digest by construction is not a finding; a real secret pasted next to one
still is. Each fixture is shaped as its tool writes it, with digests and ids computed at run
time (so this file never trips a scanner), and each "not a finding" test first shows that
detect-secrets' own plugins do call the value a secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from detect_secrets.plugins.high_entropy_strings import (
    Base64HighEntropyString,
    HexHighEntropyString,
)

from ops.checks import CheckContext
from ops.checks.release_tag import check_worktree_clean
from ops.checks.secrets import check_hardcoded
from ops.config import SecretsSettings, Settings
from ops.release import manifest as mf
from ops.release.version_file import VersionFile
from ops.release.version_file import render as render_version_file
from ops.report import Status
from ops.secretscan import ScanOptions, ScanResult, scan_repository
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

AWS_KEY = "AKIA" + "J7QWERTYZX4PLMNB"
PEM = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn\n-----END RSA " \
      + "PRIVATE KEY-----\n"


def sha256(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def sri(name: str) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(name.encode()).digest()).decode()


def sri1(name: str) -> str:
    return "sha1-" + base64.b64encode(hashlib.sha1(name.encode()).digest()).decode()  # noqa: S324


def git_sha(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()  # noqa: S324 - a commit id's shape


def rev(name: str) -> str:
    """A 12-hex revision id like Alembic's, picked among those detect-secrets reports (about
    half of the ids Alembic generates are high entropy by its measure): a slice of a digest."""
    digest, plugin = sha256(name), HexHighEntropyString()
    return next(digest[i:i + 12] for i in range(len(digest) - 11)
                if plugin.calculate_shannon_entropy(digest[i:i + 12]) > plugin.entropy_limit)


def scan(repo: GitRepo, **options: Any) -> ScanResult:
    """Commit what the test wrote and scan it afresh (no baseline, no cache)."""
    repo.commit("layout")
    return scan_repository(repo.path, ScanOptions(baseline=None, use_cache=False, **options))


def found(result: ScanResult) -> list[tuple[str, int, str]]:
    return [(h.path, h.line, h.kind) for h in result.findings]


def flagged_by_detect_secrets(values: list[str]) -> bool:
    """Every value is a high-entropy string by detect-secrets' own plugins and limits."""
    hex_plugin, b64_plugin = HexHighEntropyString(), Base64HighEntropyString()
    for value in values:
        plugin = hex_plugin if all(c in "0123456789abcdefABCDEF" for c in value) else b64_plugin
        if plugin.calculate_shannon_entropy(value) <= plugin.entropy_limit:
            return False
    return True


def line_of(repo: GitRepo, relative: str, needle: str) -> int:
    text = (repo.path / relative).read_text(encoding="utf-8")
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --- Alembic -------------------------------------------------------------------------------------

USERS, ORDERS, BILLING, MERGE = rev("add users"), rev("add orders"), rev("billing"), rev("merge")


def classic_revision(message: str, up: str, down: str | None) -> str:
    """What `alembic revision -m` writes with the generic template of Alembic < 1.13."""
    return f'''"""{message}

Revision ID: {up}
Revises: {down or ""}
Create Date: 2023-06-02 14:21:07.615442

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = {up!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(255), nullable=False),
    )


def downgrade():
    op.drop_table("users")
'''


def annotated_revision(message: str, up: str, down: str | tuple[str, ...],
                       branch_labels: tuple[str, ...] | None = None) -> str:
    """What Alembic >= 1.13 writes: type-annotated identifiers; a merge's tuple as black
    formats it when the line is too long."""
    if isinstance(down, tuple):
        revises = ", ".join(down)
        down_src = "(\n" + "".join(f'    "{d}",\n' for d in down) + ")"
    else:
        revises, down_src = down, f'"{down}"'
    return f'''"""{message}

Revision ID: {up}
Revises: {revises}
Create Date: 2025-02-17 08:45:31.209114

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "{up}"
down_revision: Union[str, Sequence[str], None] = {down_src}
branch_labels: Union[str, Sequence[str], None] = {branch_labels!r}
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("total_cents", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "total_cents")
'''


@pytest.fixture
def migrations(git_repo: GitRepo) -> GitRepo:
    versions = "migrations/versions"
    git_repo.write(f"{versions}/{USERS}_add_users.py",
                   classic_revision("add users", USERS, None))
    git_repo.write(f"{versions}/{ORDERS}_add_orders.py",
                   annotated_revision("add orders", ORDERS, USERS))
    git_repo.write(f"{versions}/{BILLING}_billing_branch.py",
                   annotated_revision("billing branch", BILLING, USERS, ("billing",)))
    git_repo.write(f"{versions}/{MERGE}_merge_heads.py",
                   annotated_revision("merge heads", MERGE, (ORDERS, BILLING)))
    return git_repo


def test_revision_ids_of_new_alembic_migrations_are_not_findings(migrations: GitRepo) -> None:
    assert flagged_by_detect_secrets([USERS, ORDERS, BILLING, MERGE])
    assert found(scan(migrations)) == []


def test_aws_key_pasted_into_a_revision_file_is_found(migrations: GitRepo) -> None:
    path = f"migrations/versions/{ORDERS}_add_orders.py"
    text = (migrations.path / path).read_text(encoding="utf-8")
    migrations.write(path, text.replace("def upgrade() -> None:\n",
                                        f'def upgrade() -> None:\n    key = "{AWS_KEY}"\n'))
    assert found(scan(migrations)) == [(path, line_of(migrations, path, "key = "),
                                        "AWS Access Key")]


def test_revision_id_repeated_off_the_revision_lines_is_still_reported(
        migrations: GitRepo) -> None:
    path = f"migrations/versions/{USERS}_add_users.py"
    text = (migrations.path / path).read_text(encoding="utf-8")
    migrations.write(path, text + f'\nPREVIOUS = "{USERS}"\n')
    assert found(scan(migrations)) == [(path, line_of(migrations, path, "PREVIOUS = "),
                                        "Hex High Entropy String")]


def test_revision_assignments_outside_a_revision_file_are_reported(git_repo: GitRepo) -> None:
    git_repo.write("app/deploy.py", f'revision = "{USERS}"\n')
    assert found(scan(git_repo)) == [("app/deploy.py", 1, "Hex High Entropy String")]


def test_revision_files_scanned_in_worker_processes_are_not_findings(git_repo: GitRepo) -> None:
    previous = None
    for number in range(80):  # above the threshold where worker processes start
        up = rev(f"step {number}")
        git_repo.write(f"migrations/versions/{up}_step_{number}.py",
                       annotated_revision(f"step {number}", up, previous) if previous
                       else classic_revision("initial", up, None))
        previous = up
    git_repo.write("app/keys.py", f'KEY = "{AWS_KEY}"\n')
    assert found(scan(git_repo, workers=2)) == [("app/keys.py", 1, "AWS Access Key")]


# --- lockfiles -----------------------------------------------------------------------------------


def package_lock() -> str:
    """npm 9+ (lockfileVersion 3): a registry package and a git dependency."""
    return json.dumps({
        "name": "storefront", "version": "2.3.0", "lockfileVersion": 3, "requires": True,
        "packages": {
            "": {"name": "storefront", "version": "2.3.0",
                 "dependencies": {"js-tokens": "^4.0.0", "left-pad": "github:acme/left-pad"}},
            "node_modules/js-tokens": {
                "version": "4.0.0",
                "resolved": "https://registry.npmjs.org/js-tokens/-/js-tokens-4.0.0.tgz",
                "integrity": sri("js-tokens@4.0.0"), "license": "MIT"},
            "node_modules/loose-envify": {
                "version": "1.4.0",
                "resolved": "https://registry.npmjs.org/loose-envify/-/loose-envify-1.4.0.tgz",
                "integrity": sri("loose-envify@1.4.0"),
                "dependencies": {"js-tokens": "^3.0.0 || ^4.0.0"},
                "bin": {"loose-envify": "cli.js"}},
            "node_modules/left-pad": {
                "version": "1.3.0",
                "resolved": f"git+ssh://git@github.com/acme/left-pad.git#{git_sha('left-pad')}",
                "integrity": sri1("left-pad"), "license": "WTFPL"},
        },
    }, indent=2) + "\n"


def pnpm_lock() -> str:
    """pnpm 9 (lockfileVersion '9.0')."""
    return f"""lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

importers:

  .:
    dependencies:
      js-tokens:
        specifier: ^4.0.0
        version: 4.0.0
      left-pad:
        specifier: github:acme/left-pad
        version: https://codeload.github.com/acme/left-pad/tar.gz/{git_sha('left-pad')}

packages:

  js-tokens@4.0.0:
    resolution: {{integrity: {sri('js-tokens@4.0.0')}}}

  left-pad@https://codeload.github.com/acme/left-pad/tar.gz/{git_sha('left-pad')}:
    resolution: {{tarball: https://codeload.github.com/acme/left-pad/tar.gz/{git_sha('left-pad')}}}
    version: 1.3.0

  loose-envify@1.4.0:
    resolution: {{integrity: {sri('loose-envify@1.4.0')}}}
    hasBin: true

snapshots:

  js-tokens@4.0.0: {{}}

  loose-envify@1.4.0:
    dependencies:
      js-tokens: 4.0.0
"""


def yarn_lock() -> str:
    """yarn 1 (classic)."""
    return f"""# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"js-tokens@^3.0.0 || ^4.0.0", js-tokens@^4.0.0:
  version "4.0.0"
  resolved "https://registry.yarnpkg.com/js-tokens/-/js-tokens-4.0.0.tgz#{git_sha('js-tokens')}"
  integrity {sri('js-tokens@4.0.0')}

loose-envify@^1.1.0:
  version "1.4.0"
  resolved "https://registry.yarnpkg.com/loose-envify/-/loose-envify-1.4.0.tgz#{git_sha('le')}"
  integrity {sri('loose-envify@1.4.0')}
  dependencies:
    js-tokens "^3.0.0 || ^4.0.0"
"""


def poetry_lock() -> str:
    """Poetry 1.8 (lock-version 2.0), with a git dependency."""
    return f"""# This file is automatically @generated by Poetry 1.8.3 and should not be changed by hand.

[[package]]
name = "certifi"
version = "2024.7.4"
description = "Python package for providing Mozilla's CA Bundle."
optional = false
python-versions = ">=3.6"
files = [
    {{file = "certifi-2024.7.4-py3-none-any.whl", hash = "sha256:{sha256('certifi-whl')}"}},
    {{file = "certifi-2024.7.4.tar.gz", hash = "sha256:{sha256('certifi-sdist')}"}},
]

[[package]]
name = "payments-sdk"
version = "0.9.1"
description = "Internal payments client"
optional = false
python-versions = "^3.11"
files = []
develop = false

[package.source]
type = "git"
url = "https://github.com/acme/payments-sdk.git"
reference = "v0.9.1"
resolved_reference = "{git_sha('payments-sdk')}"

[metadata]
lock-version = "2.0"
python-versions = "^3.11"
content-hash = "{sha256('pyproject')}"
"""  # noqa: E501 - Poetry's own header line


def uv_lock() -> str:
    """uv (lock version 1), with a git source."""
    return f"""version = 1
requires-python = ">=3.11"

[[package]]
name = "certifi"
version = "2024.7.4"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://files.pythonhosted.org/packages/c2/02/certifi-2024.7.4.tar.gz", hash = "sha256:{sha256('certifi-sdist')}", size = 164065 }}
wheels = [
    {{ url = "https://files.pythonhosted.org/packages/1c/d5/certifi-2024.7.4-py3-none-any.whl", hash = "sha256:{sha256('certifi-whl')}", size = 162960 }},
]

[[package]]
name = "payments-sdk"
version = "0.9.1"
source = {{ git = "https://github.com/acme/payments-sdk?rev=v0.9.1#{git_sha('payments-sdk')}" }}
"""  # noqa: E501 - uv writes one line per inline table


def pipfile_lock() -> str:
    """pipenv 2023+ (pipfile-spec 6), with a VCS entry."""
    return json.dumps({
        "_meta": {"hash": {"sha256": sha256("Pipfile")}, "pipfile-spec": 6,
                  "requires": {"python_version": "3.11"},
                  "sources": [{"name": "pypi", "url": "https://pypi.org/simple",
                               "verify_ssl": True}]},
        "default": {
            "certifi": {"hashes": [f"sha256:{sha256('certifi-sdist')}",
                                   f"sha256:{sha256('certifi-whl')}"],
                        "index": "pypi", "markers": "python_version >= '3.6'",
                        "version": "==2024.7.4"},
            "payments-sdk": {"git": "https://github.com/acme/payments-sdk.git",
                             "ref": git_sha("payments-sdk")},
        },
        "develop": {},
    }, indent=4) + "\n"


def go_sum() -> str:
    lines = []
    for module, version in (("github.com/google/uuid", "v1.6.0"), ("golang.org/x/sys", "v0.21.0")):
        for suffix in ("", "/go.mod"):
            digest = base64.b64encode(hashlib.sha256(f"{module}{suffix}".encode()).digest())
            lines.append(f"{module} {version}{suffix} h1:{digest.decode()}")
    return "\n".join(lines) + "\n"


LOCKFILES = {"package-lock.json": package_lock, "pnpm-lock.yaml": pnpm_lock,
             "yarn.lock": yarn_lock, "poetry.lock": poetry_lock, "uv.lock": uv_lock,
             "Pipfile.lock": pipfile_lock, "go.sum": go_sum}


@pytest.mark.parametrize("name", sorted(LOCKFILES))
def test_lockfile_integrity_hashes_are_not_findings(git_repo: GitRepo, name: str) -> None:
    git_repo.write(f"web/{name}", LOCKFILES[name]())
    assert found(scan(git_repo)) == []


def test_lockfile_hashes_are_secrets_to_detect_secrets_plugins() -> None:
    """What the lockfile tests above rely on: these values are high entropy to detect-secrets
    (it skips most lockfiles whole instead; tminus reads them and knows their fields)."""
    assert flagged_by_detect_secrets([sri("js-tokens@4.0.0"), git_sha("left-pad"),
                                      sha256("pyproject"), sha256("Pipfile")])


# Where a person might paste a key into each lockfile, in its own syntax.
PASTED = {
    "package-lock.json": ('"license": "MIT"', f'"license": "MIT", "_token": "{AWS_KEY}"'),
    "pnpm-lock.yaml": ("    hasBin: true\n", f"    hasBin: true\n    token: {AWS_KEY}\n"),
    "yarn.lock": ('  version "1.4.0"\n', f'  version "1.4.0"\n  token "{AWS_KEY}"\n'),
    "poetry.lock": ('reference = "v0.9.1"\n', f'reference = "v0.9.1"\ntoken = "{AWS_KEY}"\n'),
    "uv.lock": ('requires-python = ">=3.11"\n',
                f'requires-python = ">=3.11"\ntoken = "{AWS_KEY}"\n'),
    "Pipfile.lock": ('"index": "pypi"', f'"index": "{AWS_KEY}"'),
    "go.sum": ("v0.21.0/go.mod", f"v0.21.0/go.mod {AWS_KEY}"),
}


@pytest.mark.parametrize("name", sorted(LOCKFILES))
def test_aws_key_pasted_into_a_lockfile_is_found(git_repo: GitRepo, name: str) -> None:
    old, new = PASTED[name]
    text = LOCKFILES[name]()
    assert old in text
    git_repo.write(f"web/{name}", text.replace(old, new, 1))
    line = next(n for n, content in enumerate(text.replace(old, new, 1).splitlines(), 1)
                if AWS_KEY in content)
    assert found(scan(git_repo)) == [(f"web/{name}", line, "AWS Access Key")]


def test_private_key_pasted_into_a_lockfile_is_found(git_repo: GitRepo) -> None:
    git_repo.write("poetry.lock", poetry_lock() + "\n" + PEM)
    assert [(path, kind) for path, _, kind in found(scan(git_repo))] == [
        ("poetry.lock", "Private Key")]


def test_lockfile_hashes_are_not_findings_with_a_detect_secrets_baseline(
        git_repo: GitRepo) -> None:
    """A baseline brings its own filter list (``is_lock_file`` among them): the field rules
    still apply, and a pasted key is still found rather than skipped with the whole file."""
    git_repo.write("pnpm-lock.yaml", pnpm_lock())
    old, new = PASTED["Pipfile.lock"]
    git_repo.write("Pipfile.lock", pipfile_lock().replace(old, new))
    git_repo.commit("lockfiles")
    exe = Path(sys.executable).with_name("detect-secrets")
    done = subprocess.run([str(exe), "scan", "--no-verify"], cwd=git_repo.path, check=True,
                          capture_output=True, text=True)
    baseline = json.loads(done.stdout)
    assert {"path": "detect_secrets.filters.heuristic.is_lock_file"} in baseline["filters_used"]
    baseline["results"] = {}
    git_repo.write(".secrets.baseline", json.dumps(baseline, indent=2))
    git_repo.commit("baseline")
    result = scan_repository(git_repo.path, ScanOptions(use_cache=False))
    assert result.baseline_used
    assert [(h.path, h.kind) for h in result.findings] == [("Pipfile.lock", "AWS Access Key")]


# --- tminus's release files and image digests ----------------------------------------------------


def write_release_files(repo: GitRepo) -> None:
    """A release as create-release and build write it, with tminus's own renderers."""
    commit = git_sha("source commit")
    checkpoint = sha256("model_epoch_100.pt")
    repo.write("checkpoints/VERSION_v0.2.0.txt", render_version_file(VersionFile(
        "v0.2.0", commit, "2025-10-14T15:30:00Z",
        {"model_epoch_100.pt": checkpoint, "tokenizer/vocab.bin": sha256("vocab")})))
    repo.write("checkpoints/VERSION_v0.1.0.txt",  # the T-1 document's own layout
               f"v0.1.0\nCommit: {commit[:8]}\nDate: 2025-09-01T10:00:00Z\n\n"
               f"Checkpoint Files:\n  model_epoch_100.pt: {checkpoint}\n")
    manifest = mf.Manifest(
        "v0.2.0", "2025-10-14T15:30:00Z", mf.GitInfo(commit, "main", "v0.2.0"),
        [mf.Artifact("checkpoints/model_epoch_100.pt", 104857600, checkpoint)],
        {"api": mf.ImageRecord("registry.example.com/shop/api:v0.2.0",
                               f"sha256:{sha256('api image')}",
                               f"registry.example.com/shop/api@sha256:{sha256('api push')}")})
    text = mf.render(manifest)
    repo.write("releases/manifest_v0.2.0.json", text)
    repo.write("releases/manifest_v0.2.0.sha256",
               mf.render_checksum(Path("releases/manifest_v0.2.0.json"), text.encode()))


def test_release_files_are_not_findings_without_any_exclude(git_repo: GitRepo) -> None:
    write_release_files(git_repo)
    assert SecretsSettings().exclude == ["vendor/*", "node_modules/*", "*.min.js"]
    assert flagged_by_detect_secrets([git_sha("source commit"), sha256("model_epoch_100.pt")])
    assert found(scan(git_repo, exclude=tuple(SecretsSettings().exclude))) == []


def test_aws_key_pasted_into_a_release_file_is_found(git_repo: GitRepo) -> None:
    write_release_files(git_repo)
    path = git_repo.path / "releases/manifest_v0.2.0.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"branch": "main"',
                                                             f'"branch": "{AWS_KEY}"'))
    assert [(p, kind) for p, _, kind in found(scan(git_repo))] == [
        ("releases/manifest_v0.2.0.json", "AWS Access Key")]


def test_image_digests_in_docs_code_and_config_are_not_findings(git_repo: GitRepo) -> None:
    image_id, pushed = sha256("api image"), sha256("api push")
    git_repo.write("docs/deploy.md", f"# Deploy\n\nPin the image:\n\n"
                                     f"    registry.example.com/shop/api@sha256:{pushed}\n")
    git_repo.write("deploy/images.txt", f"api@sha256:{pushed}\nworker@sha256:{image_id}\n")
    git_repo.write("deploy/pins.py", f'API = "registry.example.com/shop/api@sha256:{pushed}"\n'
                                     f'API_ID = "sha256:{image_id}"\n')
    git_repo.write("k8s/api.yaml", "spec:\n  containers:\n    - name: api\n"
                                   f"      image: registry.example.com/shop/api@sha256:{pushed}\n")
    assert found(scan(git_repo)) == []


def test_subresource_integrity_hashes_in_html_are_not_findings(git_repo: GitRepo) -> None:
    digest = "sha384-" + base64.b64encode(hashlib.sha384(b"bootstrap.min.css").digest()).decode()
    git_repo.write("app/templates/base.html",
                   f'<link rel="stylesheet" href="https://cdn.example.invalid/b.min.css"\n'
                   f'      integrity="{digest}" crossorigin="anonymous">\n')
    assert found(scan(git_repo)) == []


def test_pre_commit_hook_revisions_are_not_findings(git_repo: GitRepo) -> None:
    git_repo.write(".pre-commit-config.yaml",
                   "repos:\n  - repo: https://github.com/pre-commit/pre-commit-hooks\n"
                   f"    rev: {git_sha('hooks v4.5.0')}\n    hooks:\n      - id: check-yaml\n")
    assert found(scan(git_repo)) == []


def test_aws_key_in_the_pre_commit_config_is_still_found(git_repo: GitRepo) -> None:
    key = "AKIAIOSFODNN7EXAMPLF"  # pragma: allowlist secret
    git_repo.write(".pre-commit-config.yaml",
                   f"repos:\n  - repo: local\n    rev: {git_sha('x')}\n"
                   f"    env: {{AWS_ACCESS_KEY_ID: {key}}}\n")
    assert [kind for _, _, kind in found(scan(git_repo))] == ["AWS Access Key"]


def test_unlabelled_64_hex_value_in_code_is_still_reported(git_repo: GitRepo) -> None:
    git_repo.write("app/settings.py", f'WEBHOOK_SIGNING_KEY = "{sha256("signing")}"\n')
    assert found(scan(git_repo)) == [("app/settings.py", 1, "Hex High Entropy String")]


# --- large and binary files ----------------------------------------------------------------------


def track_without_hashing(repo: GitRepo, relative: str) -> None:
    """Make git track a path without reading it (git add would hash every byte of it)."""
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo.path, input=b"x",
                          capture_output=True, check=True).stdout.decode().strip()
    repo.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{relative}")


def bytes_read_by_this_process() -> int:
    with Path("/proc/self/io").open(encoding="ascii") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("rchar:"))


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_large_tracked_file_is_not_read(git_repo: GitRepo) -> None:
    """A 3 GiB sparse file (text for its first 8 KiB, an AWS key at its very end): were it
    read, the key would be found; this process reads a few MiB at most."""
    git_repo.write("app/main.py", "print('hello')\n")
    git_repo.commit("service")
    weights = git_repo.path / "checkpoints/model.safetensors.txt"
    weights.parent.mkdir(parents=True)
    with weights.open("wb") as handle:
        handle.write(b"# weights export\n" * 1024)
        handle.truncate(3 * 1024**3)
        handle.seek(3 * 1024**3 - 64)
        handle.write(f'\nKEY = "{AWS_KEY}"\n'.encode())
    track_without_hashing(git_repo, "checkpoints/model.safetensors.txt")
    before = bytes_read_by_this_process()
    result = scan_repository(git_repo.path, ScanOptions(baseline=None, use_cache=False,
                                                        workers=1))
    read = bytes_read_by_this_process() - before
    assert (found(result), result.large, result.binary, result.files) == ([], 1, 0, 1)
    assert read < 64 * 1024 * 1024


def test_file_over_the_configured_cap_is_skipped_and_counted_in_the_message(
        git_repo: GitRepo) -> None:
    git_repo.write("data/export.sql", "-- dump\n" * 150_000 + f"-- '{AWS_KEY}'\n")  # 1.1 MiB
    git_repo.write("app/main.py", "print('hello')\n")
    git_repo.commit("dump")
    ctx = CheckContext(root=git_repo.path, version=parse_version("v0.2.0"),
                       settings=Settings(secrets=SecretsSettings(max_file_bytes=1024 * 1024)))
    [finding] = check_hardcoded(ctx)
    assert finding.status is Status.PASS
    assert finding.message.endswith(", 1 over 1 MiB not read)")


def test_file_at_the_cap_is_scanned(git_repo: GitRepo) -> None:
    text = f'KEY = "{AWS_KEY}"\n'
    git_repo.write("app/keys.py", text)
    assert found(scan(git_repo, max_file_bytes=len(text))) == [
        ("app/keys.py", 1, "AWS Access Key")]


def test_file_with_a_nul_byte_in_its_first_8_kib_is_skipped_as_binary(git_repo: GitRepo) -> None:
    git_repo.write("assets/font.dat", b"FONT\0\1" + f'\nKEY = "{AWS_KEY}"\n'.encode())
    result = scan(git_repo)
    assert (found(result), result.binary) == ([], 1)


def test_nul_byte_after_the_first_8_kib_does_not_make_a_file_binary(git_repo: GitRepo) -> None:
    """git's rule, not a guess: only the first 8 KiB are looked at."""
    git_repo.write("app/keys.py", f'KEY = "{AWS_KEY}"\n' + "#\n" * 5000 + "\0\n")
    result = scan(git_repo)
    assert (found(result), result.binary) == ([("app/keys.py", 1, "AWS Access Key")], 0)


# --- the cache directory -------------------------------------------------------------------------


def test_scan_cache_directory_keeps_itself_out_of_git_status(git_repo: GitRepo) -> None:
    git_repo.write("app/main.py", "print('hello')\n")  # and no .gitignore at all
    git_repo.commit("service")
    scan_repository(git_repo.path, ScanOptions(baseline=None))
    assert (git_repo.path / ".tminus/cache/secrets.json").is_file()
    assert (git_repo.path / ".tminus/cache/.gitignore").read_text().splitlines()[-1] == "*"
    assert git_repo.git("status", "--porcelain", "--untracked-files=all") == ""


def test_worktree_clean_passes_after_the_hardcoded_scan_wrote_its_cache(git_repo: GitRepo) -> None:
    git_repo.write("app/main.py", "print('hello')\n")
    git_repo.commit("service")
    ctx = CheckContext(root=git_repo.path, settings=Settings(), version=parse_version("v0.2.0"))
    list(check_hardcoded(ctx))
    assert ctx.repo is not None
    assert check_worktree_clean(ctx, ctx.repo).status is Status.PASS
