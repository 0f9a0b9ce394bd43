"""The screenshot decoder of the /docs browser test reads back what a PNG encoder wrote."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.serve.png_colours import colours, decode


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _paeth(left: np.ndarray, above: np.ndarray, corner: np.ndarray) -> np.ndarray:
    guess = left + above - corner
    to_left, to_above, to_corner = abs(guess - left), abs(guess - above), abs(guess - corner)
    return np.where(
        (to_left <= to_above) & (to_left <= to_corner), left, np.where(to_above <= to_corner, above, corner)
    )


def encode(pixels: np.ndarray, filters: list[int]) -> bytes:
    """A PNG of ``pixels`` (height, width, 3 or 4), row y filtered with ``filters[y % len]``."""
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, -1).astype(np.int64)
    lines = []
    for y in range(height):
        line = rows[y]
        above = rows[y - 1] if y else np.zeros_like(line)
        left = np.concatenate([np.zeros(channels, dtype=np.int64), line[:-channels]])
        corner = np.concatenate([np.zeros(channels, dtype=np.int64), above[:-channels]])
        kind = filters[y % len(filters)]
        predicted = [0 * line, left, above, (left + above) // 2, _paeth(left, above, corner)][kind]
        lines.append(bytes([kind]) + ((line - predicted) % 256).astype(np.uint8).tobytes())
    header = struct.pack(">IIBBBBB", width, height, 8, {3: 2, 4: 6}[channels], 0, 0, 0)
    idat = zlib.compress(b"".join(lines))
    # Two IDAT chunks: the stream may be split anywhere.
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat[:7])
        + _chunk(b"IDAT", idat[7:])
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("channels", [3, 4])
def test_every_filter_type_decodes_to_the_pixels_encoded(channels: int) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=(23, 17, channels), dtype=np.uint8)
    assert np.array_equal(decode(encode(pixels, [0, 1, 2, 3, 4, 4, 3, 2, 1])), pixels)


def test_colours_counts_distinct_rgb_ignoring_alpha(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 4), dtype=np.uint8)
    pixels[:2, :, :3] = (73, 204, 144)
    pixels[3, 3] = (97, 175, 254, 10)
    (tmp_path / "a.png").write_bytes(encode(pixels, [4]))
    assert colours(tmp_path / "a.png") == {(0, 0, 0), (73, 204, 144), (97, 175, 254)}


def test_what_it_cannot_read_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PNG file"):
        decode(b"GIF89a")
    grey = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="colour type 0"):
        decode(grey)
