"""A reader of UBJSON (Universal Binary JSON), as XGBoost writes it, checked as it reads.

XGBoost's own parser trusts the lengths in the file; this one reads the document in Python
first (:mod:`~modelrouter.backends.booster_files`), so a truncated or lying file is a
``ValueError`` here, never a read past the end.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

__all__ = ["UBJReader"]


class UBJReader:
    """A reader of the UBJSON that XGBoost writes (``save_model("x.ubj")``).

    Big-endian scalars, length-prefixed strings and keys, and strongly typed arrays
    (``[$<type>#<count>``). Every length is checked against the bytes left, so a truncated
    or lying file is an error here, never a read past the end."""

    _SCALARS: ClassVar[dict[bytes, tuple[str, int]]] = {
        b"i": (">b", 1),
        b"U": (">B", 1),
        b"I": (">h", 2),
        b"l": (">i", 4),
        b"L": (">q", 8),
        b"d": (">f", 4),
        b"D": (">d", 8),
    }

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0
        self.depth = 0

    def document(self) -> Any:
        value = self.value(self.marker())
        if self.data[self.at :].strip():
            raise ValueError(f"unexpected bytes after the document at byte {self.at}")
        return value

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise ValueError(f"truncated at byte {self.at} (needs {n} more bytes)")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def marker(self) -> bytes:
        while True:
            m = self.take(1)
            if m != b"N":  # no-op
                return m

    def count(self) -> int:
        m = self.marker()
        if m not in self._SCALARS or m in (b"d", b"D"):
            raise ValueError(f"bad length marker {m!r} at byte {self.at - 1}")
        n = int(self.scalar(m))
        if n < 0 or n > len(self.data):
            raise ValueError(f"length {n} at byte {self.at} is impossible for a {len(self.data)}-byte file")
        return n

    def scalar(self, m: bytes) -> float | int:
        fmt, size = self._SCALARS[m]
        value: float | int = struct.unpack(fmt, self.take(size))[0]
        return value

    def value(self, m: bytes) -> Any:
        if m in self._SCALARS:
            return self.scalar(m)
        if m in {b"S", b"H"}:
            return self.take(self.count()).decode("utf-8")
        if m == b"C":
            return self.take(1).decode("latin-1")
        if m == b"T":
            return True
        if m == b"F":
            return False
        if m == b"Z":
            return None
        if m in (b"[", b"{"):
            self.depth += 1
            if self.depth > 64:
                raise ValueError("nested more than 64 levels deep")
            result = self.array() if m == b"[" else self.object()
            self.depth -= 1
            return result
        raise ValueError(f"unknown marker {m!r} at byte {self.at - 1}")

    def typed(self) -> tuple[bytes | None, int | None]:
        kind = count = None
        if self.data[self.at : self.at + 1] == b"$":
            self.at += 1
            kind = self.take(1)
        if self.data[self.at : self.at + 1] == b"#":
            self.at += 1
            count = self.count()
        elif kind is not None:
            raise ValueError(f"typed container without a count at byte {self.at}")
        return kind, count

    def array(self) -> list[Any]:
        kind, count = self.typed()
        if count is not None:
            if kind in self._SCALARS:
                fmt, size = self._SCALARS[kind]
                raw = self.take(size * count)
                return list(struct.unpack(f">{count}{fmt[1]}", raw))
            return [self.value(kind if kind is not None else self.marker()) for _ in range(count)]
        items: list[Any] = []
        while True:
            m = self.marker()
            if m == b"]":
                return items
            items.append(self.value(m))

    def object(self) -> dict[str, Any]:
        kind, count = self.typed()
        result: dict[str, Any] = {}
        if count is not None:
            for _ in range(count):
                key = self.take(self.count()).decode("utf-8")
                result[key] = self.value(kind if kind is not None else self.marker())
            return result
        while True:
            if self.data[self.at : self.at + 1] == b"}":
                self.at += 1
                return result
            key = self.take(self.count()).decode("utf-8")
            result[key] = self.value(self.marker())
