"""The predeploy runbook section on real repositories: one planted defect per finding id.

External links are checked against a real HTTP server on loopback (the stdlib's), never the
internet.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ops.checks import CheckContext
from ops.checks.runbook import run
from ops.config import Settings, load_settings
from ops.report import Finding, Status
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

RUNBOOK = """\
# Demo runbook

See [the schema](docs/SCHEMA.md#revisions) and [how to deploy](#deploy--roll-out).

## Health checks

- `curl -fsS http://127.0.0.1:8080/health`

## Deploy & roll-out

1. `invoke deploy production vX.Y.Z`

## Rollback

- `invoke rollback vX.Y.Z`

## Scaling

- `invoke scale app=5`

## Monitoring

- Alert on error rate above 5 %.

## Emergency contacts

| role | who | how |
|---|---|---|
| On-call engineer | Jiwoo Park | +82-10-5555-0142 |
"""


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write("RUNBOOK.md", RUNBOOK)
    git_repo.write("docs/SCHEMA.md", "# Schema\n\n## Revisions\n\n- 0001 initial\n")
    git_repo.commit("docs: runbook")
    return git_repo


def check(repo: GitRepo, settings: Settings | None = None, *,
          online: bool = False) -> dict[str, Finding]:
    ctx = CheckContext(root=repo.path, settings=settings or Settings(),
                       version=parse_version("v0.2.0"), online=online)
    return {f.id: f for f in run(ctx)}


#: Skipped in a project without Prometheus files (the specs of the runbook text have none).
PROMTOOL_IDS = {"runbook.prometheus_config", "runbook.alert_rules"}


def not_passing(found: dict[str, Finding]) -> dict[str, Status]:
    """Findings that did not pass, leaving out the promtool ones skipped for want of files."""
    return {k: f.status for k, f in found.items() if f.status is not Status.PASS
            and not (k in PROMTOOL_IDS and f.status is Status.SKIP)}


def rewrite(repo: GitRepo, old: str, new: str) -> None:
    repo.write("RUNBOOK.md", RUNBOOK.replace(old, new))
    repo.commit("docs: edit runbook")


def test_clean_runbook_passes_every_runbook_check(repo: GitRepo) -> None:
    found = check(repo)
    assert list(found) == ["runbook.exists", "runbook.section.health", "runbook.section.rollback",
                           "runbook.section.scaling", "runbook.section.monitoring",
                           "runbook.fresh", "runbook.links", "runbook.contacts",
                           "runbook.prometheus_config", "runbook.alert_rules"]
    assert not_passing(found) == {}


def test_missing_runbook_fails_exists_and_skips_the_sections(git_repo: GitRepo) -> None:
    git_repo.commit("empty")
    found = check(git_repo)
    assert found["runbook.exists"].status is Status.FAIL
    assert found["runbook.exists"].message == "RUNBOOK.md does not exist"
    assert found["runbook.section.rollback"].status is Status.SKIP


def test_runbook_that_is_not_utf8_fails_exists_naming_the_line(git_repo: GitRepo) -> None:
    git_repo.write("RUNBOOK.md", b"# Runbook\n\n## Rollback\n\ncaf\xe9\n")
    git_repo.commit("latin-1")
    finding = check(git_repo)["runbook.exists"]
    assert finding.status is Status.FAIL
    assert finding.message == "RUNBOOK.md is not UTF-8 text (first bad byte on line 5)"


def test_missing_rollback_section_fails_only_that_section(repo: GitRepo) -> None:
    rewrite(repo, "## Rollback\n\n- `invoke rollback vX.Y.Z`\n\n", "")
    found = check(repo)
    assert not_passing(found) == {"runbook.section.rollback": Status.FAIL}
    assert found["runbook.section.rollback"].message == "RUNBOOK.md has no rollback section"


def test_heading_without_content_fails_its_section(repo: GitRepo) -> None:
    rewrite(repo, "- `invoke scale app=5`\n", "")
    found = check(repo)
    assert not_passing(found) == {"runbook.section.scaling": Status.FAIL}
    assert "heading 'Scaling' has nothing under it" in found["runbook.section.scaling"].message


def test_heading_inside_a_code_block_is_not_a_section(repo: GitRepo) -> None:
    rewrite(repo, "## Monitoring\n\n- Alert on error rate above 5 %.\n",
            "```\n## Monitoring\n```\n")
    assert not_passing(check(repo)) == {"runbook.section.monitoring": Status.FAIL}


def test_korean_headings_satisfy_the_sections(git_repo: GitRepo) -> None:
    git_repo.write("RUNBOOK.md", "\n\n".join([
        "# 운영 문서", "## 헬스체크", "상태를 확인한다.", "## 롤백 절차", "`invoke rollback`",
        "## 스케일링", "`invoke scale app=3`", "## 모니터링", "대시보드를 본다.",
        "## 비상 연락처", "- 박지우 010-5555-0142"]) + "\n")
    git_repo.commit("docs: 한국어 런북")
    assert not_passing(check(git_repo)) == {}


def test_configured_synonym_names_a_section(repo: GitRepo) -> None:
    rewrite(repo, "## Scaling", "## Elasticity")
    settings = load_settings({"runbook": {"sections": {
        "health": ["health checks"], "rollback": ["rollback"], "scaling": ["elasticity"],
        "monitoring": ["monitoring"], "contacts": ["emergency contacts"]}}})
    assert not_passing(check(repo, settings)) == {}


def test_runbook_older_than_max_age_warns_fresh(git_repo: GitRepo) -> None:
    git_repo.write("RUNBOOK.md", RUNBOOK)
    git_repo.write("docs/SCHEMA.md", "# Schema\n\n## Revisions\n")
    git_repo.git("add", "-A")
    old = "2020-01-01T12:00:00+00:00"
    subprocess.run(["git", "commit", "-q", "-m", "old runbook"], cwd=git_repo.path, check=True,
                   env={**os.environ, "GIT_AUTHOR_DATE": old, "GIT_COMMITTER_DATE": old})
    found = check(git_repo)
    assert not_passing(found) == {"runbook.fresh": Status.WARN}
    assert "(2020-01-01)" in found["runbook.fresh"].message
    assert found["runbook.fresh"].message.endswith("more than 90")


def test_uncommitted_runbook_warns_fresh(git_repo: GitRepo) -> None:
    git_repo.write("docs/SCHEMA.md", "# Schema\n\n## Revisions\n")
    git_repo.commit("schema")
    git_repo.write("RUNBOOK.md", RUNBOOK)
    found = check(git_repo)
    assert found["runbook.fresh"].status is Status.WARN
    assert found["runbook.fresh"].message == "RUNBOOK.md has never been committed"


def test_link_to_missing_file_fails_links_with_line(repo: GitRepo) -> None:
    rewrite(repo, "docs/SCHEMA.md#revisions", "docs/MISSING.md")
    found = check(repo)
    assert not_passing(found) == {"runbook.links": Status.FAIL}
    assert "line 3: docs/MISSING.md (no such file)" in found["runbook.links"].message


def test_anchor_to_missing_heading_fails_links(repo: GitRepo) -> None:
    rewrite(repo, "(#deploy--roll-out)", "(#deploy)")
    assert "#deploy (no such heading)" in check(repo)["runbook.links"].message


def test_anchor_into_another_file_is_checked_against_its_headings(repo: GitRepo) -> None:
    rewrite(repo, "docs/SCHEMA.md#revisions", "docs/SCHEMA.md#history")
    assert "(no heading #history in SCHEMA.md)" in check(repo)["runbook.links"].message


def test_link_outside_the_repository_fails_links(repo: GitRepo) -> None:
    rewrite(repo, "docs/SCHEMA.md#revisions", "../../etc/passwd")
    assert "(points outside the repository)" in check(repo)["runbook.links"].message


def test_external_links_are_not_fetched_offline(repo: GitRepo) -> None:
    rewrite(repo, "docs/SCHEMA.md#revisions", "http://127.0.0.1:9/never")
    finding = check(repo)["runbook.links"]
    assert finding.status is Status.PASS
    assert finding.message == "1 local link(s) resolve; 1 external not checked (use --online)"


class _Handler(BaseHTTPRequestHandler):
    """/ok 200, /gone 404, /busy 429, /nohead 405 on HEAD and 200 on GET."""

    def do_HEAD(self) -> None:
        code = {"/ok": 200, "/gone": 404, "/busy": 429, "/nohead": 405}.get(self.path, 404)
        self.send_response(code)
        self.end_headers()

    def do_GET(self) -> None:
        code = {"/ok": 200, "/busy": 429, "/nohead": 200}.get(self.path, 404)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("path", ["/ok", "/busy", "/nohead"])
def test_online_link_that_answers_passes(repo: GitRepo, server: str, path: str) -> None:
    rewrite(repo, "docs/SCHEMA.md#revisions", f"{server}{path}")
    finding = check(repo, online=True)["runbook.links"]
    assert finding.status is Status.PASS
    assert finding.message == "1 local link(s) resolve, 1 external checked"


def test_online_link_answering_404_fails_links(repo: GitRepo, server: str) -> None:
    rewrite(repo, "docs/SCHEMA.md#revisions", f"{server}/gone")
    finding = check(repo, online=True)["runbook.links"]
    assert finding.status is Status.FAIL
    assert f"{server}/gone (HTTP 404)" in finding.message


def test_online_link_nobody_answers_fails_links(repo: GitRepo) -> None:
    rewrite(repo, "docs/SCHEMA.md#revisions", "http://127.0.0.1:9/never")
    finding = check(repo, online=True)["runbook.links"]
    assert finding.status is Status.FAIL
    assert "(connection failed)" in finding.message


@pytest.mark.parametrize("who", ["[On-call engineer]", "TBD"])
def test_placeholder_contact_warns_contacts(repo: GitRepo, who: str) -> None:
    rewrite(repo, "Jiwoo Park", who)
    found = check(repo)
    assert not_passing(found) == {"runbook.contacts": Status.WARN}
    assert who in found["runbook.contacts"].message


def test_missing_contacts_section_warns_contacts(repo: GitRepo) -> None:
    rewrite(repo, "## Emergency contacts", "## Appendix")
    assert not_passing(check(repo)) == {"runbook.contacts": Status.WARN}


def test_configured_runbook_path_resolves_links_from_its_own_directory(repo: GitRepo) -> None:
    (repo.path / "docs" / "ops").mkdir()
    Path(repo.path / "RUNBOOK.md").rename(repo.path / "docs" / "ops" / "runbook.md")
    repo.commit("move runbook")
    found = check(repo, load_settings({"runbook": {"path": "docs/ops/runbook.md"}}))
    assert found["runbook.exists"].message == "docs/ops/runbook.md (7 headings)"
    assert "docs/SCHEMA.md#revisions (no such file)" in found["runbook.links"].message


# --- promtool: the Prometheus config and its alert rules -----------------------------------------

PROMETHEUS_YML = """\
global:
  scrape_interval: 15s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["app:8000"]
"""
ALERTS_YML = """\
groups:
  - name: t1
    rules:
      - alert: HighErrorRate
        expr: sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(x[5m])) > 0.05
        for: 5m
"""


def with_prometheus(repo: GitRepo, alerts: str = ALERTS_YML,
                    config: str = PROMETHEUS_YML) -> GitRepo:
    repo.write("prometheus/prometheus.yml", config)
    repo.write("prometheus/alerts.yml", alerts)
    repo.commit("monitoring: prometheus config and alert rules")
    return repo


def need_promtool() -> None:
    from ops.runtime.prometheus import promtool
    from tests.conftest import need

    if promtool() is None:
        need("promtool (Debian's prometheus package) is not installed")


def test_project_without_prometheus_files_skips_both_promtool_findings_with_the_reason(
        repo: GitRepo) -> None:
    found = check(repo)
    for fid in ("runbook.prometheus_config", "runbook.alert_rules"):
        assert found[fid].status is Status.SKIP
        assert "no prometheus/prometheus.yml or prometheus.yml" in found[fid].message
    assert "ops.runbook.prometheus_config" in (found["runbook.prometheus_config"].hint or "")


def test_valid_prometheus_config_and_rules_pass_promtool(repo: GitRepo) -> None:
    need_promtool()
    found = check(with_prometheus(repo))
    assert found["runbook.prometheus_config"].status is Status.PASS
    assert found["runbook.alert_rules"].status is Status.PASS
    assert found["runbook.alert_rules"].message == (
        "promtool check rules: 1 rule(s) in prometheus/alerts.yml")


def test_alert_rule_with_a_broken_expression_fails_alert_rules_with_promtools_reason(
        repo: GitRepo) -> None:
    need_promtool()
    broken = ALERTS_YML.replace("> 0.05", "> > 0.05")
    found = check(with_prometheus(repo, alerts=broken))
    assert found["runbook.alert_rules"].status is Status.FAIL
    assert "parse error" in found["runbook.alert_rules"].message


def test_config_naming_a_missing_rule_file_fails_both_findings(repo: GitRepo) -> None:
    need_promtool()
    found = check(with_prometheus(repo, config=PROMETHEUS_YML.replace("alerts.yml", "gone.yml")))
    assert found["runbook.prometheus_config"].status is Status.FAIL
    assert found["runbook.alert_rules"].status is Status.FAIL
    assert found["runbook.alert_rules"].message == (
        "rule file gone.yml (listed in prometheus/prometheus.yml) does not exist")


def test_promtool_on_the_projects_path_is_never_run(repo: GitRepo,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A promtool planted in the repository and put first on PATH is not the one run."""
    need_promtool()
    planted = repo.path / "bin" / "promtool"
    planted.parent.mkdir()
    planted.write_text("#!/bin/sh\ntouch planted-ran\nexit 0\n")
    planted.chmod(0o755)
    monkeypatch.setenv("PATH", f"{planted.parent}:{os.environ['PATH']}")
    broken = ALERTS_YML.replace("> 0.05", "> > 0.05")
    found = check(with_prometheus(repo, alerts=broken))
    assert found["runbook.alert_rules"].status is Status.FAIL
    assert not (repo.path / "planted-ran").exists()


# The stock Prometheus image layout: the project's prometheus/ folder is bind-mounted at
# /etc/prometheus and the config lists its rule files by their paths inside the container.
CONTAINER_CONFIG = PROMETHEUS_YML.replace("  - alerts.yml", "  - /etc/prometheus/rules/*.yml")
PROMETHEUS_COMPOSE = """\
services:
  prometheus:
    image: prom/prometheus
    volumes:
      - ./prometheus:/etc/prometheus:ro
      - prometheus-data:/prometheus
volumes:
  prometheus-data:
"""


def with_container_paths(repo: GitRepo, config: str = CONTAINER_CONFIG,
                         compose: str | None = PROMETHEUS_COMPOSE) -> GitRepo:
    repo.write("prometheus/prometheus.yml", config)
    repo.write("prometheus/rules/alerts.yml", ALERTS_YML)
    if compose is not None:
        repo.write("docker-compose.yml", compose)
    repo.commit("monitoring: rule files named by their container paths")
    return repo


def test_rule_files_listed_by_container_path_are_checked_through_the_compose_bind_mount(
        repo: GitRepo) -> None:
    need_promtool()
    found = check(with_container_paths(repo))
    assert found["runbook.prometheus_config"].status is Status.PASS
    assert found["runbook.alert_rules"].status is Status.PASS
    assert found["runbook.alert_rules"].message == (
        "promtool check rules: 1 rule(s) in prometheus/rules/alerts.yml")


def test_broken_rule_behind_a_container_path_fails_alert_rules(repo: GitRepo) -> None:
    need_promtool()
    with_container_paths(repo)
    repo.write("prometheus/rules/alerts.yml", ALERTS_YML.replace("> 0.05", "> > 0.05"))
    repo.commit("monitoring: a broken rule")
    found = check(repo)
    assert found["runbook.alert_rules"].status is Status.FAIL
    assert "parse error" in found["runbook.alert_rules"].message


def test_config_naming_a_container_rule_file_passes_on_its_syntax_not_on_host_paths(
        repo: GitRepo) -> None:
    """promtool's own check would say the container path does not exist on this host."""
    need_promtool()
    config = CONTAINER_CONFIG.replace("rules/*.yml", "rules/alerts.yml")
    found = check(with_container_paths(repo, config=config))
    assert found["runbook.prometheus_config"].status is Status.PASS
    assert "--syntax-only" in found["runbook.prometheus_config"].message
    assert "/etc/prometheus/rules/alerts.yml" in found["runbook.prometheus_config"].message
    assert found["runbook.alert_rules"].status is Status.PASS


def test_container_rule_path_no_bind_mount_maps_skips_alert_rules_with_the_reason(
        repo: GitRepo) -> None:
    need_promtool()
    found = check(with_container_paths(repo, compose=None))
    assert found["runbook.alert_rules"].status is Status.SKIP
    assert "/etc/prometheus/rules/*.yml" in found["runbook.alert_rules"].message
    assert "bind mount" in found["runbook.alert_rules"].message


def test_rule_file_promtool_rejects_names_the_file_and_promtools_reason(repo: GitRepo) -> None:
    """promtool prints a bare ``FAILED:`` and the reason on the next line (stderr)."""
    need_promtool()
    found = check(with_prometheus(repo, alerts=ALERTS_YML.replace("for: 5m", "for: 5x")))
    message = found["runbook.alert_rules"].message
    assert found["runbook.alert_rules"].status is Status.FAIL
    assert "prometheus/alerts.yml" in message
    assert 'not a valid duration string: "5x"' in message
    assert "5x" in found["runbook.prometheus_config"].message


def test_promtool_quoting_a_remote_write_url_never_shows_its_password(repo: GitRepo) -> None:
    """promtool quotes the URL it could not parse, credentials and all."""
    need_promtool()
    config = PROMETHEUS_YML + (
        "remote_write:\n  - url: \"https://metrics:Hunter2-rw-Secret@mimir example.com/push\"\n")
    found = check(with_prometheus(repo, config=config))
    finding = found["runbook.prometheus_config"]
    assert finding.status is Status.FAIL
    assert "invalid character" in finding.message
    assert "Hunter2-rw-Secret" not in finding.message
    assert "Hunter2-rw-Secret" not in str(finding.detail)


def test_values_under_secret_keys_of_the_config_are_hidden_from_promtools_words() -> None:
    from ops.checks.runbook import fit_to_show

    config = ("scrape_configs:\n  - job_name: a\n    authorization:\n"
              "      credentials: tok-Abc123-Secret\n")
    said = 'FAILED: cannot parse "tok-Abc123-Secret" in job a'
    assert fit_to_show(said, config) == 'FAILED: cannot parse "***" in job a'


def test_rule_files_beside_the_config_folder_are_named_by_their_own_path(repo: GitRepo) -> None:
    need_promtool()
    repo.write("alerts/api.yml", ALERTS_YML)
    found = check(with_prometheus(repo, config=PROMETHEUS_YML.replace(
        "  - alerts.yml", "  - ../alerts/*.yml")))
    assert found["runbook.alert_rules"].message == (
        "promtool check rules: 1 rule(s) in alerts/api.yml")


def test_config_promtool_cannot_unmarshal_says_what_it_could_not(repo: GitRepo) -> None:
    """promtool's 'yaml: unmarshal errors:' is followed by the line that says which."""
    need_promtool()
    found = check(with_prometheus(repo, config="rule_files: alerts.yml\n"))
    message = found["runbook.prometheus_config"].message
    assert "yaml: unmarshal errors: line 1: cannot unmarshal" in message


def test_a_rule_files_entry_that_is_no_file_pattern_fails_the_rules_finding_naming_it(
        repo: GitRepo) -> None:
    found = check(with_prometheus(repo, config=PROMETHEUS_YML.replace("  - alerts.yml",
                                                                      "  - null")))
    assert found["runbook.alert_rules"].status is Status.FAIL
    assert "lists null, which is no file pattern" in found["runbook.alert_rules"].message
