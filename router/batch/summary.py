"""What a run did: :class:`RunSummary`, whose :meth:`~RunSummary.as_dict` is the stats JSON
(docs/specification.md §6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelrouter import (
    ModelType,
    PoolStats,
)
from modelrouter.batch.options import DEFAULT_CHUNK_SIZE

if TYPE_CHECKING:
    pass


__all__ = ["RunSummary"]


@dataclass
class RunSummary:
    """What a run did; :meth:`as_dict` gives docs/specification.md §6's JSON."""

    input: str
    output: str
    model_type: ModelType
    model_path: str
    rejects: str | None = None
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    chunks: int = 0
    workers: int = 1
    chunk_size: int = DEFAULT_CHUNK_SIZE
    wall_seconds: float = 0.0
    #: From the moment the models were loaded to the end: the thread pool's own throughput.
    scoring_seconds: float = 0.0
    #: From the start of the run (options parsed, libraries imported) to the first chunk
    #: written: the fixed cost a small file pays, with the model load in it.
    first_chunk_seconds: float = 0.0
    pools: dict[str, PoolStats] = field(default_factory=dict)
    #: The rejects file was committed although the run failed (over its error budget).
    rejects_committed: bool = False
    #: What the explanations add up to (``probability``, ``margin``, ``value``) and how they
    #: were computed; None when the run explains nothing.
    explanation_space: str | None = None
    explanation_method: str | None = None

    def as_dict(self) -> dict[str, Any]:
        rate = self.rows_out / self.wall_seconds if self.wall_seconds > 0 else 0.0
        return {
            "summary": {
                "input": self.input,
                "output": self.output,
                "model_type": str(self.model_type),
                "model_path": self.model_path,
                "rows_in": self.rows_in,
                "rows_out": self.rows_out,
                "rows_rejected": self.rows_rejected,
                "chunks": self.chunks,
                "workers": self.workers,
                "chunk_size": self.chunk_size,
                "wall_seconds": self.wall_seconds,
                "rows_per_second": rate,
                "scoring_seconds": self.scoring_seconds,
                "load_seconds": self.wall_seconds - self.scoring_seconds,
                "first_chunk_seconds": self.first_chunk_seconds,
                "scoring_rows_per_second": (
                    self.rows_out / self.scoring_seconds if self.scoring_seconds > 0 else 0.0
                ),
                "rejects": self.rejects,
                "explanation_space": self.explanation_space,
                "explanation_method": self.explanation_method,
            },
            "pools": {name: stats.as_dict() for name, stats in self.pools.items()},
        }
