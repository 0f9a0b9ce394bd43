"""Datasets: a directory or glob of files in, one output file per input file out (docs/specification.md §9).

Each output is written atomically, so an existing output file is a complete one: that is
what makes ``--resume`` safe. ``_SUCCESS`` (empty) is written last when every file
succeeded; a run that starts removes a stale one, so downstream jobs never see a marker
beside a half-finished set.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from modelrouter import DataError, OutputError, PoolStats, get_router
from modelrouter.batch.dataio import FileFormat
from modelrouter.batch.run import ProgressSink, RunOptions, RunSummary, prepare_pool, score_file
from modelrouter.storage import object_store as storage
from modelrouter.storage.commit import RunOutputs, sweep_stale_temps, text_output
from modelrouter.storage.formats import COMPRESSION_SUFFIXES, data_suffix, split_name, with_data_suffix
from modelrouter.storage.object_store import Location
from modelrouter.storage.run_paths import PathConflict

__all__ = [
    "SUCCESS_MARKER",
    "DatasetPlan",
    "DatasetSummary",
    "is_dataset",
    "plan_dataset",
    "planned_outputs",
    "score_dataset_locally",
]

SUCCESS_MARKER = "_SUCCESS"
#: The files a dataset lists: CSV (also tab-separated, also compressed) and Parquet.
_DATA_SUFFIXES = frozenset(
    [".csv", ".tsv", ".parquet", ".pq", *(f"{d}{c}" for d in (".csv", ".tsv") for c in COMPRESSION_SUFFIXES)]
)


def is_data_file(name: str | Path) -> bool:
    """Whether a dataset lists a file of this name (``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``…)."""
    return data_suffix(name).lower() in _DATA_SUFFIXES


_GLOB_MAGIC = re.compile(r"[*?[]")
_NOTHING_FOUND = (
    "no .csv, .tsv, .parquet or .pq {what} (or compressed .csv.gz, .csv.bz2, .csv.zst) found; "
    "pass --allow-empty if an empty set is a success"
)


def is_dataset(input_path: str) -> bool:
    """True for a directory or a glob pattern (a single file is not a dataset).

    On an object store: a glob, a URI ending in ``/``, or a prefix with objects under it.
    """
    if storage.is_uri(input_path):
        if _GLOB_MAGIC.search(input_path) or input_path.endswith("/"):
            return True
        return storage.info(storage.Uri.parse(input_path)) == "directory"
    return input_path != "-" and (Path(input_path).is_dir() or bool(_GLOB_MAGIC.search(input_path)))


def natural_key(path: Location) -> list[Any]:
    """Sort key where ``part-2`` comes before ``part-10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


@dataclass(frozen=True)
class DatasetPlan:
    """Input files (natural order) and the output file each one gets."""

    root: Location
    out_dir: Location
    inputs: tuple[Location, ...]
    outputs: tuple[Location, ...]

    @property
    def pairs(self) -> Iterable[tuple[Location, Location]]:
        return zip(self.inputs, self.outputs, strict=True)


def plan_dataset(
    input_path: str, output: str | None, output_format: FileFormat | None, *, allow_empty: bool = False
) -> DatasetPlan:
    """Expand a directory (recursively) or glob into input files and their output paths.

    Each output keeps its input's relative name and whole data suffix (``day.csv.gz`` →
    ``day.csv.gz``); ``output_format`` replaces that suffix (``day.parquet``, ``day.csv``).
    Raises :class:`DataError` when nothing matches (unless ``allow_empty``: the plan is then
    empty) or when a file the set lists cannot be read
    (a dangling symlink, a FIFO or device, no read permission, a folder that cannot be
    listed: the set would be incomplete, so it is never skipped silently),
    :class:`OutputError` when the output directory is a file and :class:`PathConflict` when
    two inputs would be written to the same output.
    """
    if storage.is_uri(input_path):
        return _plan_remote(input_path, output, output_format, allow_empty)
    if Path(input_path).is_dir():
        root = Path(input_path)
        found = _walk(root)
    else:
        prefix = _GLOB_MAGIC.split(input_path, maxsplit=1)[0]
        root = Path(prefix) if prefix.endswith("/") else Path(prefix).parent
        _check_listable(root, Path(input_path).relative_to(root).parts)
        found = [
            Path(p) for p in glob.glob(input_path, recursive=True) if not Path(p).is_dir() and is_data_file(p)
        ]
    # Beside the input, never inside it: a rerun must not read its own outputs.
    absolute_root = root.resolve()
    out_dir: Location = (
        storage.as_location(output)
        if output
        else absolute_root.with_name(absolute_root.name + ".predictions")
    )
    out_resolved: Path | None = None
    if isinstance(out_dir, Path):
        if out_dir.exists() and not out_dir.is_dir():
            raise OutputError(f"{out_dir}: is a file; with a dataset as input, -o names an output directory")
        out_resolved = out_dir.resolve()
    files = sorted(
        (
            p
            for p in found
            # Hidden and underscore names are not data, folders included (Spark's in-progress
            # `_temporary/`, `.spark-staging/`, `_SUCCESS`): as for object stores.
            if not any(part.startswith((".", "_")) for part in _relative_parts(p, root))
            and not (out_resolved is not None and p.resolve().is_relative_to(out_resolved))
        ),
        key=natural_key,
    )
    for path in files:
        _check_readable(path)
    if not files and not allow_empty:
        raise DataError(f"{input_path}: {_NOTHING_FOUND.format(what='files')}")
    return _pair(root, out_dir, files, output_format)


def _relative_parts(path: Path, root: Path) -> tuple[str, ...]:
    try:
        return path.relative_to(root).parts
    except ValueError:  # (a glob's match is always under its root; be safe)
        return (path.name,)


def _pair(
    root: Location, out_dir: Location, files: Sequence[Location], output_format: FileFormat | None
) -> DatasetPlan:
    """Each input's output: the same relative name under ``out_dir``, suffix per the format."""
    outputs: list[Location] = []
    sources: dict[str, Location] = {}
    for source in files:
        relative = source.relative_to(root)  # type: ignore[arg-type]  # root has the source's kind
        suffix = (
            {"csv": ".csv", "parquet": ".parquet"}[output_format]
            if output_format
            else data_suffix(str(source))
        )
        target = out_dir / with_data_suffix(relative, suffix)
        if str(target) in sources:
            raise PathConflict(
                f"{target}: both {sources[str(target)]} and {source} would be written there; "
                "rename one of them or choose another --output-format",
                "-o",
            )
        sources[str(target)] = source
        outputs.append(target)
    return DatasetPlan(root, out_dir, tuple(files), tuple(outputs))


def _walk(root: Path) -> list[Path]:
    """The data files under ``root``, recursively (symlinked folders are not followed, like
    ``Path.rglob``); a folder that cannot be listed is a :class:`DataError`."""

    def fail(exc: OSError) -> None:
        raise DataError(
            f"{exc.filename}: cannot list this folder of the dataset ({exc.strerror}); "
            "the set would be incomplete"
        )

    found: list[Path] = []
    for folder, _dirs, names in os.walk(root, onerror=fail):
        found += [Path(folder, n) for n in names if is_data_file(n)]
    return found


def _check_listable(root: Path, parts: Sequence[str]) -> None:
    """For a glob: every folder the pattern can descend into must be listable (``glob``
    itself skips the ones it cannot read without a word)."""
    recursive = "**" in parts

    def relevant(depth_parts: Sequence[str]) -> bool:
        for i, name in enumerate(depth_parts):
            if i >= len(parts) - 1:
                return recursive
            if parts[i] == "**":
                return True
            if not fnmatch.fnmatchcase(name, parts[i]):
                return False
        return True

    for folder, dirs, _names in os.walk(root):
        depth = Path(folder).relative_to(root).parts
        dirs[:] = [d for d in dirs if relevant((*depth, d))]
        for name in dirs:
            path = Path(folder, name)
            if not os.access(path, os.R_OK | os.X_OK):
                raise DataError(
                    f"{path}: cannot list this folder of the dataset (permission denied); "
                    "the set would be incomplete"
                )


def _check_readable(path: Path) -> None:
    """A listed file must be a readable regular file: anything else fails the run (exit 3)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: a dangling symlink in the dataset (its target does not exist)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read this file of the dataset ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) else "not a regular file"
        raise DataError(f"{path}: {kind}, not a regular file; a dataset holds regular files only")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: cannot read this file of the dataset (permission denied)")


def planned_outputs(plan: DatasetPlan, options: RunOptions) -> list[tuple[Location, Location]]:
    """Every file the run may write, with the input it comes from: outputs and their rejects."""
    planned: list[tuple[Location, Location]] = []
    for source, target in plan.pairs:
        planned.append((target, source))
        rejects = per_file_options(options, source, target).rejects
        if rejects is not None:
            planned.append((storage.as_location(rejects), source))
    return planned


def _plan_remote(
    input_path: str, output: str | None, output_format: FileFormat | None, allow_empty: bool = False
) -> DatasetPlan:
    """:func:`plan_dataset` for a prefix or glob on an object store."""
    pattern = storage.Uri.parse(input_path)
    if _GLOB_MAGIC.search(input_path):
        root, found = storage.glob(pattern)
    else:
        root, found = pattern, storage.list_files(pattern)
    out: storage.Location = (
        storage.as_location(output) if output else root.with_name(root.name + ".predictions")
    )
    files = sorted(
        (
            u
            for u in found
            if is_data_file(u.name)
            and not any(part.startswith((".", "_")) for part in u.relative_to(root).parts)
            and not (isinstance(out, storage.Uri) and u.is_relative_to(out))
        ),
        key=natural_key,
    )
    if not files and not allow_empty:
        raise DataError(f"{input_path}: {_NOTHING_FOUND.format(what='objects')}")
    return _pair(root, out, files, output_format)


@dataclass
class DatasetSummary:
    """A whole dataset run: totals, per-file summaries, pool stats (per Dask worker too)."""

    input: str
    output: str
    engine: str
    model_type: str = ""
    model_path: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    workers: int = 1
    chunk_size: int = 0
    wall_seconds: float = 0.0
    pools: dict[str, PoolStats | dict[str, Any]] = field(default_factory=dict)
    worker_pools: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    worker_loads: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, summary: dict[str, Any]) -> None:
        self.files.append(summary)
        self.model_type = self.model_type or str(summary["model_type"])
        self.model_path = self.model_path or str(summary["model_path"])

    def as_dict(self) -> dict[str, Any]:
        def total(key: str) -> int:
            return int(sum(f[key] for f in self.files))

        rows_out = total("rows_out")
        return {
            "summary": {
                "input": self.input,
                "output": self.output,
                "engine": self.engine,
                "model_type": self.model_type,
                "model_path": self.model_path,
                "files": len(self.files),
                "files_skipped": len(self.skipped),
                "rows_in": total("rows_in"),
                "rows_out": rows_out,
                "rows_rejected": total("rows_rejected"),
                "chunks": total("chunks"),
                "workers": self.workers,
                "chunk_size": self.chunk_size,
                "wall_seconds": self.wall_seconds,
                "rows_per_second": rows_out / self.wall_seconds if self.wall_seconds > 0 else 0.0,
            },
            "pools": {
                name: stats.as_dict() if isinstance(stats, PoolStats) else stats
                for name, stats in self.pools.items()
            },
            "workers": {
                address: {"pools": pools, "loads": self.worker_loads.get(address, {})}
                for address, pools in self.worker_pools.items()
            },
            "files": self.files,
        }


def begin(plan: DatasetPlan, resume: bool) -> tuple[list[tuple[Location, Location]], list[str]]:
    """Create the output folders, drop a stale ``_SUCCESS``; return the pairs to do and the
    inputs skipped by ``resume`` (their output exists, so it is complete)."""
    try:
        if isinstance(plan.out_dir, Path):
            plan.out_dir.mkdir(parents=True, exist_ok=True)
            for target in plan.outputs:
                target.parent.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        storage.remove(plan.out_dir / SUCCESS_MARKER)
    except OSError as exc:
        raise OutputError(f"{plan.out_dir}: cannot create the output directory ({exc.strerror})") from None
    # A killed run's temporary files are not outputs (--resume never counts them): remove them.
    # Object stores have none (an upload is invisible until completed): local folders only.
    sweep_stale_temps(
        sorted({p for p in (plan.out_dir, *(t.parent for t in plan.outputs)) if isinstance(p, Path)})
    )
    done = {str(t) for t in plan.outputs if resume and storage.exists(t)}
    todo = [(s, t) for s, t in plan.pairs if str(t) not in done]
    skipped = [str(s) for s, t in plan.pairs if str(t) in done]
    return todo, skipped


def finish(plan: DatasetPlan, side_files: Sequence[tuple[Location, str]] = ()) -> None:
    """Mark the whole set complete: the side files (stats, metrics) and ``_SUCCESS`` in one
    commit, ``_SUCCESS`` last, after every output file is in place."""
    outputs = RunOutputs()
    try:
        for path, text in side_files:
            outputs.add(text_output(path, text))
        outputs.add(text_output(plan.out_dir / SUCCESS_MARKER, ""))
        outputs.commit(final=True)
    finally:
        outputs.abort()


def per_file_options(options: RunOptions, source: Location, target: Location) -> RunOptions:
    """The options for one file of the set; rejects go beside that file's output."""
    rejects = None
    if options.on_error == "skip":
        rejects = str(target.with_name(f"{split_name(target.name)[0]}.rejects.csv"))
    return replace(options, input=str(source), output=str(target), rejects=rejects)


def score_dataset_locally(
    options: RunOptions,
    plan: DatasetPlan,
    resume: bool,
    progress: ProgressSink | None,
    on_file: Callable[[Location], None] | None = None,
    side_files: Callable[[dict[str, Any]], Sequence[tuple[Location, str]]] | None = None,
) -> DatasetSummary:
    """Score the files one after another through one pool and the usual thread pool.

    Each file's output (and rejects) is committed on its own; ``side_files`` gives, from the
    finished report, the files committed with ``_SUCCESS`` at the end."""
    started = time.perf_counter()
    summary = DatasetSummary(input=options.input, output=str(plan.out_dir), engine="local")
    todo, summary.skipped = begin(plan, resume)
    summary.chunk_size = options.chunk_size
    if not todo:  # --resume with every output in place: nothing to load, nothing to score
        summary.workers = 0
        summary.wall_seconds = time.perf_counter() - started
        finish(plan, side_files(summary.as_dict()) if side_files is not None else ())
        return summary
    pool = prepare_pool(options)
    summary.workers = options.workers or pool.size
    for source, target in todo:
        result: RunSummary = score_file(
            per_file_options(options, source, target), progress, pool=pool, final=False
        )
        summary.add(result.as_dict()["summary"])
        if on_file is not None:
            on_file(source)
    summary.wall_seconds = time.perf_counter() - started
    summary.pools = {str(k): v for k, v in get_router().stats().items()}
    finish(plan, side_files(summary.as_dict()) if side_files is not None else ())
    return summary
