"""scikit-learn's false "`delayed` should be used with `Parallel`" warning is never shown.

Two threads scoring through scikit-learn's ``Parallel`` at once (Python < 3.14) can make one
of them issue it (router/known_warnings.py explains the race); the CLI drops it where it turns
warnings into ``warning:`` lines (docs/scoring.md).
"""

from __future__ import annotations

import json
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from modelrouter.cli.exits import warnings_to_stderr
from modelrouter.known_warnings import SKLEARN_PARALLEL_DELAYED, is_known_false_warning

from tests.commands import run_modelrouter

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CSV = ROOT / "sample_data" / "wine.csv"

#: The warning's full text in scikit-learn 1.9.1.
FALSE_WARNING = (
    "`sklearn.utils.parallel.delayed` should be used with `sklearn.utils.parallel.Parallel` to "
    "make it possible to propagate the scikit-learn configuration of the current thread to "
    "the joblib workers."
)

needs_shared_filters = pytest.mark.skipif(
    sys.version_info >= (3, 14), reason="from 3.14 on, scikit-learn reads per-context warning filters"
)


def test_the_known_false_warning_is_recognised_by_category_and_text() -> None:
    assert FALSE_WARNING.startswith(SKLEARN_PARALLEL_DELAYED)
    assert is_known_false_warning(UserWarning(FALSE_WARNING), UserWarning)
    assert is_known_false_warning(FALSE_WARNING, UserWarning)
    assert not is_known_false_warning(FALSE_WARNING, DeprecationWarning)
    assert not is_known_false_warning(f"model.pkl: {FALSE_WARNING}", UserWarning)
    assert not is_known_false_warning("a model warning", UserWarning)


@pytest.mark.parametrize("quiet", [False, True])
def test_the_known_false_warning_is_neither_printed_nor_recorded(
    quiet: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    with warnings_to_stderr(quiet) as recorded:
        warnings.simplefilter("always")  # inside the block's own filters (pytest's: errors)
        warnings.warn(FALSE_WARNING, UserWarning, stacklevel=1)
        warnings.warn("a real warning", UserWarning, stacklevel=1)
        warnings.warn(FALSE_WARNING, UserWarning, stacklevel=1)
        warnings.warn("a real warning", UserWarning, stacklevel=1)
    assert recorded == ["a real warning"]
    assert capsys.readouterr().err == ("" if quiet else "warning: a real warning\n")


class _HeldPattern:
    """A warning filter's message pattern that holds the first thread reading ``.pattern``.

    Placed first in the filters, it is read by scikit-learn's ``_FuncWrapper`` just after
    ``warnings.resetwarnings()``, before any filter is added back: holding that thread there
    keeps the process's filter list empty — the moment of the race, made to last.
    """

    def __init__(self) -> None:
        self.holder: threading.Thread | None = None
        self.emptied = threading.Event()
        self.release = threading.Event()

    def match(self, text: str) -> bool:  # as a compiled pattern in warnings.filters: never
        return False

    @property
    def pattern(self) -> str:
        if self.holder is threading.current_thread() and not self.release.is_set():
            self.emptied.set()
            assert self.release.wait(30)
        return "\0never\0"


@contextmanager
def _filters_emptied_by_another_thread(score: Any) -> Iterator[None]:
    """While inside, another thread is in scikit-learn's ``Parallel`` task with the process's
    warning filters emptied (``score()`` is what it runs)."""
    held = _HeldPattern()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            score()
        except BaseException as exc:
            failures.append(exc)

    with warnings.catch_warnings():
        # (typeshed types the filters as a sequence of compiled patterns; it is a list)
        cast(list[Any], warnings.filters).insert(0, ("ignore", held, Warning, None, 0))
        thread = threading.Thread(target=run, name="scoring-in-the-window")
        held.holder = thread
        thread.start()
        try:
            assert held.emptied.wait(30), failures
            assert warnings.filters == []
            yield
        finally:
            held.release.set()
            thread.join(30)
    assert not thread.is_alive()
    assert not failures


@pytest.fixture(scope="module")
def forest() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    rows = np.random.default_rng(0).normal(size=(60, 3))
    return RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0).fit(rows, rows[:, 0] > 0)


@needs_shared_filters
def test_a_forest_scored_while_another_thread_empties_the_filters_warns_falsely(forest: Any) -> None:
    """The race is real: scikit-learn warns, and the predictions are right all the same."""
    rows = np.zeros((5, 3))
    expected = forest.predict_proba(rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = forest.predict_proba(rows)
        assert not caught  # alone: no warning
        with _filters_emptied_by_another_thread(lambda: forest.predict_proba(rows)):
            got = forest.predict_proba(rows)
    assert caught
    assert all(is_known_false_warning(w.message, w.category) for w in caught), [
        str(w.message) for w in caught
    ]
    assert str(caught[0].message) == FALSE_WARNING
    np.testing.assert_array_equal(got, expected)


@needs_shared_filters
def test_the_false_warning_of_the_race_is_not_shown(forest: Any, capsys: pytest.CaptureFixture[str]) -> None:
    rows = np.zeros((5, 3))
    with warnings_to_stderr(quiet=False) as recorded:
        warnings.simplefilter("always")  # inside the block's own filters (pytest's: errors)
        with _filters_emptied_by_another_thread(lambda: forest.predict_proba(rows)):
            forest.predict_proba(rows)
        warnings.warn("a real warning", UserWarning, stacklevel=1)
    assert recorded == ["a real warning"]
    assert capsys.readouterr().err == "warning: a real warning\n"


def test_predict_with_workers_shows_and_records_no_false_warning(
    wine: tuple[pd.DataFrame, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four threads scoring a forest whose every call issues the false warning: no ``warning:``
    line, nothing under ``warnings`` in the stats JSON."""
    import joblib

    from tests.slow_estimators import RacedForest

    frame, labels = wine
    joblib.dump(
        RacedForest(n_estimators=3, max_depth=3, random_state=0).fit(frame, labels), tmp_path / "raced.pkl"
    )
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # tests.slow_estimators, as a user's own estimator module
    out, stats = tmp_path / "scored.csv", tmp_path / "stats.json"
    result = run_modelrouter(
        "predict-proba", SAMPLE_CSV, "-m", tmp_path / "raced.pkl", "-o", out, "--stats-json", stats,
        "--workers", "4", "--pool-size", "4", "--chunk-size", "16", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stderr
    assert json.loads(stats.read_text())["warnings"] == []
    assert len(pd.read_csv(out)) == len(pd.read_csv(SAMPLE_CSV))
