"""The checks a run makes before it loads a model or reads a row: usage errors up front.

Each refusal is an :class:`~modelrouter.errors.InvalidOptionError` naming the option as users
spell it (the command turns it into a usage error, exit 2); a side file that cannot be
written is an :class:`~modelrouter.errors.OutputError`. Nothing here writes, except that
:func:`check_paths` sweeps the temporary files killed runs left in the output folders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrouter.errors import InvalidOptionError, ModelRouterError

if TYPE_CHECKING:
    from modelrouter.batch.datasets import DatasetPlan
    from modelrouter.batch.options import RunOptions
    from modelrouter.storage.location import DataLocation
    from modelrouter.storage.run_paths import PathUse

__all__ = [
    "check_file_options",
    "check_output_format",
    "check_paths",
    "check_side_folders",
    "check_stdin",
    "dataset_plan",
    "is_dataset_run",
]


def check_stdin(options: RunOptions) -> None:
    """stdin carries CSV; Parquet needs a seekable file (stdin redirected from one is fine)."""
    from modelrouter.storage.formats import FORMATS
    from modelrouter.storage.run_paths import stdin_is_closed, stdin_is_regular

    if not options.input_location.is_stream or stdin_is_closed():
        return  # a closed stdin is an input error, reported by the run (exit 3)
    fmt = options.input_format
    if fmt is not None and not FORMATS[fmt].text and not stdin_is_regular():
        raise InvalidOptionError(
            "--input-format",
            "stdin is a pipe or terminal and takes CSV only (Parquet needs a seekable file: "
            "pass the file's path, or redirect stdin from the file)",
        )


def is_dataset_run(options: RunOptions) -> bool:
    """The input is a directory or glob, or the run is on Dask: scored as a dataset."""
    from modelrouter.batch.datasets import is_dataset

    return is_dataset(options.input_location) or options.engine == "dask"


def check_file_options(options: RunOptions) -> None:
    """Options that only mean something for some inputs/outputs: refused elsewhere (a typo
    must not be silently ignored)."""
    from modelrouter.batch.dataio import detect_format
    from modelrouter.batch.targets import resolve_output_location
    from modelrouter.storage.formats import FORMATS

    for flag, given in (("--allow-empty", options.allow_empty), ("--keep-going", options.keep_going)):
        if given and not is_dataset_run(options):
            raise InvalidOptionError(
                flag, f"{options.input} is a single file; {flag} applies to a directory or glob"
            )
    if options.compression is None or is_dataset_run(options):
        return  # a dataset's formats are checked once it is planned
    try:
        output = resolve_output_location(options.input_location, options.output_location)
        fmt = (
            (options.output_format or "csv")
            if output.is_stream
            else detect_format(output, options.output_format, role="output")
        )
    except ModelRouterError:
        return  # the run reports a bad output name itself
    rejects_parquet = options.rejects is not None and options.rejects.lower().endswith((".parquet", ".pq"))
    if FORMATS[fmt].text and not rejects_parquet:
        shown, suffix = FORMATS[fmt].title, FORMATS[fmt].suffixes[0]
        raise InvalidOptionError(
            "--compression",
            f"compresses Parquet pages, and {'stdout' if output.is_stream else output} is {shown} "
            f"(name it {suffix}.gz, {suffix}.bz2 or {suffix}.zst to compress a {shown} output)",
        )


def check_output_format(options: RunOptions) -> None:
    """An output named with a suffix no writer has (``-o out.xlsx``) is refused, naming the
    supported formats, before anything is read (:class:`~modelrouter.batch.dataio.UnknownOutputFormat`)."""
    from modelrouter.batch.dataio import UnknownOutputFormat, detect_format
    from modelrouter.batch.targets import resolve_output_location

    try:
        # Only a name the user gave: a default output derived from an input whose format is
        # unknown is the input's error (exit 3, "pass --input-format"), reported by the run.
        given = options.output_location
        if given is not None and given.is_file:
            # An existing folder (or a trailing '/') gets the default file name inside it.
            target = resolve_output_location(options.input_location, given)
            detect_format(target, options.output_format, role="output")
        if options.rejects_location is not None:
            detect_format(options.rejects_location, None, role="output", option="--rejects")
    except UnknownOutputFormat:
        raise
    except ModelRouterError:
        return  # the run reports a bad output path itself (exit 5)


def dataset_plan(options: RunOptions) -> DatasetPlan:
    """The dataset's inputs and outputs; refused when two paths conflict, or when
    ``--compression`` is given and no output of the dataset is Parquet."""
    from modelrouter.batch.dataio import detect_format
    from modelrouter.batch.datasets import plan_dataset
    from modelrouter.storage.formats import FORMATS
    from modelrouter.storage.run_paths import PathConflict

    if options.output_location is not None and options.output_location.is_table:
        # docs/database-tables.md: a URL is one input, and a table one output.
        raise InvalidOptionError(
            "--output",
            f"{options.input} is a dataset (a folder or glob: one output file per input), and a "
            "database table takes the rows of one input; name an output folder, or score the "
            "files into the table one by one (--if-exists append)",
        )
    try:
        plan = plan_dataset(
            options.input_location, options.output, options.output_format, allow_empty=options.allow_empty
        )
    except PathConflict as exc:
        raise InvalidOptionError(exc.option, str(exc)) from None
    compressing = options.compression is not None
    if (
        compressing
        and plan.inputs
        and all(FORMATS[detect_format(str(t), None, role="output")].text for t in plan.outputs)
    ):
        raise InvalidOptionError(
            "--compression",
            "compresses Parquet pages, and no output of this dataset is Parquet "
            "(pass --output-format parquet)",
        )
    return plan


def check_side_folders(options: RunOptions) -> None:
    """Checked before anything is read: a side file that cannot be written (its folder is
    missing, a directory is in its place) must not fail the run after its other outputs were
    committed (all or none, docs/specification.md §5)."""
    from modelrouter.storage.commit import check_writable

    for side_file in (options.stats_json, options.metrics_textfile):
        if side_file is not None:
            check_writable(side_file)


def check_paths(options: RunOptions, plan: DatasetPlan | None) -> None:
    """No output may be an input (data, model, config) or another output: refused up front.

    Also removes the temporary files that killed runs left in the output folders (after the
    check: nothing is written before it)."""
    from modelrouter.storage.commit import sweep_stale_temps
    from modelrouter.storage.run_paths import PathConflict
    from modelrouter.storage.run_paths import check_paths as check_conflicts

    inputs, outputs = _path_uses(options, plan)
    try:
        check_conflicts(inputs, outputs)
    except PathConflict as exc:
        raise InvalidOptionError(exc.option, str(exc)) from None
    # Object stores hold no temporary files (an upload is invisible until completed).
    sweep_stale_temps([o.location.path.parent for o in outputs if o.location.is_local])


def _path_uses(options: RunOptions, plan: DatasetPlan | None) -> tuple[list[PathUse], list[PathUse]]:
    """The paths the run reads (config, models, background, data) and writes."""
    from modelrouter import load_settings
    from modelrouter.batch.datasets import planned_outputs
    from modelrouter.batch.targets import rejects_location, resolve_output_location
    from modelrouter.storage.run_paths import PathUse

    settings = load_settings(options.config)
    inputs = [PathUse(str(settings.source), "the config file", "--config")]
    if options.model_path is not None:
        inputs.append(PathUse(str(options.model_path), "the model", "--model"))
    if options.background is not None:
        inputs.append(PathUse(options.background, "the background file", "--background"))
    inputs += [PathUse(str(m.path), f"the {kind} model", "--config") for kind, m in settings.models.items()]
    outputs: list[PathUse] = []
    if plan is not None:
        inputs += [PathUse(str(p), "the input", "INPUT") for p in plan.inputs]
        outputs += [
            PathUse(str(target), f"the output for {source}", "--output")
            for target, source in planned_outputs(plan, options)
        ]
    else:
        # A table's rows are staged and committed in its database (reading and replacing one
        # table in one run is safe), but a SQLite/DuckDB database is a file: no other output
        # may be that file (a --stats-json onto the input's database replaced it with JSON).
        input_database = _database_file(options.input_location, "INPUT")
        if input_database is not None:
            inputs.append(PathUse(input_database, "the input database", "INPUT"))
        elif not options.input_location.is_table:
            inputs.append(PathUse(options.input, "the input", "INPUT"))
        output = resolve_output_location(options.input_location, options.output_location)
        output_database = _database_file(output, "--output")
        if output_database is not None:
            if input_database is None or not _same_file(output_database, input_database):
                outputs.append(PathUse(output_database, "the output database", "--output"))
        elif not output.is_table:
            outputs.append(PathUse(output.text, "the output", "--output"))
        if options.on_error == "skip":
            rejects = options.rejects_location or rejects_location(output)
            outputs.append(PathUse(rejects.text, "the rejects file", "--rejects"))
    for option, side_file in (
        ("--stats-json", options.stats_json),
        ("--metrics-textfile", options.metrics_textfile),
    ):
        if side_file is not None:
            outputs.append(PathUse(side_file, f"the {option} file", option))
    return inputs, outputs


def _database_file(location: DataLocation, option: str) -> str | None:
    """The database file of a SQLite/DuckDB table URL (``None``: not a table, or a server's)."""
    if not location.is_table:
        return None
    from modelrouter.storage.table_urls import DatabaseUrl

    path = DatabaseUrl.parse(location.text, option=option).path
    return None if path is None else str(path)


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (by identity when both exist; else resolved)."""
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
