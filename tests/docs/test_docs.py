"""Documentation is tested like code: the command reference is the code's, every example runs.

- ``docs/reference/cli.md`` must equal what :mod:`modelrouter.cli.reference` generates.
- Every fenced ``bash`` or ``console`` block of README.md and docs/ runs, in a scratch folder
  holding a copy of ``sample_data/`` and a link to ``models/`` (as from the repository's root),
  and must exit 0. ``console`` blocks run their ``$ `` lines; ``bash`` blocks run
  whole. A block that cannot run here is fenced as ``text``, with a sentence saying why.
- User documentation names no internal issue numbers or commit hashes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from modelrouter.cli.reference import render_reference

from tests.docs.examples import blocks

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_the_command_reference_is_generated_from_the_code() -> None:
    committed = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    assert committed == render_reference(), "docs/reference/cli.md is stale: run make docs-reference"


def test_every_page_has_examples_or_is_prose() -> None:
    """The extraction finds the blocks (a fence typo would silently skip every example)."""
    assert len(blocks()) >= 15


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_user_documentation_names_no_internal_history(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"\bissue[s]? #?\d+", text, re.I), f"{page.name} cites an internal issue"
    assert not re.search(r"\b(commit|HEAD at) [0-9a-f]{7,40}\b", text), f"{page.name} cites a commit"
    assert "CONTRACT" not in text and "FIELD-NOTES" not in text, f"{page.name} cites a file outside the repo"


def test_the_performance_page_is_generated_from_the_committed_bench_result() -> None:
    import json

    from benchmarks.report import render_page

    result = json.loads((ROOT / "docs" / "benchmarks" / "latest.json").read_text(encoding="utf-8"))
    committed = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    assert committed == render_page(result), "docs/performance.md is stale: rerun make bench"
