"""``--reasons K`` (largest absolute contribution first, ties in input column order) and the
refusals: no exact method is exit 4 before any row is read, a linear model without
``--background`` and impossible option values are usage errors (exit 2); nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelrouter.explain import Explanation, Space
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeRegressor

from tests.explain.helpers import ROOT, frame, modelrouter, save, target


def _fixed_linear(names: list[str], coef: list[float]) -> LinearRegression:
    """A linear model with exactly these coefficients (ties are exact, not fitted)."""
    model = LinearRegression()
    model.coef_ = np.asarray(coef)
    model.intercept_ = 0.0
    model.n_features_in_ = len(names)
    model.feature_names_in_ = np.asarray(names, dtype=object)
    return model


def test_reasons_rank_by_absolute_value_ties_in_input_order(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    model = save(_fixed_linear(names, [1.0, -1.0, 0.5]), tmp_path)
    pd.DataFrame({"a": [1.0, -1.0], "b": [1.0, -1.0], "c": [1.0, -1.0]}).to_csv(
        tmp_path / "bg.csv", index=False
    )
    rows = pd.DataFrame({"id": [1, 2, 3], "a": [2.0, 1.0, 0.0], "b": [2.0, 3.0, 0.0], "c": [4.0, 2.0, 0.0]})
    rows.to_csv(tmp_path / "in.csv", index=False)
    run = modelrouter(
        "predict", tmp_path / "in.csv", "-m", model, "-o", "-", "-k", "id",
        "--reasons", "3", "--background", tmp_path / "bg.csv", "--no-stats",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert (
        lines[0]
        == "id,prediction,reason_1,reason_1_contrib,reason_2,reason_2_contrib,reason_3,reason_3_contrib"
    )
    # contributions (2, -2, 2): all tie → input order; (1, -3, 1): b, then a and c in order;
    # all zero: input order.
    assert lines[1] == "1,2,a,2,b,-2,c,2"
    assert lines[2] == "2,-1,b,-3,a,1,c,1"
    assert lines[3] == "3,0,a,0,b,0,c,0"


def test_reasons_in_the_library() -> None:
    explanation = Explanation(
        columns=("x", "y", "z"),
        space=Space.VALUE,
        base=np.zeros(2),
        contributions=np.array([[0.5, -0.5, 0.1], [0.0, 0.2, -0.3]]),
    )
    names, values = explanation.reasons(2)
    assert names.tolist() == [["x", "y"], ["z", "y"]]
    assert values.tolist() == [[0.5, -0.5], [-0.3, 0.2]]
    with pytest.raises(ValueError, match="between 1 and the 3 input columns"):
        explanation.reasons(4)


@pytest.fixture
def corrupt_input(tmp_path: Path) -> Path:
    """An input the run would fail on (exit 3) if it read it before refusing the model."""
    path = tmp_path / "input.parquet"
    path.write_bytes(b"not a parquet file")
    return path


def _assert_refused(run: object, code: int, *needles: str) -> None:
    assert run.returncode == code, run.stderr  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in run.stderr  # type: ignore[attr-defined]
    assert run.stdout == ""  # type: ignore[attr-defined]


def test_knn_is_exit_4_before_reading(tmp_path: Path, corrupt_input: Path) -> None:
    train = frame(60)
    model = save(KNeighborsClassifier(3).fit(train, target(train, 2)), tmp_path)
    out = tmp_path / "out.csv"
    run = modelrouter("predict", corrupt_input, "-m", model, "-o", out, "--explain")
    _assert_refused(run, 4, "error:", "KNeighborsClassifier", "exact methods exist for")
    assert not out.exists()


def test_onnx_is_exit_4_before_reading_naming_the_model_it_came_from(
    tmp_path: Path, corrupt_input: Path
) -> None:
    out = tmp_path / "out.csv"
    run = modelrouter("predict", corrupt_input, "-t", "onnx", "-o", out, "--reasons", "2", cwd=ROOT)
    _assert_refused(run, 4, "error:", "an ONNX model", "converted from")
    assert not out.exists()


def test_multi_output_model_is_exit_4(tmp_path: Path, corrupt_input: Path) -> None:
    train = frame(60)
    model = save(
        DecisionTreeRegressor(max_depth=3).fit(train, np.column_stack([train["a"], train["b"]])), tmp_path
    )
    run = modelrouter("predict", corrupt_input, "-m", model, "-o", tmp_path / "out.csv", "--explain")
    _assert_refused(run, 4, "error:", "2 outputs")


def test_linear_model_without_background_is_exit_2(tmp_path: Path, corrupt_input: Path) -> None:
    train = frame(60)
    model = save(LinearRegression().fit(train, target(train, 0)), tmp_path)
    out = tmp_path / "out.csv"
    run = modelrouter("predict", corrupt_input, "-m", model, "-o", out, "--explain")
    _assert_refused(run, 2, "Usage:", "--background", "LinearRegression")
    assert not out.exists()


@pytest.mark.matrix
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--reasons", "0"], "--reasons"),
        (["--reasons", "5"], "the model has 4 input columns"),
        (["--background", "bg.csv"], "--background needs --explain or --reasons"),
    ],
)
def test_option_values_refused_with_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    train = frame(60)
    model = save(DecisionTreeRegressor(max_depth=3).fit(train, target(train, 0)), tmp_path)
    frame(5).to_csv(tmp_path / "in.csv", index=False)
    frame(5).to_csv(tmp_path / "bg.csv", index=False)
    out = tmp_path / "out.csv"
    run = modelrouter("predict", tmp_path / "in.csv", "-m", model, "-o", out, *args, cwd=tmp_path)
    _assert_refused(run, 2, needle)
    assert not out.exists()


def test_predict_proba_does_not_take_explain(tmp_path: Path) -> None:
    run = modelrouter("predict-proba", ROOT / "sample_data" / "wine.csv", "-o", "-", "--explain")
    _assert_refused(run, 2, "No such option: --explain")
