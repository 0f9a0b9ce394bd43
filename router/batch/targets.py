"""Where a single-file run reads and writes: INPUT checked, ``-o`` resolved, the default
names of the output and the rejects file.

Each function takes the text a caller has or a
:class:`~modelrouter.storage.location.DataLocation`; the ``*_location`` forms are what the
engine uses (no text parsed again), the others return the text for callers that show it.
"""

from __future__ import annotations

import os

from modelrouter.errors import DataError, OutputError
from modelrouter.storage.formats import data_suffix, split_name
from modelrouter.storage.location import DataLocation

__all__ = [
    "default_output",
    "default_output_location",
    "default_rejects",
    "rejects_location",
    "require_input",
    "resolve_output",
    "resolve_output_location",
]

#: The default output name of stdin's rows, inside an output folder or prefix.
_STDIN_OUTPUT = "stdin.predictions.csv"


def rejects_location(output: DataLocation) -> DataLocation:
    """``<output stem>.rejects.csv`` beside the output (``day.csv.gz`` → ``day.rejects.csv``)."""
    stem, _, _ = split_name(output.name if output.is_file else output.text)
    return output.with_name(f"{stem}.rejects.csv")


def default_output_location(source: DataLocation) -> DataLocation:
    """``<input stem>.predictions<input suffix>`` beside the input (stdin: stdout); the whole
    data suffix stays together: ``day.csv.gz`` → ``day.predictions.csv.gz``."""
    if source.is_stream:
        return source
    stem, _, _ = split_name(source.name)
    return source.with_name(f"{stem}.predictions{data_suffix(source.name)}")


def resolve_output_location(source: DataLocation, output: DataLocation | None) -> DataLocation:
    """Where a single-file run writes: ``-o`` as given, or the default name.

    ``-o`` naming an existing directory (or ending in a path separator) means "the default
    file name, inside that folder", as ``cp file dir/`` does; an object-store prefix ending
    in ``/`` likewise.
    """
    if output is None:
        return default_output_location(source)
    if output.uri is not None:  # an object (or a database URL, which is written as it is)
        if not output.text.endswith("/"):
            return output
        name = _STDIN_OUTPUT if source.is_stream else default_output_location(source).name
        return DataLocation.of(str(output.uri / name))
    if output.is_local and (output.text.endswith(("/", os.sep)) or output.path.is_dir()):
        folder = output.path
        if not folder.is_dir():
            raise OutputError(f"{output}: output folder does not exist")
        name = _STDIN_OUTPUT if source.is_stream else default_output_location(source).name
        return DataLocation.of(folder / name)
    return output


def require_input(input_path: str | DataLocation) -> None:
    """A local INPUT that is not there is an input error that says so (exit 3), raised before
    the output is resolved or a format is guessed from the missing name.

    ``-``, URIs and glob patterns (whose matches the dataset planner counts) are not checked.
    """
    source = DataLocation.of(input_path)
    if not source.is_local:
        return
    text = source.text
    pattern = any(c in text for c in "*?[")
    try:
        os.stat(text)
    except FileNotFoundError:
        if pattern:
            return
        if os.path.lexists(text.rstrip("/" + os.sep) or text):
            raise DataError(f"{text}: the input is a dangling symlink (its target does not exist)") from None
        raise DataError(f"{text}: the input does not exist (no such file or folder)") from None
    except NotADirectoryError:
        raise DataError(f"{text}: the input is not a folder (a file name ends with '/')") from None
    except OSError as exc:
        if not pattern:
            raise DataError(f"{text}: cannot read the input ({exc.strerror})") from None


def default_rejects(output: str | DataLocation) -> str:
    """:func:`rejects_location`, as text."""
    return str(rejects_location(DataLocation.of(output)))


def default_output(input_path: str | DataLocation) -> str:
    """:func:`default_output_location`, as text."""
    return str(default_output_location(DataLocation.of(input_path)))


def resolve_output(input_path: str | DataLocation, output: str | DataLocation | None) -> str:
    """:func:`resolve_output_location`, as text."""
    target = None if output is None else DataLocation.of(output)
    return str(resolve_output_location(DataLocation.of(input_path), target))
