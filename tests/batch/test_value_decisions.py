"""Same value, same decision, from every backend of one model (docs/reliability.md).

A NaN or an infinity is scored, or refused, from what the model accepts — never labelled by a
graph that cannot score it. Each model kind is fitted here, saved as a scikit-learn pickle and
converted to ONNX with skl2onnx, and the real ``modelrouter`` command scores one file through
both, with predict and predict-proba, under ``--on-error fail`` and ``skip``: the exit code,
the row and column named, and the rejected rows must agree, and match what the kind accepts.

Also here: a model that raises on some valid rows is the model's fault (exit 4, naming the
row), and a NaN inside a ColumnTransformer pipeline names its row and column.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from tests.misbehaving import FailsOnSomeRows

# One module fixture starts 36 runs of the real command (2 at a time, 1-3 s each).
pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"

#: 1-based data rows of the scored file: a NaN in ``ash`` on row 3, +inf in ``magnesium`` on
#: row 6, -inf in ``hue`` on row 8; the other rows are finite.
NAN_ROW, INF_ROW, NEG_INF_ROW = 3, 6, 8
COLUMNS = {NAN_ROW: "ash", INF_ROW: "magnesium", NEG_INF_ROW: "hue"}


@dataclass(frozen=True)
class Kind:
    """A model kind and the non-finite rows its scikit-learn form refuses (1-based)."""

    name: str
    refused: frozenset[int]
    probabilities: bool = True
    #: Only NaN in the input: the kind's pickle and graph decide infinities differently
    #: (a forest refuses them, its ONNX tree ensemble compares them), see docs/reliability.md.
    nan_only: bool = False


KINDS = (
    # LinearClassifier + Normalizer: nothing handles a non-finite value.
    Kind("logistic", frozenset({NAN_ROW, INF_ROW, NEG_INF_ROW})),
    # Scaler + MatMul/Add/Relu/Softmax: generic ops propagate NaN into every score.
    Kind("scaled_mlp", frozenset({NAN_ROW, INF_ROW, NEG_INF_ROW})),
    # SVMClassifier (predict only: an SVC without probability=True gives no probabilities).
    Kind("svc", frozenset({NAN_ROW, INF_ROW, NEG_INF_ROW}), probabilities=False),
    # Imputer(NaN) first: NaN is replaced, infinities are refused (SimpleImputer refuses them).
    Kind("imputed_logistic", frozenset({INF_ROW, NEG_INF_ROW})),
    # TreeEnsembleClassifier: NaN goes down the missing-value branch, as in the forest.
    Kind("forest", frozenset(), nan_only=True),
)


def _estimator(name: str) -> Any:
    if name == "logistic":
        return LogisticRegression(max_iter=5000)
    if name == "scaled_mlp":
        return make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=2000, random_state=0)
        )
    if name == "svc":
        return make_pipeline(StandardScaler(), SVC())
    if name == "imputed_logistic":
        return make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=5000))
    return RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    env["PYTHONPATH"] = str(ROOT)  # tests.misbehaving, as a user's own estimator module
    return subprocess.run(
        [str(MODELROUTER), *args, "--no-stats", "--no-progress"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rejected_rows(path: Path) -> list[tuple[int, str]]:
    with path.open(newline="") as handle:
        return [(int(r["row"]), r["column"]) for r in csv.DictReader(handle)]


def _wine_file(folder: Path, nan_only: bool) -> Path:
    frame = load_wine(as_frame=True).data.head(10).copy()
    frame.insert(0, "id", np.arange(1, 11))
    text = frame.astype(object)
    text.loc[NAN_ROW - 1, "ash"] = ""
    if not nan_only:
        text.loc[INF_ROW - 1, "magnesium"] = "inf"
        text.loc[NEG_INF_ROW - 1, "hue"] = "-inf"
    path = folder / "wine.csv"
    text.to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class Case:
    kind: Kind
    model: str  # pkl | onnx
    command: str  # predict | predict-proba
    policy: str  # fail | skip


CASES = [
    Case(kind, model, command, policy)
    for kind in KINDS
    for model in ("pkl", "onnx")
    for command in (("predict", "predict-proba") if kind.probabilities else ("predict",))
    for policy in ("fail", "skip")
]


def _case_param(case: Case) -> Any:
    # make test keeps predict for every kind and model with --on-error fail, and skip for the
    # logistic kind; predict-proba's cells (the same decision through the probability
    # outputs) and the other kinds' skip cells run in make test-slow (tests/tiers.py).
    slow = case.command == "predict-proba" or (case.policy == "skip" and case.kind.name != "logistic")
    marks = (pytest.mark.slow,) if slow else ()
    return pytest.param(case, id=f"{case.kind.name}-{case.model}-{case.command}-{case.policy}", marks=marks)


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Case, tuple[Path, subprocess.CompletedProcess[str]]]:
    from skl2onnx import to_onnx

    # Only the cases selected in this session run (-m "not slow" leaves predict-proba out).
    selected = _selected_cases(request)

    data = load_wine(as_frame=True)
    features = data.data.astype(np.float32)
    folders: dict[str, Path] = {}
    for kind in KINDS:
        folder = tmp_path_factory.mktemp(kind.name)
        model = _estimator(kind.name).fit(features, data.target)
        joblib.dump(model, folder / "model.pkl")
        with warnings.catch_warnings():
            # skl2onnx reads SVC's probA_, deprecated in scikit-learn 1.9 (a converter's
            # concern, not the behaviour under test).
            warnings.simplefilter("ignore", FutureWarning)
            graph = to_onnx(model, features.to_numpy()[:1], options={"zipmap": False})
        (folder / "model.onnx").write_bytes(graph.SerializeToString())
        _wine_file(folder, kind.nan_only)
        folders[kind.name] = folder

    def run(case: Case) -> tuple[Path, subprocess.CompletedProcess[str]]:
        folder = folders[case.kind.name]
        out = f"{case.model}-{case.command}-{case.policy}.csv"
        args = [case.command, "wine.csv", "-m", f"model.{case.model}", "-k", "id", "-o", out]
        if case.policy == "skip":
            args += ["--on-error", "skip"]
        return folder / out, run_cli(args, folder)

    cases = [case for case in CASES if case in selected]
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(cases, pool.map(run, cases), strict=True))


def _selected_cases(request: pytest.FixtureRequest) -> set[Case]:
    """The cases of this module's tests that this session runs, and the pairs the
    label-agreement test compares (predict, skip) whenever that test runs."""
    selected: set[Case] = set()
    for item in request.session.items:
        if getattr(item, "module", None) is not request.module:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "case" in params:
            selected.add(params["case"])
        elif item.name.startswith("test_pickle_and_graph_give_the_same_labels"):
            selected.update(c for c in CASES if c.command == "predict" and c.policy == "skip")
    return selected


@pytest.mark.parametrize("case", [_case_param(case) for case in CASES])
def test_every_backend_decides_a_value_alike(
    case: Case, outcomes: dict[Case, tuple[Path, subprocess.CompletedProcess[str]]]
) -> None:
    out, result = outcomes[case]
    kind = case.kind
    refused = sorted(kind.refused)
    if case.policy == "fail":
        if not refused:
            assert result.returncode == 0, result.stderr
            assert len(pd.read_csv(out)) == 10
            return
        # The row named is one the kind refuses, with its column. (Which one, when several
        # are refused, is the backend's: scikit-learn's scaler checks infinities before its
        # estimator checks NaN.)
        named = [
            row
            for row in refused
            if f"error: wine.csv: row {row}: column {COLUMNS[row]!r}: value " in result.stderr
        ]
        assert result.returncode == 3, result.stderr
        assert len(named) == 1, result.stderr
        assert "rejected by the model" in result.stderr
        assert not out.exists()
        return
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(out)
    assert scored["id"].tolist() == [i for i in range(1, 11) if i not in kind.refused]
    rejects = out.with_name(out.name.replace(".csv", ".rejects.csv"))
    expected = [(r, COLUMNS[r]) for r in refused]
    assert rejected_rows(rejects) == expected


@pytest.mark.slow  # it needs 8 more runs; make test compares both backends' decisions above
def test_pickle_and_graph_give_the_same_labels_where_both_score(
    outcomes: dict[Case, tuple[Path, subprocess.CompletedProcess[str]]],
) -> None:
    """Where a value is scored, both backends label the rows alike (the decision is not a
    different model)."""
    for kind in KINDS:
        pickled, _ = outcomes[Case(kind, "pkl", "predict", "skip")]
        graph, _ = outcomes[Case(kind, "onnx", "predict", "skip")]
        assert pd.read_csv(pickled)["prediction"].tolist() == pd.read_csv(graph)["prediction"].tolist(), kind


# -- a model that raises on valid rows; a NaN inside a ColumnTransformer ------------------------------


@pytest.fixture(scope="module")
def faulty_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faulty")
    data = load_wine(as_frame=True)
    for mode in ("honest", "everywhere"):
        model = FailsOnSomeRows(LogisticRegression(max_iter=5000), mode, limit=120).fit(
            data.data, data.target
        )
        joblib.dump(model, folder / f"{mode}.pkl")
    frame = data.data.head(40).copy()
    frame.insert(0, "id", np.arange(1, 41))
    frame.to_csv(folder / "wine.csv", index=False)
    return folder


def _over_limit(folder: Path) -> list[int]:
    frame = pd.read_csv(folder / "wine.csv")
    return frame.loc[frame["magnesium"] > 120, "id"].tolist()


@pytest.mark.matrix
@pytest.mark.parametrize("command", ["predict", "predict-proba"])
@pytest.mark.parametrize("chunk", ["7", "32768"])
def test_model_raising_on_valid_rows_is_exit_4_naming_the_row(
    faulty_folder: Path, command: str, chunk: str
) -> None:
    bad = _over_limit(faulty_folder)
    assert len(bad) >= 2 and bad[0] > 0
    result = run_cli(
        [command, "wine.csv", "-m", "honest.pkl", "-k", "id", "-o", "out.csv", "--chunk-size", chunk],
        faulty_folder,
    )
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith(
        f"error: wine.csv: row {bad[0]}: honest.pkl: the model failed while predicting "
        "(ValueError: lookup table has no entry for this magnesium level)"
    ), result.stderr
    assert not (faulty_folder / "out.csv").exists()


def test_skip_rejects_exactly_the_rows_the_model_fails_on(faulty_folder: Path) -> None:
    args = [
        "predict",
        "wine.csv",
        "-m",
        "honest.pkl",
        "-k",
        "id",
        "-o",
        "skip.csv",
        "--on-error",
        "skip",
        "--chunk-size",
        "16",
    ]
    result = run_cli(args, faulty_folder)
    assert result.returncode == 0, result.stderr
    bad = _over_limit(faulty_folder)
    assert [row for row, _ in rejected_rows(faulty_folder / "skip.rejects.csv")] == bad
    assert pd.read_csv(faulty_folder / "skip.csv")["id"].tolist() == [i for i in range(1, 41) if i not in bad]


def test_skip_does_not_hide_a_model_that_fails_on_every_row(faulty_folder: Path) -> None:
    args = ["predict", "wine.csv", "-m", "everywhere.pkl", "-k", "id", "-o", "all.csv", "--on-error", "skip"]
    result = run_cli(args, faulty_folder)
    assert result.returncode == 4, result.stderr
    assert "everywhere.pkl: the model failed while predicting (ValueError:" in result.stderr
    assert not (faulty_folder / "all.csv").exists()
    assert not (faulty_folder / "all.rejects.csv").exists()


def test_nan_inside_a_column_transformer_names_row_and_column(tmp_path: Path) -> None:
    data = load_wine(as_frame=True)
    frame = data.data[["alcohol", "ash", "magnesium"]].copy()
    frame["region"] = np.where(frame["alcohol"] > 13, "north", "south")
    columns = ColumnTransformer(
        [
            ("text", OneHotEncoder(handle_unknown="ignore"), ["region"]),
            ("numbers", StandardScaler(), ["alcohol", "ash", "magnesium"]),
        ]
    )
    model = make_pipeline(columns, LogisticRegression(max_iter=5000)).fit(frame, data.target)
    joblib.dump(model, tmp_path / "pipeline.pkl")
    sample = frame.head(6).astype(object)
    sample.insert(0, "id", range(1, 7))
    sample.loc[2, "ash"] = ""
    sample.to_csv(tmp_path / "in.csv", index=False)
    failed = run_cli(["predict", "in.csv", "-m", "pipeline.pkl", "-k", "id", "-o", "out.csv"], tmp_path)
    assert failed.returncode == 3, failed.stderr
    assert failed.stderr.startswith("error: in.csv: row 3: column 'ash': value nan rejected by the model"), (
        failed.stderr
    )
    skipped = run_cli(
        ["predict", "in.csv", "-m", "pipeline.pkl", "-k", "id", "-o", "out.csv", "--on-error", "skip"],
        tmp_path,
    )
    assert skipped.returncode == 0, skipped.stderr
    assert rejected_rows(tmp_path / "out.rejects.csv") == [(3, "ash")]
