"""The Arrow reading of large ``{"rows": [...]}`` bodies agrees with the reference path.

``arrow_rows_table`` parses a rows body with Arrow's JSON reader, without a Python object per
row; the reference (orjson, then one list per column) decides every body it hands back. The
property: for any body, the Arrow reading either declines (``None``) or gives exactly the
reference's table (types and values, NaN and -0.0 included), and a 413 only where the
reference gives the same 413. The end-to-end error cases of large bodies (which take this
path first) are in ``test_serve.py``'s ``ERROR_CASES``.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from modelrouter.backends import InputSchema
from modelrouter.errors import ModelRouterError
from modelrouter.serve import bodies
from modelrouter.serve.problems import Problem

from tests.serve.test_serve import FEATURES, json_body, wine_rows

KEYS = ["a", "b", "c", "d:e", "f"]
WINE = InputSchema(tuple(FEATURES), ("float64",) * len(FEATURES), len(FEATURES))


def _reference(body: bytes, max_rows: int, schema: InputSchema) -> tuple[Any, ...]:
    """What ``json_table`` answers without the Arrow reading."""
    try:
        document = bodies._json_document(body)
        if "columns" in document:
            return ("columns",)
        rows = bodies.json_rows(body, max_rows)
        return ("table", bodies.rows_table(rows, schema) if rows else None)
    except Problem as exc:
        return ("problem", exc.status, str(exc))
    except ModelRouterError as exc:
        return ("error", type(exc).__name__, str(exc))


def _arrow(body: bytes, max_rows: int, schema: InputSchema) -> tuple[Any, ...]:
    try:
        return ("table", bodies.arrow_rows_table(body, max_rows, schema))
    except Problem as exc:
        return ("problem", exc.status, str(exc))


def _same(a: pa.Table, b: pa.Table) -> bool:
    # repr: NaN equals NaN and -0.0 differs from 0.0, as the values themselves do.
    return a.schema.equals(b.schema) and repr(a.to_pylist()) == repr(b.to_pylist())


_ANY = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=3)
    | st.sampled_from(["12:30", "2020-01-01", "", "a:b", "1.5"])
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.sampled_from(["x", "y"]), st.integers(), max_size=2)
)
_KINDS: dict[str, st.SearchStrategy[Any]] = {
    "float": st.floats(),  # NaN and ±inf are written as NaN / Infinity
    "int": st.integers(-(2**63), 2**64),
    "mixed": st.integers(-10, 10) | st.floats(allow_nan=False),
    "text": st.text(alphabet="ab: \u00e9", max_size=3),
    "bool": st.booleans(),
    "any": _ANY,
}


@st.composite
def _rows_bodies(draw: st.DrawFn) -> bytes:
    """Rows bodies near the usual one: a kind per column, with now and then a stray value,
    a row with other keys, a key twice, another document shape, pretty-printing."""
    kind = {key: draw(st.sampled_from(sorted(_KINDS))) for key in KEYS}
    usual = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=5))
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        keys = usual if draw(st.integers(0, 4)) else draw(st.lists(st.sampled_from(KEYS), unique=True))
        rows.append({k: draw(_ANY if draw(st.integers(0, 9)) == 0 else _KINDS[kind[k]]) for k in keys})
    document: Any = {"rows": rows}
    if draw(st.integers(0, 20)) == 0:
        document = draw(st.sampled_from([{"rows": rows, "x": 1}, {"columns": {}}, rows, {"rows": [1, None]}]))
    text = json.dumps(
        document, indent=draw(st.sampled_from([None, None, 1])), ensure_ascii=draw(st.booleans())
    )
    if draw(st.integers(0, 10)) == 0:
        text = text.replace('"a": ', '"a": 1, "a": ', 1)
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=_rows_bodies(),
    names=st.sampled_from([None, ("a", "b"), ("a",), ("c", "a"), ("d:e",), ("f", "b")]),
    max_rows=st.sampled_from([3, 100]),
)
@example(body=b'{"rows": [{"a": 1, "b": null}, {"a": 2}]}', names=None, max_rows=100)  # missing, not null
@example(body=b'{"rows": [{"a": 1, "b": null}, {"a": 2, "c": "x:y"}]}', names=None, max_rows=100)
@example(body=b'{"rows": [{"a": 1, "b": null}, {"a": 2, "b:": 1}]}', names=None, max_rows=100)
@example(body=b'{"rows": [{"a": 1}]} {"rows": [{"a": 2}]}', names=None, max_rows=100)
@example(body=b'{"rows": [{"a": 1}, null]}', names=None, max_rows=100)
@example(body=b'{"rows": [{"a": "2020-01-01"}]}', names=None, max_rows=100)
@example(body=b'{"rows": [{"a": 1}, {"a": 12345678901234567890}]}', names=None, max_rows=100)
@example(body=b'{"rows": [{"a": 1e400}]}', names=None, max_rows=100)
@example(body=b'{"rows": [{"a": null}, {"a": null}]}', names=("a",), max_rows=100)
@example(body=b'{"rows": [{"a": 1}, {"a": 2.5}]}', names=None, max_rows=100)  # kinds from row 0
@example(body=b'{"rows": [{"a": 1.5}, {"a": 2}]}', names=None, max_rows=100)
@example(body=b'{"rows": [{"a": 1}, {"a": null}, {}]}', names=None, max_rows=100)
@example(body=b'{"rows": [{"a": 1}, {"b": 2}]}', names=None, max_rows=100)
@example(body=b'{"rows": [{}]}', names=None, max_rows=100)
@example(body=b'{"rows": [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}]}', names=("a",), max_rows=3)
def test_arrow_reading_declines_or_equals_the_reference(
    body: bytes, names: tuple[str, ...] | None, max_rows: int
) -> None:
    schema = InputSchema(names, ("float64",) * len(names or ()), len(names or ()))
    fast = _arrow(body, max_rows, schema)
    if fast == ("table", None):
        return  # declined: the reference path decides
    reference = _reference(body, max_rows, schema)
    if fast[0] == "problem":
        assert fast == reference
    else:
        assert reference[0] == "table" and reference[1] is not None, (reference, fast)
        assert _same(fast[1], reference[1]), (reference[1], fast[1])


@pytest.mark.parametrize("indent", [None, 2])
def test_the_usual_large_body_is_read_by_arrow(indent: int | None) -> None:
    """Many rows of numbers, every key in every row (pandas' ``to_json(orient="records")``),
    plus a column the model ignores: read by Arrow, and the reference's table."""
    document = json_body(wine_rows(178))
    document["rows"][5]["magnesium"] = None  # a written null is a value, not a missing key
    body = json.dumps(document, indent=indent).encode()
    fast = bodies.arrow_rows_table(body, 1000, WINE)
    assert fast is not None
    assert _same(fast, bodies.rows_table(document["rows"], WINE))
    assert fast.column_names == FEATURES
    assert _same(bodies.json_table(body, 1000, WINE), fast)


@pytest.mark.timeout(20)  # reading such a body with inferred keys takes minutes (one column per key)
def test_rows_bringing_new_keys_are_handed_back_at_once() -> None:
    body = json.dumps({"rows": [{f"k{i}": i} for i in range(20_000)]}).encode()
    assert bodies.arrow_rows_table(body, 100_000, InputSchema(None, (), 0)) is None


def test_deeply_nested_values_are_handed_back_without_descending() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for body in (b'{"rows": ' + deep + b"}", b'{"rows": [{"a": 1}, {"a": ' + deep + b"}]}"):
        assert bodies.arrow_rows_table(body, 100, InputSchema(None, (), 0)) is None
