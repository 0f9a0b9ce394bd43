"""``numeric_matrix``'s one-call path for uniform columns (router/features.py) gives what the
column-by-column path gives: the same dtype, shape, values and NaN, or the same error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrouter import features

TYPES = [pa.float64(), pa.float32(), pa.int64(), pa.int32(), pa.uint8(), pa.int8(), pa.bool_(), pa.float16()]


def _value(data: st.DataObject, kind: pa.DataType) -> Any:
    if data.draw(st.integers(0, 9)) == 0:
        return None
    if pa.types.is_floating(kind):
        return data.draw(st.floats(-1e4, 1e4, allow_nan=False, width=16))
    if pa.types.is_boolean(kind):
        return data.draw(st.booleans())
    return data.draw(st.integers(0, 100))


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "value", call()
    except Exception as exc:
        return "error", (type(exc), str(exc))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_uniform_columns_in_one_call_match_column_by_column(
    data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, chunks = data.draw(st.integers(0, 5)), data.draw(st.integers(1, 3))
    first = data.draw(st.sampled_from(TYPES))
    same = data.draw(st.booleans())
    columns = {}
    for j in range(data.draw(st.integers(1, 4))):
        kind = first if same else data.draw(st.sampled_from(TYPES))
        parts = [pa.array([_value(data, kind) for _ in range(rows)], kind) for _ in range(chunks)]
        columns[f"c{j}"] = pa.chunked_array(parts, kind)
    table = pa.table(columns)
    names = data.draw(st.lists(st.sampled_from([*columns, "absent"]), min_size=1, max_size=5))
    dtype = data.draw(st.sampled_from([None, "float32", "float64"]))
    fast = _outcome(lambda: features.numeric_matrix(table, names, dtype))
    with monkeypatch.context() as patched:
        patched.setattr(features, "_uniform_matrix", lambda *_: None)
        reference = _outcome(lambda: features.numeric_matrix(table, names, dtype))
    assert fast[0] == reference[0]
    if fast[0] == "error":
        assert fast[1] == reference[1]
    else:
        assert fast[1].dtype == reference[1].dtype and fast[1].shape == reference[1].shape
        assert np.array_equal(fast[1], reference[1], equal_nan=True)
        assert fast[1].flags.c_contiguous and fast[1].flags.writeable


def test_the_one_call_path_is_taken_for_float_columns() -> None:
    table = pa.concat_tables([pa.table({"a": [1.0, None], "b": [2.0, 3.0]})] * 2)
    assert features._uniform_matrix(table, ["b", "a"]) is not None
