"""Reading object stores: what is at a URI, and the object's bytes pinned to one version.

Reads of ``s3://`` objects are ranged GETs made with boto3, every one pinned to the version
seen when the input was opened (:func:`pin`): an object replaced mid-read fails the run
naming it, never a mix of two versions (``docs/remote-storage.md``). Metadata, listings and
every read of other schemes go through ``pyarrow.fs``.
"""

from __future__ import annotations

import io
import posixpath
import re
from pathlib import Path
from typing import Any, Literal, TypeAlias

import pyarrow as pa
import pyarrow.fs as pafs
from modelrouter import remote
from modelrouter.errors import DataError
from modelrouter.storage.store_clients import (
    READ_BUFFER,
    ROLE_ERRORS,
    Role,
    fs_path,
    is_s3,
    s3_client,
    store_error,
)
from modelrouter.storage.uris import Location, Uri

__all__ = [
    "Kind",
    "Pinned",
    "exists",
    "fetch_model",
    "glob",
    "info",
    "list_files",
    "object_version",
    "open_binary",
    "open_random",
    "open_stream",
    "pin",
]


Kind = Literal["file", "directory", "missing"]


def info(location: Location, role: Role = "input") -> Kind:
    """What is at ``location``: an object/file, a prefix/directory, or nothing.

    Raises the role's error when the store cannot answer, or when the bucket itself does
    not exist (a more useful message than "not found").
    """
    if isinstance(location, Path):
        return "file" if location.is_file() else "directory" if location.is_dir() else "missing"
    filesystem, path = fs_path(location, role)
    try:
        found = filesystem.get_file_info(path)
        if found.type == pafs.FileType.NotFound and location.key:
            bucket = filesystem.get_file_info(location.bucket)
            if bucket.type == pafs.FileType.NotFound:
                raise ROLE_ERRORS[role](f"{location}: bucket {location.bucket!r} does not exist")
    except (OSError, pa.ArrowException) as exc:
        raise store_error(role, location, exc) from None
    if found.type == pafs.FileType.File:
        return "file"
    if found.type == pafs.FileType.Directory:
        return "directory"
    return "missing"


def exists(location: Location) -> bool:
    """True when a file/object is at ``location`` (``--resume`` asks this of outputs)."""
    return info(location, "output") == "file"


def object_version(uri: Uri) -> dict[str, str]:
    """What tells this object's content from another's: its size and ETag on S3, its size
    and modification time (ns) on other stores. Raises :class:`DataError`."""
    if is_s3(uri):
        remote.require_credentials(DataError, uri)
        try:
            head = s3_client().head_object(Bucket=uri.bucket, Key=uri.key)
        except Exception as exc:
            raise store_error("input", uri, exc) from None
        return {"size": str(head["ContentLength"]), "etag": str(head["ETag"])}
    filesystem, path = fs_path(uri)
    try:
        found = filesystem.get_file_info(path)
    except (OSError, pa.ArrowException) as exc:
        raise store_error("input", uri, exc) from None
    if found.type != pafs.FileType.File:
        raise DataError(f"{uri}: no such object")
    return {"size": str(found.size), "mtime_ns": str(found.mtime_ns)}


#: An input object as opened: on S3 the version seen at open (every read is pinned to it),
#: on other stores the URI (read as it is at each request).
Pinned: TypeAlias = remote.ObjectVersion | Uri


def pin(uri: Uri, role: Role = "input") -> Pinned:
    """The object at ``uri`` as it is now: on S3 its version (one HEAD request), whose reads
    fail naming the object when it is replaced meanwhile (``docs/remote-storage.md``); the
    URI itself on stores that have no conditional reads here."""
    if is_s3(uri):
        return remote.pin_object(str(uri), ROLE_ERRORS[role])
    return uri


def open_random(source: Pinned) -> Any:
    """A random-access pyarrow file over the object (Parquet reads ranges of it), pinned to
    one version on S3 (a bare S3 :class:`Uri` is pinned now)."""
    if isinstance(source, Uri) and is_s3(source):
        source = pin(source)
    if isinstance(source, remote.ObjectVersion):
        return pa.PythonFile(source.open(), mode="r")
    filesystem, path = fs_path(source)
    try:
        return filesystem.open_input_file(path)
    except (OSError, pa.ArrowException) as exc:
        raise store_error("input", source, exc) from None


def open_binary(source: Pinned, *, sequential: bool = False) -> io.BufferedIOBase:
    """A buffered Python file over the object (the sniff and header scan read lines);
    ``sequential``: read front to back a window per GET (:func:`remote.read_window`)."""
    if isinstance(source, Uri) and is_s3(source):
        source = pin(source)
    if isinstance(source, remote.ObjectVersion):
        return io.BufferedReader(source.open(remote.read_window() if sequential else 0), buffer_size=1 << 16)
    # pyarrow's files have no readline(): buffer the (seekable, ranged-read) object in Python.
    return io.BufferedReader(open_random(source), buffer_size=1 << 16)


def open_stream(source: Pinned) -> Any:
    """A sequential pyarrow stream over the object's bytes (CSV), as stored: never
    decompressed by a guess from the name (the reader decompresses what the bytes say).
    On S3 pinned to one version, read a window at a time (:func:`remote.read_window`)."""
    if isinstance(source, Uri) and is_s3(source):
        source = pin(source)
    if isinstance(source, remote.ObjectVersion):
        return pa.PythonFile(source.open(remote.read_window()), mode="r")
    filesystem, path = fs_path(source)
    try:
        return filesystem.open_input_stream(path, compression=None, buffer_size=READ_BUFFER)
    except (OSError, pa.ArrowException) as exc:
        raise store_error("input", source, exc) from None


def fetch_model(uri: str) -> bytes:
    """The bytes of the model object at ``uri`` (:func:`modelrouter.remote.fetch_model`)."""
    return remote.fetch_model(uri)


def list_files(prefix: Uri) -> list[Uri]:
    """Every object under ``prefix`` (recursively)."""
    filesystem, path = fs_path(prefix)
    try:
        found = filesystem.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except (OSError, pa.ArrowException) as exc:
        raise store_error("input", prefix, exc) from None
    return [Uri(prefix.scheme, f.path.strip("/")) for f in found if f.type == pafs.FileType.File]


def glob(pattern: Uri) -> tuple[Uri, list[Uri]]:
    """The fixed prefix of ``pattern`` and the objects under it whose key matches it.

    Patterns follow :mod:`glob`: ``*`` and ``?`` stay within one path segment, ``**`` spans
    segments, ``[…]`` is a character class.
    """
    magic = re.search(r"[*?[]", pattern.path)
    fixed = pattern.path[: magic.start()] if magic else pattern.path
    root = Uri(pattern.scheme, fixed.rstrip("/") if fixed.endswith("/") else posixpath.dirname(fixed))
    matcher = re.compile(_glob_regex(pattern.path))
    return root, [u for u in list_files(root) if matcher.fullmatch(u.path)]


def _glob_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)
