"""What a data path holds, from its name and its first bytes: format, compression, delimiter.

The formats are registered once, in :data:`FORMATS`: name, suffixes, the rules that differ
between formats (a text stream or not, how cells are written, where provenance goes), and
the reader and writer factories, named as ``module:function`` and imported when first
used. Everything that lists suffixes or format names (detection, datasets,
``--input-format``/``--output-format``), reads or writes a file derives from it. Adding a
format means an entry here and its reader and writer modules (docs/development.md).

Names: ``<stem><data suffix>``, where the data suffix is ``.csv``, ``.tsv`` (CSV with tabs),
``.jsonl`` or ``.ndjson`` (JSON Lines), ``.parquet`` or ``.pq``, optionally followed by a
compression suffix for text formats — ``.gz``, ``.bz2``, ``.zst`` — so ``day.csv.gz`` is
gzip'd CSV whose stem is ``day``. Output names
keep the whole data suffix together (``day.predictions.csv.gz``, never
``day.csv.predictions.gz``).

Inputs are decompressed by what they hold, not by their name: the magic bytes of gzip, bzip2
and Zstandard cannot start a UTF-8 CSV header, so a compressed stream on stdin or a file
without the suffix is read as well. Outputs are compressed by their suffix.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal, TypeVar

__all__ = [
    "COMPRESSION_SUFFIXES",
    "DATA_SUFFIXES",
    "FORMATS",
    "Compression",
    "FileFormat",
    "FormatSpec",
    "compression_of",
    "data_suffix",
    "known_suffixes",
    "parse_delimiter",
    "sniff_compression",
    "split_name",
    "suffix_delimiter",
    "with_data_suffix",
]

Compression = Literal["gzip", "bz2", "zstd"]

#: Compression suffixes of CSV files, and the pyarrow codec each one means.
COMPRESSION_SUFFIXES: dict[str, Compression] = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
#: The name of a data format (``--input-format``, ``--output-format``).
FileFormat = Literal["csv", "parquet", "jsonl"]


@dataclass(frozen=True)
class FormatSpec:
    """One data format: its suffixes (the first is the one outputs get), its rules and its
    reader and writer.

    - ``text``: a text stream — compressed by a suffix (``.gz``…), read from stdin and
      pipes, written with a delimiter and decimal mark where it has them; otherwise a
      binary file with its own page compression (``--compression``) and a footer that
      carries the run's provenance.
    - ``text_cells``: every value is written as the text a CSV cell holds
      (:mod:`modelrouter.storage.cells`).
    - ``rewritable``: a local output can be rewritten with other column types until the
      commit (kept CSV columns typed in Parquet, :mod:`modelrouter.batch.kept_types`).
    - ``sidecar``: the input's identity (``--resume``) is recorded in a JSON file beside the
      output (:mod:`modelrouter.storage.input_identity`).
    - ``reader``: ``module:function`` taking ``(ReadSource, ReadRequest)`` and returning an
      :class:`~modelrouter.batch.input_file.InputFile`.
    - ``writer``: ``module:function`` taking ``(sink, schema, WriteStyle)`` and returning the
      row writer and the byte stream its owner closes (:func:`modelrouter.storage.writers.open_writer`).
    """

    name: FileFormat
    title: str
    suffixes: tuple[str, ...]
    text: bool
    reader: str
    writer: str
    text_cells: bool = False
    rewritable: bool = False
    sidecar: bool = False

    def open_reader(self) -> Any:
        """The reader function (imported on first use)."""
        return _factory(self.reader)

    def open_writer(self) -> Any:
        """The writer factory (imported on first use)."""
        return _factory(self.writer)


def _factory(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


#: Every data format, by name.
FORMATS: dict[FileFormat, FormatSpec] = {
    "csv": FormatSpec(
        "csv",
        "CSV",
        (".csv", ".tsv"),
        text=True,
        reader="modelrouter.batch.csv_reader:open_csv",
        writer="modelrouter.storage.csv_writer:open_csv_writer",
        text_cells=True,
        sidecar=True,
    ),
    "parquet": FormatSpec(
        "parquet",
        "Parquet",
        (".parquet", ".pq"),
        text=False,
        reader="modelrouter.batch.parquet_reader:open_parquet",
        writer="modelrouter.storage.parquet_writer:open_parquet_writer",
        rewritable=True,
    ),
    "jsonl": FormatSpec(
        "jsonl",
        "JSON Lines",
        (".jsonl", ".ndjson"),
        text=True,
        reader="modelrouter.batch.jsonl_reader:open_jsonl",
        writer="modelrouter.storage.jsonl_writer:open_jsonl_writer",
        sidecar=True,
    ),
}
#: Data suffixes and the format each one means (``.tsv``: CSV separated by tabs).
DATA_SUFFIXES: dict[str, FileFormat] = {s: spec.name for spec in FORMATS.values() for s in spec.suffixes}


def known_suffixes() -> list[str]:
    """Every suffix a data file may have, compressed text formats included (for messages
    and dataset listings)."""
    plain = sorted(DATA_SUFFIXES)
    compressed = [f"{s}{c}" for s in plain if FORMATS[DATA_SUFFIXES[s]].text for c in COMPRESSION_SUFFIXES]
    return plain + compressed


#: The magic numbers of the compressed formats (bzip2: "BZh", a block size digit, then the
#: block magic π; so a CSV header starting "BZh" is not mistaken for it).
_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_BZIP2_BLOCK = b"\x31\x41\x59\x26\x53\x59"
#: Bytes needed to recognise every format above.
SNIFF_BYTES = 10


def split_name(path: str | Path) -> tuple[str, str, str]:
    """``(stem, data suffix, compression suffix)`` of a file name, in the name's own case.

    ``day.csv.gz`` → ``("day", ".csv", ".gz")``; ``x.parquet`` → ``("x", ".parquet", "")``;
    a name without a known data suffix keeps its last suffix as the "data suffix"
    (``notes.txt`` → ``("notes", ".txt", "")``), as :attr:`Path.suffix` does.
    """
    name = Path(path).name
    stem, compression = name, ""
    last = Path(name).suffix
    if last.lower() in COMPRESSION_SUFFIXES and Path(name[: -len(last)]).suffix.lower() in DATA_SUFFIXES:
        stem, compression = name[: -len(last)], last
    data = Path(stem).suffix
    return (stem[: -len(data)] if data else stem), data, compression


def data_suffix(path: str | Path) -> str:
    """The whole data suffix: ``.csv.gz``, ``.tsv``, ``.parquet``…; ``""`` when there is none."""
    _, data, compression = split_name(path)
    return data + compression


_P = TypeVar("_P", bound=PurePath)


def with_data_suffix(path: _P, suffix: str) -> _P:
    """``path`` with its whole data suffix replaced by ``suffix`` (which may be compound)."""
    stem, _, _ = split_name(path.name)
    return path.with_name(stem + suffix)


def compression_of(path: str | Path) -> Compression | None:
    """The compression a CSV output gets from its name (``None``: plain)."""
    _, _, compression = split_name(path)
    return COMPRESSION_SUFFIXES.get(compression.lower())


def suffix_delimiter(path: str | Path) -> str | None:
    """The delimiter a name implies: a tab for ``.tsv`` (also ``.tsv.gz``…), else ``None``."""
    _, data, _ = split_name(path)
    return "\t" if data.lower() == ".tsv" else None


def sniff_compression(head: bytes) -> Compression | None:
    """The compression whose magic number ``head`` (the first bytes of a stream) starts with."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if (
        head[:3] == b"BZh"
        and head[3:4] in b"123456789"
        and head[4:10] in (_BZIP2_BLOCK, b"\x17\x72\x45\x38\x50\x90")
    ):
        return "bz2"  # the block magic, or the end-of-stream magic of an empty stream
    return None


#: Spellings of the tab accepted by --delimiter (a real tab is awkward to type in a shell).
_TAB_NAMES = {"tab", "\\t", "\t"}
#: Characters a delimiter cannot be: CSV's quote and line breaks.
_FORBIDDEN = {'"', "\n", "\r"}


def parse_delimiter(value: str) -> str:
    """The one-character delimiter ``value`` names; :class:`ValueError` saying why not."""
    if value.lower() in _TAB_NAMES:
        return "\t"
    if len(value) != 1 or not value.isascii():
        raise ValueError(f"must be one ASCII character, or 'tab' (got {value!r})")
    if value in _FORBIDDEN or not value.isprintable():
        raise ValueError(f"cannot be a quote, a line break or a control character (got {value!r})")
    return value
