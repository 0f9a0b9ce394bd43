"""Pipelines: contributions of transformed features are summed back to their input column.

The one-hot columns of ``city`` give ``contrib_city``; scalers, imputers, ordinal encoders,
feature selectors and a ColumnTransformer's ``'passthrough'`` columns map one to one; a
ColumnTransformer's dropped column contributes 0. A step whose lineage is not known (a user's
``FunctionTransformer`` too) is exit 4 naming it. Linear models are explained against
``--background``: ``contrib = coef · (x − mean(background))`` in the model's input space.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from modelrouter.backends.sklearn_backend import SklearnModel
from modelrouter.explain import ExplanationUnsupportedError, explain
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_selection import SelectKBest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from tests.explain.helpers import modelrouter, save, shap_values


def _data(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, rows),
            "city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], rows),
            "income": rng.normal(50, 15, rows),
            "plan": rng.choice(["basic", "pro"], rows),
            "note": rng.choice(["x", "y"], rows),  # dropped by the ColumnTransformer
        }
    )


def _labels(data: pd.DataFrame) -> np.ndarray:
    return ((data["age"] > 40) ^ (data["city"] == "Oslo") | (data["income"] > 60)).to_numpy().astype(int)


def _preprocess() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("plan", OrdinalEncoder(), ["plan"]),
        ],
        remainder="drop",
    )


def test_one_hot_columns_are_summed_back_to_their_input_column() -> None:
    data = _data(200)
    pipeline = Pipeline(
        [("prep", _preprocess()), ("forest", RandomForestClassifier(8, max_depth=5, random_state=0))]
    )
    pipeline.fit(data, _labels(data))
    rows = data.head(25)
    explanation = explain(SklearnModel("pipeline.pkl", pipeline), rows)
    assert explanation.columns == ("age", "city", "income", "plan", "note")

    # The oracle: shap on the transformed features, the four city columns added up.
    transformed = pipeline[:-1].transform(rows)
    transformed = transformed.toarray() if hasattr(transformed, "toarray") else transformed
    names = list(pipeline[:-1].get_feature_names_out())
    values, expected = shap_values(pipeline[-1], pd.DataFrame(transformed, columns=names), np.ones(25, int))
    by_input = {
        "age": values[:, names.index("numbers__age")],
        "city": values[:, [i for i, n in enumerate(names) if n.startswith("city__")]].sum(axis=1),
        "income": values[:, names.index("numbers__income")],
        "plan": values[:, names.index("plan__plan")],
        "note": np.zeros(25),
    }
    expected_contributions = np.column_stack([by_input[c] for c in explanation.columns])
    np.testing.assert_allclose(explanation.contributions, expected_contributions, rtol=0, atol=1e-5)
    np.testing.assert_allclose(explanation.base, expected, rtol=0, atol=1e-5)
    total = explanation.base + explanation.contributions.sum(axis=1)
    np.testing.assert_allclose(total, pipeline.predict_proba(rows)[:, 1], rtol=1e-6, atol=1e-12)


def test_selector_and_imputer_indicator_lineage() -> None:
    data = _data(200).drop(columns=["city", "plan", "note"])
    data.loc[::7, "age"] = np.nan
    y = _labels(_data(200))
    pipeline = make_pipeline(
        SimpleImputer(add_indicator=True), SelectKBest(k=2), RandomForestClassifier(6, random_state=0)
    ).fit(data, y)
    explanation = explain(SklearnModel("p.pkl", pipeline), data.head(30))
    total = explanation.base + explanation.contributions.sum(axis=1)
    np.testing.assert_allclose(total, pipeline.predict_proba(data.head(30))[:, 1], rtol=1e-6, atol=1e-12)
    kept = pipeline[0].get_feature_names_out()[pipeline[1].get_support()]
    unused = [c for c in data.columns if not any(str(k).endswith(c) for k in kept)]
    for column in unused:  # a column every selected feature ignores contributes nothing
        assert not explanation.contributions[:, explanation.columns.index(column)].any()


def test_a_step_without_known_lineage_is_refused_naming_it() -> None:
    data = _data(100)[["age", "income"]]
    pipeline = make_pipeline(PCA(n_components=2), RandomForestClassifier(4, random_state=0))
    pipeline.fit(data, _labels(_data(100)))
    with pytest.raises(ExplanationUnsupportedError, match="PCA step"):
        explain(SklearnModel("pca.pkl", pipeline), data)


#: ColumnTransformers passing columns through untouched, and the columns they drop.
PASSTHROUGH: dict[str, tuple[Callable[[], ColumnTransformer], set[str]]] = {
    "remainder passthrough": (
        lambda: ColumnTransformer(
            [("codes", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"])], remainder="passthrough"
        ),
        set(),
    ),
    "explicit passthrough, the rest dropped": (
        lambda: ColumnTransformer(
            [("kept", "passthrough", ["age"]), ("city", OneHotEncoder(handle_unknown="ignore"), ["city"])],
            remainder="drop",
        ),
        {"income", "plan"},
    ),
    "explicit and remainder passthrough": (
        lambda: ColumnTransformer(
            [
                ("kept", "passthrough", ["income"]),
                ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                ("plan", OrdinalEncoder(), ["plan"]),
            ],
            remainder="passthrough",
        ),
        set(),
    ),
}

PASSTHROUGH_COLUMNS = ["age", "city", "income", "plan"]


def _passthrough_explained(layout: str, folder: Path, command: bool) -> None:
    """Explain through the real command (``command``) or the same engine in this process, and
    compare with shap on the transformed features summed per input column (by the features'
    names, not by the lineage under test)."""
    build, dropped = PASSTHROUGH[layout]
    data = _data(300)[PASSTHROUGH_COLUMNS]
    pipeline = make_pipeline(build(), GradientBoostingClassifier(n_estimators=10, random_state=0))
    pipeline.fit(data, _labels(_data(300)))
    rows = _data(30, seed=5)[PASSTHROUGH_COLUMNS]
    rows.assign(id=range(30)).to_parquet(folder / "input.parquet")
    out, model = folder / "out.parquet", save(pipeline, folder)
    if command:
        run = modelrouter(
            "predict", folder / "input.parquet", "-m", model, "-o", out, "-k", "id", "--explain", "--no-stats"
        )
        assert (run.returncode, run.stderr) == (0, "")
    else:
        from modelrouter.batch.run import RunOptions, score_file

        options = RunOptions(
            input=str(folder / "input.parquet"), output=str(out), model_path=model, keep=("id",), explain=True
        )
        score_file(options)
    output = pq.read_table(out).to_pandas()
    contributions = output[[f"contrib_{c}" for c in PASSTHROUGH_COLUMNS]].to_numpy()

    transformed = pipeline[:-1].transform(rows)
    transformed = transformed.toarray() if hasattr(transformed, "toarray") else transformed
    names = [str(n).split("__", 1)[1] for n in pipeline[:-1].get_feature_names_out()]
    values, expected = shap_values(pipeline[-1], pd.DataFrame(transformed), np.zeros(30, int))
    owner = [next(c for c in PASSTHROUGH_COLUMNS if n == c or n.startswith(f"{c}_")) for n in names]
    by_input = np.column_stack(
        [values[:, [i for i, o in enumerate(owner) if o == c]].sum(axis=1) for c in PASSTHROUGH_COLUMNS]
    )
    np.testing.assert_allclose(contributions, by_input, rtol=0, atol=1e-5)
    np.testing.assert_allclose(output["contrib_base"], expected, rtol=0, atol=1e-5)
    for column in dropped:
        assert not output[f"contrib_{column}"].any()
    total = output["contrib_base"] + contributions.sum(axis=1)
    np.testing.assert_allclose(total, pipeline.decision_function(rows), rtol=1e-6)


@pytest.mark.matrix
@pytest.mark.parametrize("layout", list(PASSTHROUGH))
def test_passthrough_columns_are_their_own_lineage_through_the_command(layout: str, tmp_path: Path) -> None:
    _passthrough_explained(layout, tmp_path, command=True)


@pytest.mark.parametrize("layout", list(PASSTHROUGH))
def test_passthrough_columns_are_their_own_lineage_in_the_engine(layout: str, tmp_path: Path) -> None:
    _passthrough_explained(layout, tmp_path, command=False)


def test_a_function_transformer_of_the_user_is_refused_naming_it(tmp_path: Path) -> None:
    """Only scikit-learn's own passthrough is an identity: a FunctionTransformer given by the
    user may change or mix its columns, so it stays a step of unknown lineage."""
    data = _data(100)[["age", "income"]]
    scaled = ColumnTransformer([("log", FunctionTransformer(np.log1p), ["income"])], remainder="passthrough")
    pipeline = make_pipeline(scaled, GradientBoostingClassifier(n_estimators=5, random_state=0))
    model = save(pipeline.fit(data, _labels(_data(100))), tmp_path)
    data.assign(id=range(100)).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    run = modelrouter("predict", tmp_path / "in.csv", "-m", model, "-o", out, "-k", "id", "--explain")
    assert run.returncode == 4
    assert run.stderr == (
        f"error: {model}: no exact explanation method for a pipeline with a FunctionTransformer step "
        "(its column lineage is not known); a pipeline made of ColumnTransformer, OneHotEncoder, "
        "OrdinalEncoder, scalers (Standard, MinMax, MaxAbs, Robust), SimpleImputer and feature "
        "selectors before the model\n"
    )
    assert not out.exists()


def test_linear_pipeline_against_a_background_through_the_command(tmp_path: Path) -> None:
    data = _data(300)
    pipeline = Pipeline([("prep", _preprocess()), ("model", LogisticRegression(max_iter=1000))])
    pipeline.fit(data, _labels(data))
    background = data.sample(100, random_state=1)
    background.to_csv(tmp_path / "background.csv", index=False)
    rows = _data(30, seed=5).assign(id=range(30))
    rows.to_parquet(tmp_path / "input.parquet")
    out = tmp_path / "out.parquet"
    run = modelrouter(
        "predict", tmp_path / "input.parquet", "-m", save(pipeline, tmp_path), "-o", out, "-k", "id",
        "--explain", "--background", tmp_path / "background.csv", "--no-stats",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    output = pq.read_table(out)
    assert output.schema.metadata[b"modelrouter.explanation_space"] == b"margin"
    frame = output.to_pandas()
    columns = ["age", "city", "income", "plan", "note"]
    contributions = frame[[f"contrib_{c}" for c in columns]].to_numpy()
    # The oracle: coef · (x − mean(background)) in the transformed space, summed per input.
    prep, coef = pipeline[:-1], pipeline[-1].coef_[0]
    inputs = rows.drop(columns=["id"])
    x = prep.transform(inputs)
    mean = np.asarray(prep.transform(background)).mean(axis=0)
    per_feature = coef * (np.asarray(x) - mean)
    names = list(prep.get_feature_names_out())
    owner = ["city" if n.startswith("city__") else n.split("__")[1] for n in names]
    expected = np.column_stack(
        [per_feature[:, [i for i, o in enumerate(owner) if o == c]].sum(axis=1) for c in columns]
    )
    np.testing.assert_allclose(contributions, expected, rtol=1e-9, atol=1e-12)
    total = frame["contrib_base"] + contributions.sum(axis=1)
    np.testing.assert_allclose(total, pipeline.decision_function(inputs), rtol=1e-6)


def test_linear_regressor_contributions_in_the_library() -> None:
    rng = np.random.default_rng(3)
    data = pd.DataFrame(rng.normal(size=(50, 3)), columns=["p", "q", "r"])
    model = Ridge().fit(data, data["p"] * 2 - data["r"])
    background = data.head(20)
    explanation = explain(SklearnModel("ridge.pkl", model), data, background=background)
    np.testing.assert_allclose(
        explanation.contributions, model.coef_ * (data.to_numpy() - background.to_numpy().mean(axis=0))
    )
    np.testing.assert_allclose(explanation.base + explanation.contributions.sum(axis=1), model.predict(data))
