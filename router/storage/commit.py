"""The outputs of a run: atomic files, streams, and one commit step for all of them.

An output path is written one of two ways, chosen when it is opened:

- a **regular file** (or a path that does not exist yet) is written to a hidden temporary
  file in the destination folder, named ``.<name>.<host>.<pid>.<random>.tmp``, and renamed
  over the destination at the commit; until then the destination is untouched;
- **stdout** (``-o -``) and an existing **character device or FIFO** (``/dev/null``,
  ``/dev/full``, a named pipe) are written as a stream, never replaced by a regular file
  (``os.replace`` onto ``/dev/null`` as root would do exactly that). A stream cannot be taken
  back: what was written stays written; a write error (``/dev/full``: ENOSPC) is an
  :class:`OutputError`.

All outputs of a run (predictions, rejects, stats JSON, metrics, a dataset's ``_SUCCESS``)
go into one :class:`RunOutputs`. Its :meth:`RunOutputs.commit` first finishes every one of
them (close, flush, fsync) — any failure there aborts them all and leaves every destination
as it was — and only then renames them into place, back to back, predictions last, inside
:mod:`~modelrouter.storage.inflight`'s commit section: a SIGINT/SIGTERM arriving during the renames is held
until they are done, and once a run's final commit is through the run exits 0 whatever
arrives afterwards (:mod:`modelrouter.cli.exits` asks the run's commit guard).

The temporary files and their sweeping are :mod:`~modelrouter.storage.temp_files`'s, the
streams :mod:`~modelrouter.storage.streams`'; their public names are re-exported here.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

import pyarrow as pa
from modelrouter.errors import OutputError
from modelrouter.storage import inflight
from modelrouter.storage import object_store as storage
from modelrouter.storage.formats import FORMATS, FileFormat
from modelrouter.storage.location import DataLocation
from modelrouter.storage.streams import (
    close_quietly,
    is_stream_target,
    open_stream,
    stdout_failed,
    stdout_stream,
)
from modelrouter.storage.temp_files import (
    TEMP_PATTERN,
    drop_temp,
    replace_keeping,
    restore,
    sweep_stale_temps,
    temp_beside,
)
from modelrouter.storage.writers import RowWriter, WriteStyle, copy_row_groups, open_writer

__all__ = [
    "TEMP_PATTERN",
    "AtomicOutput",
    "BatchOutput",
    "OutputFormat",
    "RunOutputs",
    "TextOutput",
    "check_writable",
    "is_stream_target",
    "open_output",
    "os_reason",
    "sweep_stale_temps",
    "temp_beside",
    "text_output",
    "write_text_atomically",
    "written_path",
]

#: What a batch output writes: a file format, or a database table (Arrow types as they are).
OutputFormat = FileFormat | Literal["table"]


# -- checks before anything is read ---------------------------------------------------------------


def check_writable(path: str | Path | DataLocation) -> None:
    """Raise :class:`OutputError` now when the local file ``path`` cannot be written by a
    run: its folder is missing or not writable, or the path is a directory. A run checks
    every output (predictions, rejects, stats JSON, metrics) this way before it reads
    anything, so one that cannot be written never leaves the others half-committed
    (docs/specification.md §5). URIs and ``-`` are checked elsewhere; an existing device or
    FIFO is written as a stream."""
    location = DataLocation.of(path)
    if not location.is_local:
        return
    target = location.path
    if is_stream_target(target):
        return
    if target.is_dir():
        raise OutputError(f"{target}: is a directory; give a file path")
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(f"{target}: output folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{target}: cannot write (permission denied in {str(folder)!r})")


def _not_a_directory(path: Path | None, name: str) -> None:
    """Checked again at the commit (the folder may have changed since the start): a rename
    over a directory fails, and must fail before any output of the run is renamed."""
    if path is not None and path.is_dir() and not path.is_symlink():
        raise OutputError(f"{name}: cannot write (is a directory)")


# -- staged outputs ------------------------------------------------------------------------------


class Staged(Protocol):
    """One output of a run: finished by :meth:`prepare`, moved into place by :meth:`publish`."""

    def prepare(self) -> None: ...

    def publish(self) -> bool: ...

    def abort(self) -> None: ...


class BatchOutput(Staged, Protocol):
    """An output the scoring loop writes batches to: :class:`AtomicOutput` (a local file, a
    stream), :class:`~modelrouter.storage.object_store.RemoteOutput` (an object-store upload)
    or :class:`~modelrouter.storage.tables.TableOutput` (a staging table, committed in the
    database's transaction)."""

    schema: pa.Schema

    @property
    def format(self) -> OutputFormat: ...

    def write(self, batch: pa.RecordBatch) -> None: ...


def written_path(path: Path) -> Path:
    """The file an output path names. A symbolic link to a regular file is written through:
    its target is replaced and the link kept (``-o latest.csv``; ``-o /dev/stdout`` with
    stdout redirected to a file), where renaming over the link would replace the link with a
    file and leave its target stale (or replace ``/dev/stdout`` itself). A link to a device
    or FIFO is a stream (:func:`open_stream`); a dangling one is replaced."""
    try:
        if path.is_symlink() and path.is_file():
            return Path(os.path.realpath(path))
    except OSError:
        pass
    return path


def open_output(
    path: str | DataLocation | None, fmt: FileFormat, schema: pa.Schema, style: WriteStyle | None = None
) -> BatchOutput:
    """The atomic writer for ``path``: a local file or stream (``None`` or ``-``: stdout), or
    an object-store URI (a multipart upload completed at the commit, aborted otherwise);
    ``style``: delimiter, compression, metadata (:class:`WriteStyle`)."""
    location = None if path is None else DataLocation.of(path)
    if location is not None and location.is_object and location.uri is not None:
        return storage.RemoteOutput(location.uri, fmt, schema, style)
    if location is None or location.is_stream:
        return AtomicOutput(None, fmt, schema, style)
    return AtomicOutput(location.path, fmt, schema, style)


def text_output(path: storage.Location, text: str | bytes) -> Staged:
    """A small file (stats JSON, metrics, ``_SUCCESS``) staged for the run's commit: a local
    :class:`TextOutput`, or one object put at the commit."""
    if isinstance(path, storage.Uri):
        return storage.RemoteText(path, text)
    return TextOutput(path, text)


class AtomicOutput:
    """Batches to ``path``: a temporary file renamed over it at the commit, or a stream.

    ``path`` ``None`` means CSV to stdout (no atomicity possible: rows stream out as they are
    scored, nothing before the first batch). An existing character device or FIFO is written
    as a stream too. ``style``: delimiter, compression, metadata (:class:`WriteStyle`).
    Raises :class:`OutputError` naming the path for every I/O failure.
    """

    def __init__(
        self, path: Path | None, fmt: FileFormat, schema: pa.Schema, style: WriteStyle | None = None
    ) -> None:
        self.path = None if path is None else written_path(path)
        self.format = fmt
        self.schema = schema
        self.style = style or WriteStyle()
        self._temp: Path | None = None
        self._kept: Path | None = None  # the file this output replaced, until the run settles
        self._replaced = False
        self._stream: BinaryIO | None = None
        self._finished = False
        self._writer: RowWriter | None = None
        #: The byte stream a CSV writer writes to, and whether closing it is ours to do.
        self._sink: pa.NativeFile | None = None
        self._own_sink = True
        self._open()

    @property
    def name(self) -> str:
        return "<stdout>" if self.path is None else str(self.path)

    def _open(self) -> None:
        if self.path is None:
            stdout_stream()  # fail now, before scoring, when stdout is closed
            return
        try:
            self._stream = open_stream(self.path)
            if self._stream is not None:
                self._writer = self._make_writer(self._stream)
                return
            folder = self.path.parent
            if not folder.is_dir():
                raise OutputError(f"{self.path}: output folder {str(folder)!r} does not exist")
            self._temp = temp_beside(self.path)
            self._writer = self._make_writer(str(self._temp))  # a path: pyarrow writes natively
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: cannot write ({os_reason(exc)})") from None
        except BaseException:
            # A signal (Interrupted) in here: the caller never gets the object to abort.
            self.abort()
            raise

    def _make_writer(self, sink: str | BinaryIO) -> RowWriter:
        # stdout is never closed by us (it gets plain CSV); a device, FIFO or temporary file is ours.
        self._own_sink = self.path is not None
        writer, self._sink = open_writer(sink, self.format, self.schema, self.style)
        return writer

    def _stdout_writer(self) -> None:
        if self.path is None and self._writer is None and not self._finished:
            self._writer = self._make_writer(stdout_stream())

    def write(self, batch: pa.RecordBatch) -> None:
        """Append one batch (schema must equal :attr:`schema`)."""
        try:
            self._stdout_writer()
            assert self._writer is not None, "write after commit/abort"
            self._writer.write_batch(batch)
        except BrokenPipeError:
            raise  # stdout's reader left: not an output error (modelrouter.cli.exits stops quietly)
        except OSError as exc:
            self._failed()
            raise OutputError(f"{self.name}: write failed ({os_reason(exc)})") from None

    @property
    def rewritable(self) -> bool:
        """Whether the rows written so far can still be rewritten (:meth:`rewrite`): a
        Parquet temporary file being written, not a stream."""
        return FORMATS[self.format].rewritable and self._temp is not None and self._writer is not None

    def rewrite(
        self, schema: pa.Schema, convert: Callable[[pa.Table], pa.Table], plain: frozenset[str]
    ) -> None:
        """Go on with ``schema`` (``plain``: its columns written without a dictionary): the
        rows written so far are copied, row group by row group through ``convert``, into a
        new temporary file, and the old one is dropped. Memory: one row group (one chunk).
        The destination is untouched, as by every write; :class:`OutputError` on failure."""
        assert self.rewritable and self.path is not None
        old, writer = self._temp, self._writer
        assert old is not None and writer is not None
        self._temp, self._writer = None, None
        try:
            writer.close()
            self._temp = temp_beside(self.path)
            self.schema, self.style = schema, replace(self.style, plain=plain)
            self._writer = self._make_writer(str(self._temp))
            copy_row_groups(old, self._writer, convert)
        except OSError as exc:
            raise OutputError(f"{self.name}: write failed ({os_reason(exc)})") from None
        finally:
            drop_temp(old)

    def prepare(self) -> None:
        """Finish the file (data on disk) or flush the stream; the destination is untouched."""
        try:
            self._stdout_writer()  # an empty result still gets its header
            self._finished = True
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            sink, self._sink = self._sink, None
            if sink is not None:
                # A compressed stream writes its trailer when closed.
                sink.close() if self._own_sink else sink.flush()
            if self.path is None:
                stdout_stream().flush()
            elif self._stream is not None:
                stream, self._stream = self._stream, None
                stream.close()  # flushes: /dev/full reports ENOSPC here
            elif self._temp is not None:
                fd = os.open(self._temp, os.O_RDONLY)
                try:
                    os.fsync(fd)  # the data must be on disk before the name points at it
                finally:
                    os.close(fd)
                _not_a_directory(self.path, self.name)
        except BrokenPipeError:
            raise
        except OSError as exc:
            self._failed()
            self.abort()
            raise OutputError(f"{self.name}: cannot finish writing ({os_reason(exc)})") from None

    def publish(self) -> bool:
        """Move the finished file into place; True when a destination changed."""
        if self._temp is None:
            return False
        assert self.path is not None
        try:
            self._kept = replace_keeping(self._temp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.name}: cannot finish writing ({os_reason(exc)})") from None
        inflight.current().temp_files.discard(self._temp)
        self._temp = None
        self._replaced = True
        return True

    def rollback(self) -> None:
        """Put back what :meth:`publish` replaced (another output of the run failed)."""
        if self._replaced and self.path is not None:
            restore(self.path, self._kept)
        self._replaced, self._kept = False, None

    def settle(self) -> None:
        """The run's outputs are all in place: drop the replaced file's kept copy."""
        kept, self._kept, self._replaced = self._kept, None, False
        if kept is not None:
            drop_temp(kept)

    def commit(self) -> None:
        """:meth:`prepare` and :meth:`publish` this output on its own."""
        RunOutputs([self]).commit(final=False)

    def _failed(self) -> None:
        if self.path is None:
            stdout_failed()

    def abort(self) -> None:
        """Drop the temporary file (close a stream); idempotent, never raises."""
        self._finished = True
        writer, self._writer = self._writer, None
        temp, self._temp = self._temp, None
        stream, self._stream = self._stream, None
        sink, self._sink = self._sink, None
        if writer is not None:
            try:
                writer.close()
            except Exception:
                pass
        if sink is not None and self._own_sink:
            try:
                sink.close()
            except Exception:
                pass
        if stream is not None:
            close_quietly(stream)
        if temp is not None:
            drop_temp(temp)


class TextOutput:
    """A small file (stats JSON, metrics, a converted model) written like :class:`AtomicOutput`.

    The temporary file is written when the object is made; a device or FIFO is written at
    :meth:`prepare`. ``-`` is not accepted: only ``-o`` means stdout.
    """

    def __init__(self, path: Path, text: str | bytes) -> None:
        self.path = path = written_path(path)
        self._data = text.encode("utf-8") if isinstance(text, str) else text
        self._temp: Path | None = None
        self._kept: Path | None = None
        self._replaced = False
        self._stream_target = is_stream_target(path)
        if self._stream_target:
            return
        try:
            if not path.parent.is_dir():
                raise OutputError(f"{path}: output folder {str(path.parent)!r} does not exist")
            self._temp = temp_beside(path)
            self._temp.write_bytes(self._data)
        except OSError as exc:
            self.abort()
            raise OutputError(f"{path}: cannot write ({os_reason(exc)})") from None

    def prepare(self) -> None:
        try:
            if self._stream_target:
                stream = open_stream(self.path)
                if stream is None:
                    raise OSError(errno.ENOENT, "the device or pipe went away")
                try:
                    stream.write(self._data)
                finally:
                    stream.close()
            elif self._temp is not None:
                fd = os.open(self._temp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                _not_a_directory(self.path, str(self.path))
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: cannot write ({os_reason(exc)})") from None
        except OutputError:
            self.abort()
            raise

    def publish(self) -> bool:
        if self._temp is None:
            return False
        try:
            self._kept = replace_keeping(self._temp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: cannot write ({os_reason(exc)})") from None
        inflight.current().temp_files.discard(self._temp)
        self._temp = None
        self._replaced = True
        return True

    def rollback(self) -> None:
        if self._replaced:
            restore(self.path, self._kept)
        self._replaced, self._kept = False, None

    def settle(self) -> None:
        kept, self._kept, self._replaced = self._kept, None, False
        if kept is not None:
            drop_temp(kept)

    def abort(self) -> None:
        temp, self._temp = self._temp, None
        if temp is not None:
            drop_temp(temp)


class RunOutputs:
    """Every output of one run, committed together (see the module docstring)."""

    def __init__(self, items: Sequence[Staged] = ()) -> None:
        self._items: list[Staged] = list(items)
        #: Items that are not output files of their own to a user: provenance sidecars, side
        #: files, markers (not counted in what an interruption says it kept).
        self._uncounted: set[int] = set()

    def add(self, item: Staged, *, counted: bool = True) -> None:
        """Stage one more output; outputs are published in the order they were added.
        ``counted``: an output file the user asked for (the predictions), counted in
        :attr:`~modelrouter.storage.inflight.CommitGuard.published`."""
        self._items.append(item)
        if not counted:
            self._uncounted.add(id(item))

    def commit(self, *, final: bool) -> None:
        """Finish every output, then rename them all; a failure before the renames leaves every
        destination as it was. ``final``: this is the run's last commit (see
        :class:`~modelrouter.storage.inflight.CommitGuard`)."""
        try:
            for item in self._items:
                item.prepare()
        except BaseException:
            self.abort()
            raise
        published: list[Staged] = []
        try:
            with inflight.current().commit.section(final=final):
                try:
                    for item in self._items:
                        if item.publish():
                            published.append(item)
                except BaseException:
                    # All or none: what this commit already renamed goes back as it was
                    # (docs/specification.md §5), before the section ends.
                    for done in reversed(published):
                        rollback = getattr(done, "rollback", None)
                        if rollback is not None:
                            rollback()
                    raise
                inflight.current().commit.published += sum(
                    id(item) not in self._uncounted for item in published
                )
        except BaseException:
            self.abort()
            raise
        for item in self._items:
            settle = getattr(item, "settle", None)
            if settle is not None:
                settle()
        self._items = []

    def abort(self) -> None:
        """Drop whatever was not published; idempotent, never raises."""
        items, self._items = self._items, []
        for item in items:
            item.abort()


def write_text_atomically(path: storage.Location, text: str) -> None:
    """Write ``text`` to ``path`` on its own (temporary file + rename, a stream, or one
    object put: it appears whole or not at all)."""
    outputs = RunOutputs()
    outputs.add(text_output(path, text), counted=False)
    outputs.commit(final=False)


def os_reason(exc: OSError) -> str:
    """The reason of an OS error in a few words (ENOSPC spelt out: it is the common one)."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    return exc.strerror or str(exc)
