"""The JSON Lines reader: one object per line, streamed by Arrow's JSON reader, the column
types decided by the first rows (sampled here and replayed, so stdin works)."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, cast

import pyarrow as pa
from modelrouter.batch.byte_sources import (
    Replay,
    Stream,
    checked_read,
    decompressed,
    local_or_pinned,
    read_head,
)
from modelrouter.batch.csv_header import mib
from modelrouter.batch.input_file import InputFile, ReadRequest, ReadSource, first_line
from modelrouter.errors import DataError
from modelrouter.storage import object_store as storage
from modelrouter.storage.formats import SNIFF_BYTES, Compression, sniff_compression

__all__ = ["open_jsonl"]


#: JSON Lines: the rows whose values decide the column types (a later value of another type
#: is a data error naming it), and the largest line (Arrow's block).
_JSONL_SAMPLE_ROWS = 1000
_JSONL_BLOCK_BYTES = 4 << 20


def open_jsonl(source: ReadSource, request: ReadRequest) -> InputFile:
    """JSON Lines (one object per line), streamed by Arrow's JSON reader.

    The columns and their types come from the first :data:`_JSONL_SAMPLE_ROWS` lines, read
    here and replayed (so stdin works): numbers that are all integers are ``int64``, other
    numbers ``float64``, booleans ``bool``, text ``string``; a column that mixes kinds, or
    holds arrays or objects, is refused naming it. Keys that first appear later are ignored.
    """
    import pyarrow.json as pajson

    name, columns = request.name, request.columns
    location = None if source.from_stdin else local_or_pinned(source.bytes_from)
    raw: BinaryIO
    if location is None:
        raw = sys.stdin.buffer
    elif isinstance(location, Path):
        raw = open(location, "rb")  # noqa: SIM115  (closed by the reader's close())
    else:  # read front to back: a window per GET
        raw = cast(BinaryIO, storage.open_binary(location, sequential=True))
    head = read_head(raw, SNIFF_BYTES)
    compression = sniff_compression(head)
    stream = decompressed(io.BufferedReader(Replay(head, raw)), compression)
    try:
        sample, pending = _jsonl_sample(stream, name, compression)
        kinds = _jsonl_kinds(sample, name)
    except BaseException:
        stream.close()
        raise
    arrow_types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "null": pa.string(),
    }
    wanted = list(kinds) if columns is None else [c for c in kinds if c in set(columns)]
    schema = pa.schema([pa.field(c, arrow_types[kinds[c]]) for c in wanted])
    replay = Replay(b"\n".join(sample) + b"\n" + pending, stream)
    try:
        reader = pajson.open_json(
            pa.PythonFile(io.BufferedReader(replay, buffer_size=1 << 20), mode="r"),
            read_options=pajson.ReadOptions(block_size=_JSONL_BLOCK_BYTES, use_threads=False),
            parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        replay.close()
        raise DataError(f"{name}: not readable JSON Lines ({first_line(exc)})") from None

    def close() -> None:
        reader.close()
        replay.close()

    def batches() -> Iterator[pa.RecordBatch]:
        delivered = 0
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except (pa.ArrowInvalid, OSError) as exc:
                    raise DataError(
                        f"{name}: unreadable JSON Lines after data row {delivered} ({first_line(exc)}); "
                        f"the column types come from the first {_JSONL_SAMPLE_ROWS:,} rows"
                    ) from None
                delivered += batch.num_rows
                yield batch.select(wanted) if batch.schema.names != wanted else batch
        finally:
            close()

    return InputFile(name, schema, None, batches(), close, tuple(kinds))


def _jsonl_sample(stream: Stream, name: str, compression: Compression | None) -> tuple[list[bytes], bytes]:
    """The first complete lines of ``stream`` (up to :data:`_JSONL_SAMPLE_ROWS`), and the
    bytes read past them."""
    sample: list[bytes] = []
    pending = b""
    while len(sample) < _JSONL_SAMPLE_ROWS:
        block = checked_read(name, compression, lambda: stream.read(1 << 16))
        if not block:
            if pending.strip():
                sample.append(pending)
            return sample, b""
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        sample.extend(lines)
        if len(pending) > _JSONL_BLOCK_BYTES:
            raise DataError(f"{name}: a JSON line is longer than {mib(_JSONL_BLOCK_BYTES)}")
    return sample, pending


def _jsonl_kinds(sample: Sequence[bytes], name: str) -> dict[str, str]:
    """Each key of the sampled objects and the kind of its values (``int`` and ``float``
    make ``float``; ``null`` takes any other kind)."""
    import json

    kinds: dict[str, str] = {}
    for row, line in enumerate(sample, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{name}: row {row}: not a JSON object ({exc})") from None
        if not isinstance(record, dict):
            raise DataError(f"{name}: row {row}: not a JSON object (a JSON Lines row is {{...}})")
        for key, value in record.items():
            kind = _json_kind(value)
            if kind in ("array", "object"):
                raise DataError(
                    f"{name}: row {row}: column {key!r} holds a JSON {kind}; values must be scalars"
                )
            seen = kinds.get(key)
            if seen is None or seen == "null" or kind in ("null", seen):
                kinds[key] = kind if seen in (None, "null") else seen
            elif {seen, kind} == {"int", "float"}:
                kinds[key] = "float"
            else:
                raise DataError(
                    f"{name}: row {row}: column {key!r} mixes {seen} and {kind} values", column=key
                )
    if not kinds:
        raise DataError(f"{name}: empty file (no JSON object)")
    return kinds


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "array" if isinstance(value, list) else "object"
