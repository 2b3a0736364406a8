"""Runbook parsing: GitHub's heading slugs, section synonyms, and what counts as content."""

from __future__ import annotations

import pytest

from ops.checks.runbook import find_section, github_slug, parse_markdown


@pytest.mark.parametrize(("heading", "slug"), [
    ("Health checks", "health-checks"),
    ("Deploy & roll-out", "deploy--roll-out"),
    ("What's `invoke deploy`?", "whats-invoke-deploy"),
    ("1. Rollback (code only)", "1-rollback-code-only"),
    ("롤백 절차", "롤백-절차"),
    ("snake_case stays", "snake_case-stays"),
])
def test_github_slug_rules(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_repeated_headings_get_numbered_slugs() -> None:
    doc = parse_markdown("# Setup\n\ntext\n\n## Setup\n\ntext\n\n## Setup\n\ntext\n")
    assert [h.slug for h in doc.headings] == ["setup", "setup-1", "setup-2"]


def test_heading_text_ignores_markup_but_keeps_code() -> None:
    doc = parse_markdown("## **Roll** back with `invoke rollback`\n\nx\n")
    assert doc.headings[0].text == "Roll back with invoke rollback"


@pytest.mark.parametrize("heading", ["Rollback", "3. Rolling back", "Rollback procedure",
                                     "롤백 절차"])
def test_rollback_synonyms_match(heading: str) -> None:
    doc = parse_markdown(f"## {heading}\n\nsteps\n")
    assert find_section(doc, ["rollback", "rolling back", "롤백"]) is not None


def test_synonym_must_be_a_whole_word_in_english() -> None:
    doc = parse_markdown("## Rollbacks are rare\n\nsteps\n")
    assert find_section(doc, ["rollback"]) is None


def test_subheadings_with_content_count_as_content() -> None:
    doc = parse_markdown("## Monitoring\n\n### Dashboards\n\n- grafana\n\n## Next\n\nx\n")
    heading = find_section(doc, ["monitoring"])
    assert heading is not None
    assert doc.has_content(heading)


def test_an_empty_section_stops_at_the_next_heading_of_its_level() -> None:
    doc = parse_markdown("## Scaling\n\n## Monitoring\n\n- alerts\n")
    heading = find_section(doc, ["scaling"])
    assert heading is not None
    assert not doc.has_content(heading)


def test_links_and_images_are_collected_with_their_lines() -> None:
    doc = parse_markdown("# T\n\nsee [a](docs/a.md)\n\n![img](img/x.png) and <https://e.x/y>\n")
    assert [(link.target, link.line) for link in doc.links] == [
        ("docs/a.md", 3), ("img/x.png", 5), ("https://e.x/y", 5)]
