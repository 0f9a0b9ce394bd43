"""Feature-name matching: exact first, then the library's sanitising rule when unambiguous."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelrouter import MissingColumnsError
from modelrouter.backends import InputSchema
from modelrouter.feature_names import NAME_RULES, match_columns, sanitize, suggestions

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(columns=st.lists(names, min_size=1, max_size=8, unique=True), rule=st.sampled_from(sorted(NAME_RULES)))
def test_every_column_is_found_by_its_stored_name_unless_ambiguous(columns: list[str], rule: str) -> None:
    stored = [sanitize(c, rule) for c in columns]
    model_names = list(dict.fromkeys(stored))
    matched, missing = match_columns(model_names, columns, rule)
    for name in model_names:
        exact = name in columns
        twins = [c for c in columns if sanitize(c, rule) == name and c not in set(model_names)]
        if exact:
            assert matched[name] == name  # an exact name always wins
        elif len(twins) == 1:
            assert matched[name] == twins[0]
        else:
            assert name in missing  # two columns sanitise to it: never guessed
    # No input column feeds two model names.
    assert len(set(matched.values())) == len(matched)


def test_the_two_rules_as_the_libraries_apply_them() -> None:
    assert sanitize("mean radius", "lightgbm") == "mean_radius"
    assert sanitize("od280/od315_of_diluted_wines", "lightgbm") == "od280/od315_of_diluted_wines"
    assert sanitize("od280/od315_of_diluted_wines", "skl2onnx") == "od280_od315_of_diluted_wines"
    assert sanitize("3rd col", "skl2onnx") == "_3rd_col"
    assert sanitize("a+b", "skl2onnx") == "a+b"


def test_schema_resolves_to_the_input_spelling_in_model_order() -> None:
    schema = InputSchema(names=("b_x", "a"), dtypes=("number", "number"), width=2, name_rule="lightgbm")
    assert schema.resolve(["a", "b x", "id"]) == ("b x", "a")
    exact_only = InputSchema(names=("b_x", "a"), dtypes=("number", "number"), width=2)
    with pytest.raises(MissingColumnsError, match=r"'b_x' \(did you mean 'b x'\?\)"):
        exact_only.resolve(["a", "b x"])


def test_suggestions_put_the_sanitised_twin_first() -> None:
    assert (
        suggestions("mean_radius", ["radius", "mean radius", "mean_radiuses"], "lightgbm")[0] == "mean radius"
    )
    assert suggestions("zzz", ["alcohol", "ash"]) == []


def test_missing_message_names_hints_before_the_input_listing() -> None:
    available = [f"column number {i}" for i in range(500)]
    missing = [f"absent_{i}" for i in range(40)]
    error = MissingColumnsError(missing, available, {"absent_0": ["column number 0"]})
    text = str(error)
    assert text.index("did you mean 'column number 0'") < text.index("input has:")
    assert "(40 missing in all)" in text and "(500 in all)" in text
    assert len(text) < 1_000  # fits the error-line cap whole
