"""The colours of an 8-bit, non-interlaced RGB(A) PNG, decoded with zlib and numpy only.

Enough to read a browser's screenshot in a test without an imaging library: the chunks are
walked, the IDAT stream inflated, and each scanline's filter undone (PNG specification,
section 9 "Filtering").
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Bytes per pixel of the colour types handled: 2 is RGB, 6 is RGBA.
CHANNELS = {2: 3, 6: 4}


def colours(path: Path) -> set[tuple[int, int, int]]:
    """The distinct (r, g, b) colours of the PNG at ``path`` (alpha is ignored).

    Raises ``ValueError`` for anything but an 8-bit, non-interlaced RGB or RGBA image.
    """
    pixels = decode(path.read_bytes())
    rgb = pixels[:, :, :3].reshape(-1, 3).astype(np.uint32)
    packed = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2])
    return {(int(v) >> 16, (int(v) >> 8) & 0xFF, int(v) & 0xFF) for v in packed}


def decode(data: bytes) -> np.ndarray:
    """The pixels of a PNG as a (height, width, channels) uint8 array."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    width = height = channels = 0
    stream = bytearray()
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length  # length, type, body, CRC
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in CHANNELS or interlace:
                raise ValueError(
                    f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}"
                )
            channels = CHANNELS[colour]
        elif kind == b"IDAT":
            stream += body
        elif kind == b"IEND":
            break
    if not channels:
        raise ValueError("PNG without an IHDR chunk")
    raw = zlib.decompress(bytes(stream))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise ValueError(f"PNG data is {len(raw)} bytes, expected {height * (stride + 1)}")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    image = np.zeros((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        prior = image[y] = _unfilter(int(rows[y, 0]), rows[y, 1:], prior, channels)
    return image.reshape(height, width, channels)


def _unfilter(kind: int, line: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    # None, Sub and Up are vectorised (uint8 arithmetic wraps modulo 256 as PNG's does);
    # Average and Paeth depend on the byte just reconstructed, so they loop.
    if kind == 0:
        return line
    if kind == 1:
        return np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
    if kind == 2:
        up: np.ndarray = line + prior
        return up
    if kind not in (3, 4):
        raise ValueError(f"unknown PNG filter type {kind}")
    out = line.tolist()
    previous = prior.tolist()
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        above = previous[i]
        if kind == 3:
            out[i] = (out[i] + (left + above) // 2) & 0xFF
            continue
        corner = previous[i - bpp] if i >= bpp else 0
        guess = left + above - corner
        to_left, to_above, to_corner = abs(guess - left), abs(guess - above), abs(guess - corner)
        if to_left <= to_above and to_left <= to_corner:
            out[i] = (out[i] + left) & 0xFF
        elif to_above <= to_corner:
            out[i] = (out[i] + above) & 0xFF
        else:
            out[i] = (out[i] + corner) & 0xFF
    return np.array(out, dtype=np.uint8)
