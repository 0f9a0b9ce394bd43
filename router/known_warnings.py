"""Warnings known to be false, which the CLI drops instead of showing (docs/scoring.md).

Standard library only: the CLI imports this before any model library is loaded.
"""

from __future__ import annotations

__all__ = ["SKLEARN_PARALLEL_DELAYED", "is_known_false_warning"]

#: The stable start of scikit-learn's warning that a task was not wrapped by its ``delayed``.
SKLEARN_PARALLEL_DELAYED = "`sklearn.utils.parallel.delayed` should be used with"


def is_known_false_warning(message: Warning | str, category: type[Warning]) -> bool:
    """Whether the warning ``message`` of ``category`` is one known to be false.

    There is one: scikit-learn's UserWarning "`sklearn.utils.parallel.delayed` should be used
    with `sklearn.utils.parallel.Parallel` …", issued when two threads score at once through
    scikit-learn's ``Parallel`` (a random forest's ``predict_proba``, with ``--workers`` ≥ 2 or
    under ``serve``) on Python before 3.14, where warning filters are process-wide.

    Each task ``Parallel`` runs enters ``warnings.catch_warnings()`` and calls
    ``warnings.resetwarnings()`` before re-adding the filters it captured, so for a moment the
    process's filter list is empty. A ``Parallel`` call starting in another thread in that
    moment captures the empty list, and each of its tasks then warns that it cannot pass the
    filters on, as if it had been dispatched without scikit-learn's ``delayed``. It was not:
    the predictions are unaffected (the configuration is passed on; only the filters, which
    matter for warnings raised inside the task, are lost). A warning filter cannot silence
    it, since the filters are what is momentarily empty, so the warning is recognised here,
    by its category and the start of its text, where it is shown.

    ``message`` is the warning or its text (as ``warnings.showwarning`` receives it).
    """
    return issubclass(category, UserWarning) and str(message).startswith(SKLEARN_PARALLEL_DELAYED)
