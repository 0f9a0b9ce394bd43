"""The batch engine: score files and datasets without the command shell.

Usable from Python (an Airflow task, a notebook) with no Typer or rich involved::

    from modelrouter.batch import RunOptions, score_file

    summary = score_file(RunOptions(input="in.parquet", output="out.parquet", keep=["id"]))

Names are re-exported lazily so that importing this package costs nothing until one is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelrouter.batch.datasets import DatasetPlan, DatasetSummary, plan_dataset
    from modelrouter.batch.run import ProgressSink, RunOptions, RunSummary, prepare_pool, score_file

__all__ = [
    "DatasetPlan",
    "DatasetSummary",
    "ProgressSink",
    "RunOptions",
    "RunSummary",
    "plan_dataset",
    "prepare_pool",
    "score_file",
]

_HOME = {
    "DatasetPlan": "datasets",
    "DatasetSummary": "datasets",
    "plan_dataset": "datasets",
    "ProgressSink": "run",
    "RunOptions": "run",
    "RunSummary": "run",
    "prepare_pool": "run",
    "score_file": "run",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
