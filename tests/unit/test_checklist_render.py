"""The T-1 checklist rendered from a predeploy Report: what is ticked, what is marked, what is
left for a person. The whole layout is pinned by a golden file (UPDATE_GOLDEN=1 regenerates it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from ops.checklist import CHECKLIST, render_checklist, tally
from ops.release.signoff import Signoff, SignoffRecord
from ops.report import Finding, Report, Section, Status
from tests.golden import match_golden

GOLDEN = Path(__file__).parent / "golden"
WHEN = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def sample_report(*, fail: bool = True) -> Report:
    """A report of all five sections, as predeploy produces it for the demo."""
    secrets = [
        Finding("secrets.env_file", Status.PASS, ".env exists, mode 0600"),
        Finding("secrets.required", Status.PASS, "all 8 required keys are set"),
        Finding("secrets.placeholder", Status.FAIL if fail else Status.PASS,
                ".env:6 STRIPE_API_KEY still holds the example value",
                hint="set the real key"),
        Finding("secrets.placeholder", Status.FAIL if fail else Status.PASS,
                ".env:5 JWT_SECRET looks like a placeholder (your-…-here)"),
        Finding("secrets.secret_key_strength", Status.PASS, "SECRET_KEY: 64 characters"),
        Finding("secrets.kms", Status.SKIP, "no KMS provider configured for 1 reference"),
    ]
    return Report(release="v0.2.0", project="/srv/demo", started_at=WHEN, duration_s=0.9,
                  tool_version="0.1.0", sections=[
        Section("release_tag", "Release Tag Validation", [
            Finding("release_tag.format", Status.PASS, "v0.2.0 is a valid release version"),
            Finding("release_tag.exists", Status.PASS, "tag v0.2.0 exists"),
            Finding("release_tag.annotated", Status.WARN, "tag v0.2.0 is lightweight"),
            Finding("release_tag.points_at_head", Status.PASS, "v0.2.0 is HEAD"),
            Finding("release_tag.commit", Status.PASS, "commit 1a2b3c4"),
        ], 0.1),
        Section("migrations", "Database Migrations", [
            Finding("migrations.present", Status.PASS, "2 migrations"),
            Finding("migrations.single_head", Status.PASS, "one head: 0002"),
            Finding("migrations.db_current", Status.SKIP,
                    "DATABASE_URL does not answer: connection refused"),
        ], 0.2),
        Section("secrets", "Secret Validation", secrets, 0.3),
        Section("artifacts", "Artifact Integrity", [
            Finding("artifacts.models_hashed", Status.PASS, "2 checkpoint files, 8 KiB hashed"),
            Finding("artifacts.images", Status.SKIP, "no Docker engine answers"),
        ], 0.1),
        Section("runbook", "Runbook Review", [
            Finding("runbook.exists", Status.PASS, "RUNBOOK.md exists"),
            Finding("runbook.section.health", Status.PASS, "Health checks"),
        ], 0.05),
    ])


def lines_with(text: str, finding_id: str) -> list[str]:
    return [line for line in text.splitlines() if f"({finding_id})" in line]


def test_checklist_matches_golden() -> None:
    record = SignoffRecord("v0.2.0", [Signoff("engineer", "Jiwoo Park", "2026-11-26T12:05:00Z",
                                              "jiwoo@deploy-1", "passed")])
    text = render_checklist(sample_report(), record, generated_at=WHEN)
    match_golden(GOLDEN / "checklist_v0.2.0.md", text)


def test_ten_sections_in_the_checklist_order() -> None:
    text = render_checklist(sample_report(), SignoffRecord("v0.2.0"), generated_at=WHEN)
    headings = re.findall(r"^## \d+\. (.+)$", text, flags=re.MULTILINE)
    assert headings == ["Release tag", "Database migrations", "Secrets", "Artifacts", "Runbook",
                        "Testing", "Communication", "Backup", "Monitoring", "Final verification"]
    assert len(CHECKLIST) == 10


def test_passed_finding_ticks_its_item_with_the_id_beside_it() -> None:
    text = render_checklist(sample_report(), SignoffRecord("v0.2.0"), generated_at=WHEN)
    assert lines_with(text, "release_tag.exists") == [
        "- [x] Release tag exists (release_tag.exists)"]


def test_failed_finding_leaves_the_item_unticked_marked_with_every_message() -> None:
    text = render_checklist(sample_report(), SignoffRecord("v0.2.0"), generated_at=WHEN)
    assert lines_with(text, "secrets.placeholder") == [
        "- [ ] ✗ No example or placeholder value left (secrets.placeholder) — "
        ".env:6 STRIPE_API_KEY still holds the example value; "
        ".env:5 JWT_SECRET looks like a placeholder (your-…-here)"]


def test_warning_is_unticked_for_review() -> None:
    text = render_checklist(sample_report(), SignoffRecord("v0.2.0"), generated_at=WHEN)
    assert lines_with(text, "release_tag.annotated") == [
        "- [ ] ! Tag is annotated (who, when, notes) (release_tag.annotated) — warning: "
        "tag v0.2.0 is lightweight"]


def test_skipped_check_is_unticked_with_its_reason_for_a_person() -> None:
    text = render_checklist(sample_report(), SignoffRecord("v0.2.0"), generated_at=WHEN)
    [line] = lines_with(text, "artifacts.images")
    assert line.startswith("- [ ] ○ Service images exist for this version")
    assert line.endswith("skipped: no Docker engine answers; verify by hand")


def test_item_whose_finding_is_missing_from_the_report_is_not_ticked() -> None:
    text = render_checklist(sample_report(), SignoffRecord("v0.2.0"), generated_at=WHEN)
    [line] = lines_with(text, "runbook.links")
    assert line.startswith("- [ ] Runbook links resolve (runbook.links) — not checked")


def test_finding_no_item_names_is_listed_in_its_section_with_its_message() -> None:
    text = render_checklist(sample_report(), SignoffRecord("v0.2.0"), generated_at=WHEN)
    secrets = text[text.index("## 3. Secrets"):text.index("## 4. Artifacts")]
    assert "- [ ] ○ no KMS provider configured for 1 reference (secrets.kms); verify by hand" \
        in secrets


def test_manual_items_are_never_ticked() -> None:
    text = render_checklist(sample_report(fail=False), SignoffRecord("v0.2.0"),
                            generated_at=WHEN)
    communication = text[text.index("## 7. Communication"):text.index("## 8. Backup")]
    items = [line for line in communication.splitlines() if line.startswith("- ")]
    assert items
    assert all(line.startswith("- [ ] ") for line in items)


def test_final_verification_is_ticked_only_when_every_section_passes() -> None:
    failing = render_checklist(sample_report(), SignoffRecord("v0.2.0"), generated_at=WHEN)
    passing = render_checklist(sample_report(fail=False), SignoffRecord("v0.2.0"),
                               generated_at=WHEN)
    assert lines_with(failing, "predeploy.result") == [
        "- [ ] ✗ All five predeploy sections passed (predeploy.result) — failed: "
        "Secret Validation"]
    assert lines_with(passing, "predeploy.result") == [
        "- [x] All five predeploy sections passed (predeploy.result)"]


def test_missing_sign_offs_are_shown_as_not_signed() -> None:
    text = render_checklist(sample_report(), SignoffRecord("v0.2.0"), generated_at=WHEN)
    assert "| engineer | _not signed_ | | |" in text
    assert "| reviewer | _not signed_ | | |" in text


def test_tally_counts_each_kind_of_item() -> None:
    counts = tally(sample_report())
    assert (counts.failed, counts.warned) == (2, 1)  # secrets.placeholder and predeploy.result
    assert counts.proven == 12
