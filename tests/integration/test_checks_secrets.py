"""The predeploy secrets section on real repositories: one planted defect per finding id.

Secret values are generated at run time (or assembled from harmless halves), so this file itself
never trips the hardcoded-secret scan of the tminus repository.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from ops.checks import CheckContext, run_predeploy
from ops.checks.secrets import run
from ops.config import Settings, load_settings
from ops.report import Finding, Status, render_console, render_json, render_junit
from ops.secretscan import ScanOptions, scan_repository
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

AWS_KEY = "AKIA" + "J7QWERTYZX4PLMNB"
PEM_HEADER = "-----BEGIN RSA " + "PRIVATE KEY-----"

EXAMPLE = (
    "# Copy to .env\n"
    "DATABASE_URL=postgresql://app:" "change-me@db:5432/app\n"
    "REDIS_URL=redis://redis:6379/0\n"
    "SECRET_KEY=your-secret-key-here\n"
    "STRIPE_API_KEY=sk_test_your-stripe-key-here\n"
    "LOG_LEVEL=info\n"
)


def strong() -> str:
    return secrets.token_urlsafe(48)


def good_env(**override: str) -> dict[str, str]:
    values = {
        "DATABASE_URL": f"postgresql://app:{secrets.token_hex(12)}@db:5432/app",
        "REDIS_URL": "redis://redis:6379/0",
        "SECRET_KEY": strong(),
        "STRIPE_API_KEY": "rk_" + secrets.token_hex(16),  # pragma: allowlist secret
        "LOG_LEVEL": "info",
    }
    values.update(override)
    return values


def write_env(repo: GitRepo, values: dict[str, str] | str, *, mode: int = 0o600) -> Path:
    text = values if isinstance(values, str) else "".join(f"{k}={v}\n" for k, v in values.items())
    path = repo.write(".env", text)
    path.chmod(mode)
    return path


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write(".gitignore", ".env\n.tminus/\n")
    git_repo.write(".env.example", EXAMPLE)
    git_repo.write("app/main.py", 'import os\n\nDATABASE_URL = os.environ["DATABASE_URL"]\n')
    git_repo.commit("feat: service")
    write_env(git_repo, good_env())
    return git_repo


def check(repo: GitRepo, settings: Settings | None = None) -> dict[str, Finding]:
    ctx = CheckContext(root=repo.path, settings=settings or Settings(),
                       version=parse_version("v0.2.0"))
    return {f.id: f for f in run(ctx)}


def statuses(found: dict[str, Finding]) -> dict[str, Status]:
    return {k: f.status for k, f in found.items()}


# --- a clean repository --------------------------------------------------------------------------


def test_clean_repository_passes_every_secrets_check(repo: GitRepo) -> None:
    assert statuses(check(repo)) == {
        "secrets.env_file": Status.PASS,
        "secrets.syntax": Status.PASS,
        "secrets.duplicate": Status.PASS,
        "secrets.required": Status.PASS,
        "secrets.empty": Status.PASS,
        "secrets.placeholder": Status.PASS,
        "secrets.typo": Status.PASS,
        "secrets.secret_key_strength": Status.PASS,
        "secrets.url_format": Status.PASS,
        "secrets.hardcoded": Status.PASS,
    }


# --- one planted defect per id -------------------------------------------------------------------


def test_missing_env_file_fails_env_file_and_skips_the_value_checks(repo: GitRepo) -> None:
    (repo.path / ".env").unlink()
    found = check(repo)
    assert found["secrets.env_file"].status is Status.FAIL
    assert "does not exist" in found["secrets.env_file"].message
    assert found["secrets.required"].status is Status.SKIP
    assert found["secrets.required"].message == "not checked: .env does not exist"
    assert found["secrets.hardcoded"].status is Status.PASS


def test_world_readable_env_file_warns_with_its_mode(repo: GitRepo) -> None:
    write_env(repo, good_env(), mode=0o644)
    finding = check(repo)["secrets.env_file"]
    assert finding.status is Status.WARN
    assert finding.message == ".env is world-readable (mode 0644)"


def test_unparseable_line_fails_syntax_with_its_line_number_only(repo: GitRepo) -> None:
    values = good_env()
    text = "".join(f"{k}={v}\n" for k, v in values.items()) + "this is not an assignment\n"
    write_env(repo, text)
    found = check(repo)
    assert found["secrets.syntax"].status is Status.FAIL
    assert found["secrets.syntax"].message == ".env: 1 line(s) do not parse: line 6"
    assert [k for k, s in statuses(found).items() if s is not Status.PASS] == ["secrets.syntax"]


def all_text(found: dict[str, Finding]) -> str:
    return "\n".join(f"{f.message} {f.hint or ''} {f.detail or ''}" for f in found.values())


def test_bare_word_line_fails_syntax_by_line_number_and_is_no_key(repo: GitRepo) -> None:
    word = "Kc" + secrets.token_hex(8)
    write_env(repo, "".join(f"{k}={v}\n" for k, v in good_env().items()) + word + "\n")
    found = check(repo)
    assert found["secrets.syntax"].message == ".env: 1 line(s) do not parse: line 6"
    assert word not in all_text(found)
    assert found["secrets.typo"].status is Status.PASS


def test_unquoted_multi_line_private_key_fails_syntax_as_one_range_showing_no_line(
        repo: GitRepo) -> None:
    body = [secrets.token_urlsafe(48).replace("-", "+").replace("_", "/") for _ in range(3)]
    key = "\n".join([PEM_HEADER, *body, body[0][:20] + "==", "-----END RSA " "PRIVATE KEY-----"])
    write_env(repo, "".join(f"{k}={v}\n" for k, v in good_env().items())
              + f"TLS_KEY={key}\nAFTER=1\n")
    found = check(repo)
    assert found["secrets.syntax"].message == ".env: 6 line(s) do not parse: line 6-11"
    assert "AFTER" in check_values(repo)
    text = all_text(found)
    assert not any(part[:12] in text for part in body)


def test_quoted_multi_line_private_key_parses(repo: GitRepo) -> None:
    key = "\n".join([PEM_HEADER, secrets.token_urlsafe(48), "-----END RSA " "PRIVATE KEY-----"])
    write_env(repo, "".join(f"{k}={v}\n" for k, v in good_env().items()) + f'TLS_KEY="{key}"\n')
    assert check(repo)["secrets.syntax"].status is Status.PASS


def test_a_key_that_is_no_variable_name_fails_syntax_and_is_not_printed(repo: GitRepo) -> None:
    write_env(repo, "".join(f"{k}={v}\n" for k, v in good_env().items()) + "EVIL\x1b[2J=1\n")
    found = check(repo)
    assert found["secrets.syntax"].message == ".env: 1 line(s) do not parse: line 6"
    assert "\x1b" not in all_text(found)


def check_values(repo: GitRepo) -> dict[str, str]:
    from ops.runtime.envfile import parse_env_file

    return parse_env_file(repo.path / ".env", repo.path).values()


def test_key_set_twice_warns_duplicate_with_both_lines(repo: GitRepo) -> None:
    values = good_env()
    text = "".join(f"{k}={v}\n" for k, v in values.items()) + "LOG_LEVEL=debug\n"
    write_env(repo, text)
    found = check(repo)
    assert found["secrets.duplicate"].status is Status.WARN
    assert "LOG_LEVEL (lines 5, 6)" in found["secrets.duplicate"].message


def test_missing_required_key_fails_required_naming_the_key(repo: GitRepo) -> None:
    values = good_env()
    del values["STRIPE_API_KEY"]
    write_env(repo, values)
    found = check(repo)
    assert found["secrets.required"].status is Status.FAIL
    assert found["secrets.required"].message.endswith("lacks 1 required key(s): STRIPE_API_KEY")


def test_configured_required_list_replaces_the_template(repo: GitRepo) -> None:
    settings = load_settings({"secrets": {"required": ["SENTRY_DSN"]}})
    found = check(repo, settings)
    assert found["secrets.required"].status is Status.FAIL
    assert "SENTRY_DSN" in found["secrets.required"].message


def test_empty_required_value_fails_empty(repo: GitRepo) -> None:
    write_env(repo, good_env(STRIPE_API_KEY=""))
    found = check(repo)
    assert found["secrets.empty"].status is Status.FAIL
    assert found["secrets.empty"].message == "empty: STRIPE_API_KEY (line 4)"


def test_placeholder_value_fails_with_key_name_only(repo: GitRepo) -> None:
    # pragma: allowlist nextline secret
    write_env(repo, good_env(STRIPE_API_KEY="sk_test_your-stripe-key-here"))
    finding = check(repo)["secrets.placeholder"]
    assert finding.status is Status.FAIL
    assert finding.message == "STRIPE_API_KEY (line 4) still holds the example value"
    assert "your-stripe" not in finding.message


@pytest.mark.parametrize("value", ["changeme", "xxxxxxxx", "<fill me>", "TODO", "${UNSET_VAR}"])
def test_placeholder_shaped_value_fails_placeholder(repo: GitRepo, value: str) -> None:
    write_env(repo, good_env(STRIPE_API_KEY=value))
    finding = check(repo)["secrets.placeholder"]
    assert finding.status is Status.FAIL
    assert finding.message.startswith("STRIPE_API_KEY (line 4)")


def test_interpolation_of_a_defined_key_is_not_a_placeholder(repo: GitRepo) -> None:
    values = good_env()
    text = "".join(f"{k}={v}\n" for k, v in values.items()) + "CACHE_URL=${REDIS_URL}\n"
    write_env(repo, text)
    assert check(repo)["secrets.placeholder"].status is Status.PASS


def test_misspelt_key_warns_typo_with_the_suggestion(repo: GitRepo) -> None:
    values = good_env()
    values["DATABSE_URL"] = values.pop("DATABASE_URL")
    write_env(repo, values)
    found = check(repo)
    assert found["secrets.typo"].status is Status.WARN
    assert found["secrets.typo"].message == "DATABSE_URL — did you mean DATABASE_URL?"


def test_key_close_to_a_template_key_that_is_also_set_is_not_a_typo(repo: GitRepo) -> None:
    values = good_env()
    values["DATABASE_URLS"] = values["DATABASE_URL"]
    write_env(repo, values)
    assert check(repo)["secrets.typo"].status is Status.PASS


def test_short_secret_key_fails_strength_reporting_length_only(repo: GitRepo) -> None:
    short = "Wq7vZkPmYx9J"  # 12 characters, none of its 3-character runs is an English word
    write_env(repo, good_env(SECRET_KEY=short))
    findings = check(repo)
    finding = findings["secrets.secret_key_strength"]
    assert finding.status is Status.FAIL
    assert finding.message == "SECRET_KEY (line 3) is 12 characters (needs at least 32)"
    # the length is all that is said: no part of the value in any field of any finding, nor
    # in the JSON report, which is made of these dicts
    everything = json.dumps([f.to_dict() for f in findings.values()])
    runs = {short[i:i + 3] for i in range(len(short) - 2)}
    assert [run for run in runs if run in everything] == []


def test_insecure_prefix_fails_strength(repo: GitRepo) -> None:
    write_env(repo, good_env(SECRET_KEY="django-insecure-" + strong()))  # pragma: allowlist secret
    finding = check(repo)["secrets.secret_key_strength"]
    assert finding.status is Status.FAIL
    assert "known insecure prefix 'django-insecure-'" in finding.message


def test_repetitive_key_fails_strength_on_distinct_characters(repo: GitRepo) -> None:
    write_env(repo, good_env(SECRET_KEY="ab" * 20))
    finding = check(repo)["secrets.secret_key_strength"]
    assert finding.status is Status.FAIL
    assert "only 2 distinct characters in 40" in finding.message


def test_url_without_host_fails_url_format(repo: GitRepo) -> None:
    write_env(repo, good_env(REDIS_URL="redis-at-port-6379"))
    found = check(repo)
    assert found["secrets.url_format"].status is Status.FAIL
    assert found["secrets.url_format"].message == \
        "not a URL with scheme and host: REDIS_URL (line 2)"


def test_hardcoded_aws_key_in_tracked_file_fails_with_file_line_and_kind(repo: GitRepo) -> None:
    repo.write("app/settings.py", f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n')
    repo.commit("oops")
    finding = check(repo)["secrets.hardcoded"]
    assert finding.status is Status.FAIL
    assert "app/settings.py:1 (AWS Access Key)" in finding.message
    assert AWS_KEY not in json.dumps(finding.to_dict())


def test_allowlist_pragma_accepts_a_hardcoded_secret(repo: GitRepo) -> None:
    repo.write("tests/fixture.py", f'FAKE = "{AWS_KEY}"  # pragma: allowlist secret\n')
    repo.commit("fixture")
    assert check(repo)["secrets.hardcoded"].status is Status.PASS


def test_baseline_accepts_a_known_finding(repo: GitRepo) -> None:
    repo.write("docs/key.pem", PEM_HEADER + "\n")
    repo.commit("doc")
    done = subprocess.run([str(Path(sys.executable).with_name("detect-secrets")), "scan",
                           "--no-verify"], cwd=repo.path, capture_output=True, text=True,
                          check=True)
    repo.write(".secrets.baseline", done.stdout)
    repo.commit("baseline")
    finding = check(repo)["secrets.hardcoded"]
    assert finding.status is Status.PASS
    assert "2 accepted by the baseline" in finding.message  # the key and the template URL


def test_broken_baseline_fails_hardcoded_with_a_hint_not_a_traceback(repo: GitRepo) -> None:
    repo.write(".secrets.baseline", "{not json")
    repo.commit("bad baseline")
    finding = check(repo)["secrets.hardcoded"]
    assert finding.status is Status.FAIL
    assert finding.message.startswith(".secrets.baseline is not a readable detect-secrets")


def test_baseline_detect_secrets_cannot_load_fails_hardcoded_with_a_hint(repo: GitRepo) -> None:
    repo.write(".secrets.baseline", '{"results": {}, "plugins_used": [{"name": "Nope"}]}')
    repo.commit("odd baseline")
    finding = check(repo)["secrets.hardcoded"]
    assert finding.status is Status.FAIL
    assert finding.message.startswith("the detect-secrets baseline has settings")
    assert finding.hint == "regenerate it with `detect-secrets scan > .secrets.baseline`"


def test_untracked_vendored_and_binary_files_are_not_scanned(repo: GitRepo) -> None:
    repo.write("vendor/lib/keys.py", f'K = "{AWS_KEY}"\n')
    repo.write("assets/blob.bin", b"\0\1\2" + AWS_KEY.encode())
    repo.commit("vendored and binary")
    repo.write("scratch.py", f'K = "{AWS_KEY}"\n')  # never committed
    result = scan_repository(repo.path, ScanOptions())
    assert [h.path for h in result.findings] == [".env.example"]  # its example URL password
    assert (result.excluded, result.binary) == (1, 1)


# --- references ----------------------------------------------------------------------------------


def test_kms_reference_without_provider_is_skipped_never_passed(repo: GitRepo) -> None:
    # pragma: allowlist nextline secret
    write_env(repo, good_env(SECRET_KEY="vault://secret/app#SECRET_KEY"))
    found = check(repo)
    assert found["secrets.reference"].status is Status.SKIP
    assert "no vault provider is configured" in found["secrets.reference"].message
    assert found["secrets.secret_key_strength"].status is Status.SKIP


def test_reference_resolved_by_in_memory_provider_is_strength_checked(repo: GitRepo) -> None:
    provider_module = repo.path / "inmemory_vault.py"
    provider_module.write_text(
        "from ops.kms import InMemoryProvider\n"
        "def provider():\n"
        # pragma: allowlist nextline secret
        "    return InMemoryProvider({'vault://secret/app#SECRET_KEY': 'short'})\n",
        encoding="utf-8")
    sys.path.insert(0, str(repo.path))
    try:
        settings = load_settings({"secrets": {"providers": {"vault": "inmemory_vault:provider"}}})
        # pragma: allowlist nextline secret
        write_env(repo, good_env(SECRET_KEY="vault://secret/app#SECRET_KEY"))
        found = check(repo, settings)
    finally:
        sys.path.remove(str(repo.path))
    assert found["secrets.reference"].status is Status.PASS
    assert found["secrets.secret_key_strength"].message == \
        "SECRET_KEY (line 3) is 5 characters (needs at least 32)"


# --- bad input -----------------------------------------------------------------------------------


def test_binary_env_file_fails_env_file_without_traceback(repo: GitRepo) -> None:
    (repo.path / ".env").write_bytes(b"\x00\x01\x02garbage\xff")
    finding = check(repo)["secrets.env_file"]
    assert finding.status is Status.FAIL
    assert finding.message == ".env is binary, not a dotenv text file"


def test_non_utf8_env_file_fails_env_file_naming_the_line(repo: GitRepo) -> None:
    (repo.path / ".env").write_bytes(b"LOG_LEVEL=info\nSECRET_KEY=caf\xe9\n")
    finding = check(repo)["secrets.env_file"]
    assert finding.status is Status.FAIL
    assert finding.message == ".env is not UTF-8 text (first bad byte on line 2)"


def test_crlf_bom_export_and_quoted_multiline_values_parse(repo: GitRepo) -> None:
    values = good_env()
    lines = [f"export {k}={v}" if k == "LOG_LEVEL" else f'{k}="{v}"' for k, v in values.items()]
    lines.append('NOTE="first line\nsecond line"')
    (repo.path / ".env").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    (repo.path / ".env").chmod(0o600)
    found = check(repo)
    assert found["secrets.syntax"].status is Status.PASS
    assert found["secrets.required"].status is Status.PASS


# --- the scan engine -----------------------------------------------------------------------------


def test_scan_reports_the_same_findings_as_detect_secrets_scan(repo: GitRepo) -> None:
    repo.write("app/settings.py", f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\npassword = "{strong()}"\n')
    repo.write("conf/app.ini", f"[db]\npassword = {strong()}\n")
    repo.write("deploy/values.yaml", f"api:\n  token: {strong()}\n")
    repo.write("docs/notes.txt", f"token: {strong()}\n")
    repo.write("docs/key.md", PEM_HEADER + "\n")
    repo.commit("secrets everywhere")
    done = subprocess.run([str(Path(sys.executable).with_name("detect-secrets")), "scan",
                           "--no-verify"], cwd=repo.path, capture_output=True, text=True,
                          check=True)
    reference = {(name, item["line_number"], item["type"])
                 for name, items in json.loads(done.stdout)["results"].items()
                 for item in items}
    ours = {(h.path, h.line, h.kind)
            for h in scan_repository(repo.path, ScanOptions(baseline=None)).findings}
    assert ours == reference
    assert len(reference) >= 5


def test_second_scan_reuses_the_cache_and_a_changed_file_is_rescanned(repo: GitRepo) -> None:
    first = scan_repository(repo.path)
    second = scan_repository(repo.path)
    repo.write("app/main.py", f'KEY = "{AWS_KEY}"\n')
    third = scan_repository(repo.path)
    assert (first.scanned, second.scanned, second.cached) == (first.files, 0, first.files)
    assert third.scanned == 1
    assert [(h.path, h.kind) for h in third.findings] == [
        (".env.example", "Basic Auth Credentials"), ("app/main.py", "AWS Access Key")]


def test_no_cache_option_rescans_every_file(repo: GitRepo) -> None:
    scan_repository(repo.path)
    again = scan_repository(repo.path, ScanOptions(use_cache=False))
    assert (again.scanned, again.cached) == (again.files, 0)


# --- nothing leaks -------------------------------------------------------------------------------


def test_no_planted_secret_appears_in_console_json_or_junit(repo: GitRepo, tmp_path: Path) -> None:
    key = strong()
    stripe = "sk_live_" + secrets.token_hex(12)
    write_env(repo, good_env(SECRET_KEY=key[:10], STRIPE_API_KEY=stripe,
                             DATABSE_URL=f"postgresql://app:{key}@db/app"), mode=0o644)
    repo.write("app/settings.py", f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\nSTRIPE = "{stripe}"\n')
    repo.commit("leaky")
    ctx = CheckContext(root=repo.path, settings=Settings(), version=parse_version("v0.2.0"))
    report = run_predeploy(ctx, strict=True)
    outputs = [render_console(report), render_json(report), render_junit(report)]
    assert any("secrets.hardcoded" in text for text in outputs)
    for text in outputs:
        for planted in (key, key[:10], stripe, AWS_KEY):
            assert planted not in text


@pytest.mark.parametrize("garbage", ["{not json", '{"engine": 1, "files": []}'])
def test_corrupt_cache_is_ignored_and_rewritten(repo: GitRepo, garbage: str) -> None:
    cache = repo.path / ".tminus" / "cache" / "secrets.json"
    cache.parent.mkdir(parents=True)
    cache.write_text(garbage, encoding="utf-8")
    first = scan_repository(repo.path)
    assert first.scanned == first.files
    assert scan_repository(repo.path).cached == first.files


def test_malformed_cache_entry_is_rescanned(repo: GitRepo) -> None:
    scan_repository(repo.path)
    cache = repo.path / ".tminus" / "cache" / "secrets.json"
    data = json.loads(cache.read_text(encoding="utf-8"))
    data["files"]["app/main.py"]["hits"] = [["not", "a", "hit", "shape"]]
    cache.write_text(json.dumps(data), encoding="utf-8")
    assert scan_repository(repo.path).scanned == 1
