"""Datasets: a directory or glob of files in, one output file per input file out (docs/specification.md §9).

Each output is written atomically, so an existing output file is a complete one, and it
records the identity of the input it was made from (:mod:`modelrouter.storage.input_identity`):
that is what makes ``--resume`` safe. ``_SUCCESS`` (empty) is written last when every file
succeeded; a run that starts removes a stale one, so downstream jobs never see a marker
beside a half-finished set.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from modelrouter import DataError, OutputError, PoolStats, get_router
from modelrouter.batch.dataio import FileFormat
from modelrouter.batch.run import ProgressSink, RunOptions, RunSummary, prepare_pool, score_file
from modelrouter.storage import object_store as storage
from modelrouter.storage.commit import RunOutputs, sweep_stale_temps, text_output
from modelrouter.storage.formats import FORMATS, data_suffix, known_suffixes, split_name, with_data_suffix
from modelrouter.storage.input_identity import identity_matches, recorded_identity
from modelrouter.storage.location import DataLocation
from modelrouter.storage.object_store import Location
from modelrouter.storage.run_paths import PathConflict
from modelrouter.storage.tree_walk import natural_key as _natural_key
from modelrouter.storage.tree_walk import walk_tree

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
#: The files a dataset lists: every registered format (compressed text formats too).
_DATA_SUFFIXES = frozenset(known_suffixes())


def is_data_file(name: str | Path) -> bool:
    """Whether a dataset lists a file of this name (``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``…)."""
    return data_suffix(name).lower() in _DATA_SUFFIXES


_GLOB_MAGIC = re.compile(r"[*?[]")
_NOTHING_FOUND = (
    "no .csv, .tsv, .parquet or .pq {what} (or compressed .csv.gz, .csv.bz2, .csv.zst) found; "
    "pass --allow-empty if an empty set is a success"
)


def is_dataset(input_path: str | DataLocation) -> bool:
    """True for a directory or a glob pattern (a single file is not a dataset).

    On an object store: a glob, a URI ending in ``/``, or a prefix with objects under it. A
    database URL is never one (its rows are one input).
    """
    source = DataLocation.of(input_path)
    text = source.text
    if source.is_object and source.uri is not None:
        if _GLOB_MAGIC.search(text) or text.endswith("/"):
            return True
        return storage.info(source.uri) == "directory"
    return source.is_local and (source.path.is_dir() or bool(_GLOB_MAGIC.search(text)))


def natural_key(path: Location) -> list[Any]:
    """Sort key where ``part-2`` comes before ``part-10``."""
    return _natural_key(path)


@dataclass(frozen=True)
class DatasetPlan:
    """Input files (natural order) and the output file each one gets."""

    root: Location
    out_dir: Location
    inputs: tuple[Location, ...]
    outputs: tuple[Location, ...]
    #: The output folder (or a link to it) where the walk met it inside the input: not read.
    not_read: tuple[Location, ...] = ()

    @property
    def pairs(self) -> Iterable[tuple[Location, Location]]:
        return zip(self.inputs, self.outputs, strict=True)


def plan_dataset(
    input_path: str | DataLocation,
    output: str | DataLocation | None,
    output_format: FileFormat | None,
    *,
    allow_empty: bool = False,
) -> DatasetPlan:
    """Expand a directory (recursively) or glob into input files and their output paths.

    One walker lists both forms (:func:`modelrouter.storage.tree_walk.walk_tree`): symlinks
    to folders and files are followed, each real folder is listed once, loops end.
    Each output keeps its input's relative name and whole data suffix (``day.csv.gz`` →
    ``day.csv.gz``); ``output_format`` replaces that suffix (``day.parquet``, ``day.csv``).
    Raises :class:`DataError` when nothing matches (unless ``allow_empty``: the plan is then
    empty) or when an entry the set needs cannot be read (a dangling symlink, a symlink
    loop, a FIFO or device, no read permission, a folder that cannot be listed: the set would
    be incomplete, so it is never skipped silently), :class:`OutputError` when the output
    directory is a file, and :class:`PathConflict` (a usage error) when two inputs would be
    written to the same output or when the output folder overlaps the input (see
    :func:`check_output_folder`).
    """
    source = DataLocation.of(input_path)
    target = DataLocation.of(output) if output else None
    if source.is_object:
        return _plan_remote(source, target, output is not None, output_format, allow_empty)
    input_path = source.text
    parts: tuple[str, ...] | None
    if Path(input_path).is_dir():
        root, parts = Path(input_path), None
    else:
        prefix = _GLOB_MAGIC.split(input_path, maxsplit=1)[0]
        root = Path(prefix) if prefix.endswith("/") else Path(prefix).parent
        parts = Path(input_path).relative_to(root).parts
    # Beside the input by default, never inside it: a rerun must not read its own outputs.
    absolute_root = root.resolve()
    out_dir: Location = (
        target.target if target else absolute_root.with_name(absolute_root.name + ".predictions")
    )
    out_real: str | None = None
    if isinstance(out_dir, Path):
        if out_dir.exists() and not out_dir.is_dir():
            raise OutputError(f"{out_dir}: is a file; with a dataset as input, -o names an output directory")
        out_real = os.path.realpath(out_dir)
        check_output_folder(root, out_dir, output is not None)
    walk = walk_tree(root, parts, is_data_file, exclude=out_real)
    files = sorted(walk.files, key=natural_key)
    if not files and not allow_empty:
        if not root.is_dir():
            raise DataError(
                f"{input_path}: the folder {root} does not exist, so nothing matches; "
                "pass --allow-empty if an empty set is a success"
            )
        raise DataError(f"{input_path}: {_NOTHING_FOUND.format(what='files')}")
    return replace(_pair(root, out_dir, files, output_format), not_read=walk.excluded)


def check_output_folder(root: Path, out_dir: Path, given: bool = True) -> None:
    """Refuse (usage error, exit 2) an output folder that is the input folder or contains it:
    the outputs would land among the inputs, and the next run would read them.

    An output folder *inside* the input is fine: the walk never enters it (under any name or
    link), so outputs are never read as inputs. Compared by real paths, so symlinks, ``..``
    and relative spellings are the same folder.
    """
    out_real, root_real = os.path.realpath(out_dir), os.path.realpath(root)
    relation = ""
    if out_real == root_real:
        relation = "is the input folder"
    elif Path(root_real).is_relative_to(out_real):
        relation = "contains the input folder"
    if relation:
        shown = f" {root}" + ("" if os.path.abspath(root) == root_real else f" (= {root_real})")
        if os.path.normpath(out_dir) == os.path.normpath(root):
            shown = ""  # `-o data` for the input `data`: naming it twice says nothing more
        raise PathConflict(
            f"{out_dir} {relation}{shown}: the outputs would land among the inputs and be read "
            f"by the next run; choose an output folder outside it (the default is "
            f"{Path(root_real).name}.predictions beside it) or inside it, which the run never "
            "lists (nothing was read or written)",
            "-o" if given else "INPUT",
        )


def _pair(
    root: Location, out_dir: Location, files: Sequence[Location], output_format: FileFormat | None
) -> DatasetPlan:
    """Each input's output: the same relative name under ``out_dir``, suffix per the format."""
    outputs: list[Location] = []
    sources: dict[str, Location] = {}
    for source in files:
        relative = source.relative_to(root)  # type: ignore[arg-type]  # root has the source's kind
        suffix = FORMATS[output_format].suffixes[0] if output_format else data_suffix(str(source))
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
    source: DataLocation,
    target: DataLocation | None,
    given: bool,
    output_format: FileFormat | None,
    allow_empty: bool = False,
) -> DatasetPlan:
    """:func:`plan_dataset` for a prefix or glob on an object store."""
    assert source.uri is not None
    pattern, input_path = source.uri, source.text
    if _GLOB_MAGIC.search(input_path):
        root, found = storage.glob(pattern)
    else:
        root, found = pattern, storage.list_files(pattern)
    out: storage.Location = target.target if target else root.with_name(root.name + ".predictions")
    if isinstance(out, storage.Uri) and out.scheme == root.scheme:
        _check_output_prefix(root, out, given)
    files = sorted(
        (
            u
            for u in found
            if is_data_file(u.name)
            and not any(part.startswith((".", "_")) for part in u.relative_to(root).parts)
            # An output prefix inside the input is never listed: outputs are not inputs.
            and not (isinstance(out, storage.Uri) and u.is_relative_to(out))
        ),
        key=natural_key,
    )
    if not files and not allow_empty:
        raise DataError(f"{input_path}: {_NOTHING_FOUND.format(what='objects')}")
    return _pair(root, out, files, output_format)


def _check_output_prefix(root: storage.Uri, out: storage.Uri, given: bool) -> None:
    """:func:`check_output_folder` for prefixes: an object store has no links to resolve."""
    out_path, root_path = PurePosixPath(out.path), PurePosixPath(root.path)
    relation = ""
    if out_path == root_path:
        relation = "is the input prefix"
    elif root_path.is_relative_to(out_path):
        relation = "contains the input prefix"
    if relation:
        raise PathConflict(
            f"{out} {relation} {root}: the outputs would land among the inputs and be read by "
            f"the next run; choose an output prefix outside it (the default is "
            f"{root.name}.predictions beside it) or inside it, which the run never lists "
            "(nothing was read or written)",
            "-o" if given else "INPUT",
        )


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
    #: --resume: inputs whose existing output was made from another version of them.
    stale: list[str] = field(default_factory=list)
    workers: int = 1
    chunk_size: int = 0
    wall_seconds: float = 0.0
    pools: dict[str, PoolStats | dict[str, Any]] = field(default_factory=dict)
    worker_pools: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    worker_loads: dict[str, dict[str, int]] = field(default_factory=dict)
    #: --keep-going: the files that failed, each ``{"input", "error", "exit_code"}``.
    failed: list[dict[str, Any]] = field(default_factory=list)

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
                "files_stale": len(self.stale),
                "files_failed": len(self.failed),
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
            "failed": self.failed,
        }

    def fail(self, source: Location, exc: DataError) -> None:
        """--keep-going: record a file's input error and go on with the others."""
        self.failed.append({"input": str(source), "error": str(exc), "exit_code": 3})

    def check_failures(self) -> None:
        """After a --keep-going run: raise one :class:`DataError` naming every failed file
        (``_SUCCESS`` is then not written; the finished outputs stay)."""
        if not self.failed:
            return
        total = len(self.failed) + len(self.files)
        named = "; ".join(f["error"] for f in self.failed[:5])
        more = f"; and {len(self.failed) - 5} more (see the stats JSON)" if len(self.failed) > 5 else ""
        raise DataError(
            f"{self.input}: {len(self.failed)} of {total} files failed: {named}{more} — the other "
            f"{len(self.files)} were scored; no {SUCCESS_MARKER} (fix them and rerun with --resume)"
        )


def begin(plan: DatasetPlan, resume: bool) -> tuple[list[tuple[Location, Location]], list[str], list[str]]:
    """Create the output folders, drop a stale ``_SUCCESS``; return the pairs to do, the
    inputs skipped by ``resume`` (their output exists, so it is complete, and records this
    very input: :mod:`modelrouter.storage.input_identity`) and the inputs whose output
    exists but is stale (another input, or no record), which are scored again.

    Only the last level of the output directory is created, as ``mkdir`` (not ``mkdir -p``)
    does: a missing parent is an output error (exit 5) — a typo in a cron job's path must not
    silently create a new tree, and a single file's ``-o`` into a missing folder fails alike.
    The subfolders that mirror the input's, inside it, are created as needed."""
    if isinstance(plan.out_dir, Path) and not plan.out_dir.parent.is_dir():
        raise OutputError(
            f"{plan.out_dir}: cannot create the output directory: its parent {plan.out_dir.parent} "
            "does not exist (only the last folder level is created; create the parents first)"
        )
    try:
        if isinstance(plan.out_dir, Path):
            plan.out_dir.mkdir(exist_ok=True)
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
    todo: list[tuple[Location, Location]] = []
    skipped: list[str] = []
    stale: list[str] = []
    for source, target in plan.pairs:
        if resume and storage.exists(target):
            if identity_matches(recorded_identity(target), source):
                skipped.append(str(source))
                continue
            stale.append(str(source))
        todo.append((source, target))
    return todo, skipped, stale


def finish(plan: DatasetPlan, side_files: Sequence[tuple[Location, str]] = ()) -> None:
    """Mark the whole set complete: the side files (stats, metrics) and ``_SUCCESS`` in one
    commit, ``_SUCCESS`` last, after every output file is in place."""
    # A worker killed while writing (a Dask worker on SIGTERM, whose task ran again
    # elsewhere) leaves its temporary file: never beside a _SUCCESS that says "complete".
    sweep_stale_temps(
        sorted({p for p in (plan.out_dir, *(t.parent for t in plan.outputs)) if isinstance(p, Path)})
    )
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
    # Kept CSV columns stay text in every part (kept_types): each part is scored on its own
    # (in parallel, or in an earlier run with --resume), so types inferred per part could
    # disagree, and the parts would not read as one table (docs/formats.md).
    return replace(
        options, input=str(source), output=str(target), rejects=rejects, record_input=True, kept_types=False
    )


def score_dataset_locally(
    options: RunOptions,
    plan: DatasetPlan,
    resume: bool,
    progress: ProgressSink | None,
    on_file: Callable[[Location], None] | None = None,
    side_files: Callable[[dict[str, Any]], Sequence[tuple[Location, str]]] | None = None,
    *,
    summary: DatasetSummary | None = None,
) -> DatasetSummary:
    """Score the files one after another through one pool and the usual thread pool.

    Each file's output (and rejects) is committed on its own; ``side_files`` gives, from the
    finished report, the files committed with ``_SUCCESS`` at the end. ``options.keep_going``:
    a file's input error (:class:`DataError`) is recorded and the other files are scored; the
    run then raises one :class:`DataError` naming the failed files and writes no
    ``_SUCCESS``. Other errors (model, output) stop the run at once. ``summary``, when
    given, is filled in as files finish, so a caller still has the finished files' counts
    after a failure.
    """
    started = time.perf_counter()
    if summary is None:
        summary = DatasetSummary(input=options.input, output=str(plan.out_dir), engine="local")
    todo, summary.skipped, summary.stale = begin(plan, resume)
    summary.chunk_size = options.chunk_size
    if not todo:  # --resume with every output in place: nothing to load, nothing to score
        summary.workers = 0
        summary.wall_seconds = time.perf_counter() - started
        finish(plan, side_files(summary.as_dict()) if side_files is not None else ())
        return summary
    pool = prepare_pool(options)
    summary.workers = options.workers or pool.size
    try:
        for source, target in todo:
            try:
                result: RunSummary = score_file(
                    per_file_options(options, source, target), progress, pool=pool, final=False, checked=True
                )
            except DataError as exc:
                if not options.keep_going:
                    raise
                summary.fail(source, exc)
                continue
            summary.add(result.as_dict()["summary"])
            if on_file is not None:
                on_file(source)
    finally:
        summary.wall_seconds = time.perf_counter() - started
        summary.pools = {str(k): v for k, v in get_router().stats().items()}
    summary.check_failures()
    finish(plan, side_files(summary.as_dict()) if side_files is not None else ())
    return summary
