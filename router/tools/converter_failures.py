"""A converter's failure as one line: its root cause, capped, and the versions that work.

Converters wrap the real error in one that quotes everything they were building; the
innermost exception names the cause. Failures known to come from the versions installed
together (measured) also say which versions convert.
"""

from __future__ import annotations

__all__ = ["DETAIL_LIMIT", "KNOWN_INCOMPATIBILITIES", "failure_detail", "installed_versions"]


#: Failures of the converters that come from the versions installed together, with the
#: versions that work (measured). Keyed by a fragment of the root cause's message.
KNOWN_INCOMPATIBILITIES: dict[str, str] = {
    "Expected an int, got a boolean": (
        "a known version incompatibility: skl2onnx (≤ 1.20 at least) writes tree attributes "
        "as Python booleans, which protobuf 7.34 and later refuse in ONNX integer lists "
        "(installed: protobuf {protobuf}, onnx {onnx}, skl2onnx {skl2onnx}); it converts with "
        "protobuf < 7.34, e.g. pip install 'protobuf>=6.31,<7.34' (onnx 1.23 accepts 6.31+), "
        "where it is only a deprecation warning"
    ),
}

#: Characters of a library's error message quoted in ours (the cause is named separately).
DETAIL_LIMIT = 300


def failure_detail(exc: BaseException) -> str:
    """What went wrong in a converter: the root cause (not the wrapper), capped, and why.

    Converters wrap the real error in one that quotes everything they were building
    (skl2onnx: a whole tree ensemble's arrays in one message). The innermost exception of
    the chain names the cause; a known incompatibility also gets the versions that work.
    """
    root = exc
    seen = {id(root)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        root = nxt
    text = " ".join(str(root).split())
    shown = text if len(text) <= DETAIL_LIMIT else text[:DETAIL_LIMIT] + " …"
    detail = f"{type(root).__name__}: {shown}" if shown else type(root).__name__
    for fragment, explanation in KNOWN_INCOMPATIBILITIES.items():
        if fragment in text:
            return f"{detail}; {explanation.format(**installed_versions())}"
    return detail


def installed_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("protobuf", "onnx", "skl2onnx", "onnxmltools"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
