"""Shell examples of the documentation, group 0 (see tests/docs/examples.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.examples import group, run_example

EXAMPLES = group(0)


@pytest.mark.parametrize(("page", "line", "language", "body"), EXAMPLES)
def test_example_runs(tmp_path: Path, page: str, line: int, language: str, body: str) -> None:
    run_example(tmp_path, page, line, language, body)
