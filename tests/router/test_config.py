"""Configuration: search order and precedence, validation, sha256 pins, enable_onnx."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from modelrouter import ConfigError, IntegrityError, ModelType, load_pool, load_settings
from modelrouter.config import BUILTIN_CONFIG


def write_config(folder: Path, text: str, name: str = "modelrouter.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_default_points_at_the_shipped_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # works from any working directory
    settings = load_settings(env={})
    assert settings.source == BUILTIN_CONFIG
    assert settings.default_model_type is ModelType.SKLEARN
    # The shipped models; xgboost and lightgbm are optional extras with no shipped file.
    assert set(settings.models) == {ModelType.SKLEARN, ModelType.ONNX, ModelType.SKOPS}
    for kind in settings.models:
        model = settings.models[kind]
        assert isinstance(model.path, Path)
        assert model.path.is_file()
        assert model.sha256 == hashlib.sha256(model.path.read_bytes()).hexdigest()


def test_precedence_flag_env_local_builtin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    local = write_config(tmp_path, '[sklearn]\npath = "local.pkl"\n')
    env_file = write_config(tmp_path, '[sklearn]\npath = "env.pkl"\n', "env.toml")
    flag_file = write_config(tmp_path, '[sklearn]\npath = "flag.pkl"\n', "flag.toml")
    env = {"MODELROUTER_CONFIG": str(env_file)}
    assert load_settings(flag_file, env=env).models[ModelType.SKLEARN].path == tmp_path / "flag.pkl"
    assert load_settings(None, env=env).models[ModelType.SKLEARN].path == tmp_path / "env.pkl"
    assert load_settings(None, env={}).models[ModelType.SKLEARN].path == tmp_path / "local.pkl"
    local.unlink()
    assert load_settings(None, env={}).source == BUILTIN_CONFIG


def test_environment_overrides_keys_of_the_file(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        'default_model_type = "sklearn"\n[sklearn]\npath = "a.pkl"\npool_size = 2\n[onnx]\npath = "a.onnx"\n',
    )
    env = {
        "MODELROUTER_DEFAULT_MODEL_TYPE": "onnx",
        "MODELROUTER_SKLEARN_POOL_SIZE": "5",
    }
    settings = load_settings(config, env=env)
    assert settings.default_model_type is ModelType.ONNX
    assert settings.models[ModelType.SKLEARN].pool_size == 5


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    config = write_config(sub, '[onnx]\npath = "../models/m.onnx"\n')
    monkeypatch.chdir("/")
    settings = load_settings(config, env={})
    assert settings.models[ModelType.ONNX].path == (tmp_path / "models" / "m.onnx").resolve()
    assert settings.default_model_type is ModelType.ONNX  # the only configured type


@pytest.mark.parametrize(
    "text,message",
    [
        ('defualt_model_type = "onnx"\n', "unknown key 'defualt_model_type'"),
        ('[sklearn]\npath = "a.pkl"\npoolsize = 2\n', "unknown key sklearn.'poolsize'"),
        (
            '[sklearn]\npath = "a.pkl"\npool_size = 0\n',
            "sklearn.pool_size must be an integer from 1 to 64 (got 0)",
        ),
        (
            '[sklearn]\npath = "a.pkl"\npool_size = 100000\n',
            "sklearn.pool_size must be an integer from 1 to 64 (got 100000)",
        ),
        (
            '[sklearn]\npath = "a.pkl"\npool_size = "5"\n',
            "sklearn.pool_size must be an integer from 1 to 64 (got the string '5'; write it without quotes)",
        ),
        ('[sklearn]\npath = "a.pkl"\nsha256 = "abc"\n', "sklearn.sha256 must be 64 hexadecimal characters"),
        ("[sklearn]\npool_size = 1\n", "sklearn.path must be a non-empty string"),
        (
            'default_model_type = "onnx"\n[sklearn]\npath = "a.pkl"\n',
            "default_model_type 'onnx' is not configured",
        ),
        ("enable_onnx = 3\n", "enable_onnx must be true or false"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_invalid_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    config = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        load_settings(config, env={})
    assert message in str(excinfo.value)
    assert str(config) in str(excinfo.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_enable_onnx_false_creates_no_onnx_pool(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, 'enable_onnx = false\n[sklearn]\npath = "a.pkl"\n[onnx]\npath = "a.onnx"\n'
    )
    settings = load_settings(config, env={})
    assert set(settings.models) == {ModelType.SKLEARN}
    with pytest.raises(ConfigError, match="the onnx model type is disabled"):
        load_pool(settings, ModelType.ONNX)
    on = load_settings(config, env={"MODELROUTER_ENABLE_ONNX": "1"})
    assert set(on.models) == {ModelType.SKLEARN, ModelType.ONNX}


def test_sha256_mismatch_refuses_to_load(tmp_path: Path, models_dir: Path) -> None:
    model = tmp_path / "m.pkl"
    model.write_bytes((models_dir / "forest.pkl").read_bytes())
    config = write_config(tmp_path, f'[sklearn]\npath = "m.pkl"\nsha256 = "{"0" * 64}"\n')
    settings = load_settings(config, env={})
    with pytest.raises(IntegrityError) as excinfo:
        load_pool(settings, ModelType.SKLEARN)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert str(excinfo.value) == (
        f"{model}: sha256 is {digest}, expected {'0' * 64}; refusing to load a model that differs "
        "from the pinned one"
    )
    good = write_config(tmp_path, f'[sklearn]\npath = "m.pkl"\nsha256 = "{digest}"\n', "good.toml")
    assert load_pool(load_settings(good, env={}), ModelType.SKLEARN).size == 2


def test_model_path_override_ignores_the_configured_pin(tmp_path: Path, models_dir: Path) -> None:
    config = write_config(tmp_path, f'[sklearn]\npath = "m.pkl"\npool_size = 3\nsha256 = "{"0" * 64}"\n')
    settings = load_settings(config, env={})
    pool = load_pool(settings, ModelType.SKLEARN, path=models_dir / "forest.pkl")
    assert pool.size == 3  # configured pool_size still applies
    with pytest.raises(IntegrityError):
        load_pool(settings, ModelType.SKLEARN, path=models_dir / "forest.pkl", sha256="1" * 64)


def test_every_instance_is_built_from_the_checked_bytes(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read once: what was hashed is what is unpickled, however many instances."""
    model = tmp_path / "m.pkl"
    model.write_bytes((models_dir / "forest.pkl").read_bytes())
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    reads: list[Path] = []
    real_open = os.open

    def counting_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        reads.append(Path(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    config = write_config(tmp_path, f'[sklearn]\npath = "m.pkl"\nsha256 = "{digest}"\npool_size = 3\n')
    pool = load_pool(load_settings(config, env={}), ModelType.SKLEARN)
    assert pool.size == 3
    assert [p.resolve() for p in reads].count(model.resolve()) == 1


def test_an_environment_path_drops_the_pin_and_an_empty_digest_clears_it(tmp_path: Path) -> None:
    pin = "ab" * 32
    config = write_config(tmp_path, f'[sklearn]\npath = "a.pkl"\nsha256 = "{pin}"\n')
    pinned = load_settings(config, env={}).models[ModelType.SKLEARN]
    assert pinned.sha256 == pin
    moved = load_settings(config, env={"MODELROUTER_SKLEARN_PATH": str(tmp_path / "b.pkl")})
    assert moved.models[ModelType.SKLEARN].sha256 is None  # the pin named a.pkl's digest
    repinned = load_settings(
        config,
        env={"MODELROUTER_SKLEARN_PATH": str(tmp_path / "b.pkl"), "MODELROUTER_SKLEARN_SHA256": "CD" * 32},
    )
    assert repinned.models[ModelType.SKLEARN].sha256 == "cd" * 32
    same = load_settings(config, env={"MODELROUTER_SKLEARN_PATH": str(tmp_path / "a.pkl")})
    assert same.models[ModelType.SKLEARN].sha256 == pin  # the same file keeps its pin
    cleared = load_settings(config, env={"MODELROUTER_SKLEARN_SHA256": ""})
    assert cleared.models[ModelType.SKLEARN].sha256 is None
    with pytest.raises(ConfigError, match="MODELROUTER_SKLEARN_SHA256 must be 64 hexadecimal"):
        load_settings(config, env={"MODELROUTER_SKLEARN_SHA256": "x"})
