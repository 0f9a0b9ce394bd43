"""An input column named ``base``: its contribution column would be ``contrib_base``, the base
value's column (docs/explanations.md, "Columns").

``--explain`` refuses it before any row is scored, naming that clash: exit 4 when the model
names the column, exit 3 when the column is the input's (a model that knows no names).
``--reasons``, the library and ``serve``'s ``/explain`` keep the base value apart from the
columns, so they explain such a model as any other.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
from modelrouter.backends.sklearn_backend import SklearnModel
from modelrouter.explain import explain
from sklearn.tree import DecisionTreeClassifier

from tests.explain.helpers import frame, modelrouter, save, shap_values, target

COLUMNS = ["a", "b", "c", "base"]


def _named(data: pd.DataFrame) -> pd.DataFrame:
    return data.set_axis(COLUMNS, axis=1)


def _tree(train: pd.DataFrame | np.ndarray, labels: np.ndarray) -> DecisionTreeClassifier:
    return DecisionTreeClassifier(max_depth=4, random_state=0).fit(train, labels)


def _input(folder: Path, rows: int = 20) -> tuple[Path, pd.DataFrame]:
    data = _named(frame(rows, seed=2))
    path = folder / "in.csv"
    data.assign(id=range(rows))[["id", *COLUMNS]].to_csv(path, index=False)
    return path, data


def test_a_model_column_named_base_is_refused_with_exit_4(tmp_path: Path) -> None:
    train = frame(200, seed=1)
    model = save(_tree(_named(train), target(train, 2)), tmp_path)
    source, _ = _input(tmp_path)
    out = tmp_path / "out.csv"
    run = modelrouter("predict", source, "-m", model, "-o", out, "-k", "id", "--explain")
    assert run.returncode == 4
    assert run.stderr == (
        f"error: {model}: the model's input column 'base' gives contribution column 'contrib_base', "
        "the same name as the base value's column, so --explain cannot write both; --reasons K "
        "names it without that clash, or refit the model with the column renamed\n"
    )
    assert not out.exists()


def test_an_input_column_named_base_fed_by_position_is_a_data_error(tmp_path: Path) -> None:
    train = frame(200, seed=1)
    model = save(_tree(train.to_numpy(), target(train, 2)), tmp_path)  # knows no names
    source, _ = _input(tmp_path)
    out = tmp_path / "out.csv"
    run = modelrouter("predict", source, "-m", model, "-o", out, "-k", "id", "--explain")
    assert run.returncode == 3
    assert run.stderr == (
        f"error: {source}: input column 'base' gives contribution column 'contrib_base', the same "
        "name as the base value's column; rename it in the input\n"
    )
    assert not out.exists()

    renamed = tmp_path / "renamed.csv"
    pd.read_csv(source).rename(columns={"base": "offset"}).to_csv(renamed, index=False)
    run = modelrouter("predict", renamed, "-m", model, "-o", out, "-k", "id", "--explain", "--no-stats")
    assert (run.returncode, run.stderr) == (0, "")
    assert pd.read_csv(out).columns[-2:].tolist() == ["contrib_c", "contrib_offset"]


def test_reasons_name_a_column_called_base(tmp_path: Path) -> None:
    train = frame(200, seed=1)
    tree = _tree(_named(train), target(train, 2))
    source, data = _input(tmp_path)
    run = modelrouter(
        "predict", source, "-m", save(tree, tmp_path), "-o", "-", "-k", "id", "--reasons", "4", "--no-stats"
    )
    assert (run.returncode, run.stderr) == (0, "")
    output = pd.read_csv(StringIO(run.stdout))
    values, _ = shap_values(tree, data, np.ones(len(data), int))
    names = output[[f"reason_{i}" for i in range(1, 5)]].to_numpy()
    contributions = output[[f"reason_{i}_contrib" for i in range(1, 5)]].to_numpy()
    columns = np.vectorize(COLUMNS.index)(names)
    np.testing.assert_allclose(contributions, np.take_along_axis(values, columns, axis=1), rtol=0, atol=1e-5)
    assert (np.diff(np.abs(contributions), axis=1) <= 1e-12).all()  # largest first
    assert (names[:, 0] == "base").any()


def test_the_library_keeps_the_base_value_apart_from_a_column_called_base() -> None:
    """What ``serve``'s ``/explain`` answers: ``columns`` and ``base`` are separate keys."""
    train = frame(200, seed=1)
    tree = _tree(_named(train), target(train, 2))
    rows = _named(frame(20, seed=2))
    explanation = explain(SklearnModel("tree.pkl", tree), rows)
    assert explanation.columns == tuple(COLUMNS)
    values, expected = shap_values(tree, rows, np.ones(len(rows), int))
    np.testing.assert_allclose(explanation.contributions, values, rtol=0, atol=1e-5)
    np.testing.assert_allclose(explanation.base, expected, rtol=0, atol=1e-5)
    total = explanation.base + explanation.contributions.sum(axis=1)
    np.testing.assert_allclose(total, tree.predict_proba(rows)[:, 1], rtol=1e-6, atol=1e-12)


def test_a_kept_column_named_like_an_explanation_column_says_so(tmp_path: Path) -> None:
    train = frame(200, seed=1).set_axis(["a", "b", "c", "d"], axis=1)
    model = save(_tree(train, target(train, 2)), tmp_path)
    source = tmp_path / "in.csv"
    frame(20, seed=2).set_axis(["a", "b", "c", "d"], axis=1).assign(reason_1="x").to_csv(source, index=False)
    run = modelrouter("predict", source, "-m", model, "-o", "-", "-k", "reason_1", "--reasons", "2")
    assert run.returncode == 3
    assert run.stderr == (
        f"error: {source}: kept column 'reason_1' clashes with an explanation column; "
        "rename it in the input\n"
    )
