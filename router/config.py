"""Settings from a TOML file plus environment overrides (docs/specification.md §3).

Search order: the explicit path, ``$MODELROUTER_CONFIG``, ``./modelrouter.toml``, then the
built-in default (``models/default.toml`` in this repository, which pins the shipped models
by sha256). A file replaces the default as a whole. Environment variables override keys of
whichever file is in use:

====================================  ==========================================
``MODELROUTER_DEFAULT_MODEL_TYPE``    ``default_model_type``
``MODELROUTER_ENABLE_ONNX``           ``enable_onnx`` (1/0, true/false, yes/no, on/off)
``MODELROUTER_<TYPE>_PATH``           ``[<type>] path`` (relative to the working directory)
``MODELROUTER_<TYPE>_POOL_SIZE``      ``[<type>] pool_size``
``MODELROUTER_<TYPE>_SHA256``         ``[<type>] sha256``
``MODELROUTER_<TYPE>_CLASSES``        ``[<type>] classes`` (comma-separated)
====================================  ==========================================
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelrouter.backends.base import read_model_bytes
from modelrouter.errors import ConfigError, ModelRouterError
from modelrouter.limits import MAX_POOL_SIZE
from modelrouter.locations import ModelLocation, is_uri, model_location
from modelrouter.model_type import ModelType
from modelrouter.pool import ModelPool

__all__ = [
    "BUILTIN_CONFIG",
    "ModelSettings",
    "Settings",
    "bound_trust",
    "default_pool_size",
    "file_policy",
    "find_config",
    "load_pool",
    "load_settings",
]

#: The built-in default configuration, beside the shipped models.
BUILTIN_CONFIG = Path(__file__).resolve().parent.parent / "models" / "default.toml"

_TOP_KEYS = {"default_model_type", "enable_onnx"}
_MODEL_KEYS = {"classes", "path", "pool_size", "sha256", "trusted"}
#: Pool size when the config does not give one. Types whose one instance already uses every
#: core (ONNX sessions run intra-op threads) default to one instance; the rest to two
#: (scikit-learn mostly scores on one thread, so two instances share the two cores).
_DEFAULT_POOL_SIZES: dict[ModelType, int] = {ModelType.ONNX: 1}
_DEFAULT_POOL_SIZE = 2


def default_pool_size(model_type: ModelType | str) -> int:
    """The pool size of ``model_type`` when neither the config nor ``--pool-size`` gives one."""
    return _DEFAULT_POOL_SIZES.get(ModelType.parse(model_type), _DEFAULT_POOL_SIZE)


_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class ModelSettings:
    """One ``[<type>]`` section: where the model is, how many instances, its pinned digest."""

    model_type: ModelType
    #: A local file (absolute) or a URI string (``s3://…``), see :mod:`modelrouter.locations`.
    path: ModelLocation
    pool_size: int = _DEFAULT_POOL_SIZE  # _model_settings gives each type its own default
    sha256: str | None = None
    trusted: tuple[str, ...] = ()
    #: Class labels, in probability-column order, for an ONNX model that records none.
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Settings:
    """The validated configuration. ``models`` holds only the enabled types."""

    models: Mapping[ModelType, ModelSettings]
    default_model_type: ModelType | None
    enable_onnx: bool
    source: Path
    onnx_switch: str = "enable_onnx = false"  # what disabled ONNX, for error messages

    def model(self, model_type: ModelType | str) -> ModelSettings:
        """The settings of ``model_type``; :class:`ConfigError` when it is not configured."""
        kind = ModelType.parse(model_type)
        if kind in self.models:
            return self.models[kind]
        if kind is ModelType.ONNX and not self.enable_onnx:
            raise ConfigError(f"{self.source}: the onnx model type is disabled ({self.onnx_switch})")
        configured = ", ".join(self.models) or "none"
        raise ConfigError(f"{self.source}: model type '{kind}' is not configured (configured: {configured})")


def find_config(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The config file to use, by docs/specification.md §3's search order."""
    env = os.environ if env is None else env
    if explicit is not None:
        return Path(explicit)
    if env.get("MODELROUTER_CONFIG"):
        return Path(env["MODELROUTER_CONFIG"])
    local = Path("modelrouter.toml")
    if local.is_file():
        return local
    return BUILTIN_CONFIG


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Find, read and validate the configuration; raises :class:`ConfigError` naming the key."""
    env = os.environ if env is None else env
    source = find_config(path, env)
    # ./modelrouter.toml is found, not chosen: it must be the current user's own (see below).
    implicit = path is None and not env.get("MODELROUTER_CONFIG") and source != BUILTIN_CONFIG
    try:
        with open(source, "rb") as handle:
            if implicit:
                _check_found_config(source, os.fstat(handle.fileno()))
            raw = tomllib.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        if source == BUILTIN_CONFIG:
            # Installed from a wheel: no sample models ship with the package, so nothing is
            # configured; `-m PATH` (or a config file, or the environment) names the model.
            return _validate({}, Path.cwd(), source, env)
        raise ConfigError(f"{source}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    return _validate(raw, source.resolve().parent, source, env)


def _check_found_config(source: Path, info: os.stat_result) -> None:
    """ssh's rule for a config picked up from the working directory: owned by the current
    user and writable by nobody else. Otherwise anyone who can write to a shared folder could
    make a cron job started there load their pickle. Checked on the opened file (no race with
    a swap); a symlink placed by someone else is refused as well."""
    me = os.geteuid()
    how = " (found in the working directory; pass it with --config to use it anyway)"
    link = os.lstat(source)
    for owner, what in ((info.st_uid, "owned"), (link.st_uid, "a symlink owned")):
        if owner != me:
            raise ConfigError(
                f"{source}: refusing a config file {what} by uid {owner}, not by the current user "
                f"(uid {me}){how}"
            )
    if info.st_mode & 0o022:
        raise ConfigError(
            f"{source}: refusing a config file writable by group or others (mode "
            f"{info.st_mode & 0o777:04o}; fix with chmod go-w){how}"
        )
    # The folder counts as much as the file: whoever can write to it can swap the config, or
    # the model files its relative paths name, after this check. Like ssh: the folder must be
    # the user's (or root's) and writable by nobody else, unless its sticky bit keeps others
    # from renaming or deleting the user's files (as in /tmp).
    for folder in dict.fromkeys((source.absolute().parent, source.resolve().parent)):
        held = os.stat(folder)
        if held.st_uid not in (me, 0):
            raise ConfigError(
                f"{source}: refusing a config file in {folder}, a folder owned by uid {held.st_uid}, "
                f"not by the current user (uid {me}) or root{how}"
            )
        if held.st_mode & 0o022 and not held.st_mode & stat.S_ISVTX:
            raise ConfigError(
                f"{source}: refusing a config file in {folder}, a folder writable by group or others "
                f"(mode {held.st_mode & 0o777:04o}; fix with chmod go-w, or chmod +t){how}"
            )


def _validate(raw: dict[str, Any], base: Path, source: Path, env: Mapping[str, str]) -> Settings:
    type_names = {t.value for t in ModelType}
    for key in raw:
        if key not in _TOP_KEYS and key not in type_names:
            valid = ", ".join(sorted(_TOP_KEYS | type_names))
            raise ConfigError(f"{source}: unknown key {key!r} (valid: {valid})")
    enable_onnx, switch = _onnx_switch(raw, source, env)
    models = _model_sections(raw, base, source, env, enable_onnx)
    return Settings(
        models=models,
        default_model_type=_default_type(raw, source, env, models),
        enable_onnx=enable_onnx,
        source=source,
        onnx_switch=switch,
    )


def _onnx_switch(raw: dict[str, Any], source: Path, env: Mapping[str, str]) -> tuple[bool, str]:
    """``enable_onnx`` and how it was set (named in the error of a disabled ONNX run)."""
    enable_onnx = raw.get("enable_onnx", True)
    switch = "enable_onnx = false"
    if "MODELROUTER_ENABLE_ONNX" in env:
        enable_onnx = _parse_bool(env["MODELROUTER_ENABLE_ONNX"], "MODELROUTER_ENABLE_ONNX", source)
        switch = f"MODELROUTER_ENABLE_ONNX={env['MODELROUTER_ENABLE_ONNX']}"
    if not isinstance(enable_onnx, bool):
        raise ConfigError(f"{source}: enable_onnx must be true or false (got {enable_onnx!r})")
    return enable_onnx, switch


def _model_sections(
    raw: dict[str, Any], base: Path, source: Path, env: Mapping[str, str], enable_onnx: bool
) -> dict[ModelType, ModelSettings]:
    """One entry per configured model type: its section, then its environment overrides."""
    models: dict[ModelType, ModelSettings] = {}
    for kind in ModelType:
        section = raw.get(kind.value)
        prefix = f"MODELROUTER_{kind.value.upper()}_"
        env_keys = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
        if section is None and "path" not in env_keys:
            continue
        if section is None:  # configured by the environment alone
            section = {"path": str(_location(env_keys["path"], None, prefix + "PATH", source))}
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: [{kind}] must be a table (got {section!r})")
        settings = _model_settings(kind, section, base, source)
        settings = _apply_env(settings, env_keys, prefix, source)
        if kind is ModelType.ONNX and not enable_onnx:
            continue
        models[kind] = settings
    return models


def _default_type(
    raw: dict[str, Any], source: Path, env: Mapping[str, str], models: dict[ModelType, ModelSettings]
) -> ModelType | None:
    """``default_model_type`` (or its variable); when absent, sklearn if configured, else the
    only (or first) configured type (docs/specification.md §3)."""
    default = raw.get("default_model_type")
    default_key = f"{source}: default_model_type"
    if env.get("MODELROUTER_DEFAULT_MODEL_TYPE"):
        default = env["MODELROUTER_DEFAULT_MODEL_TYPE"]
        default_key = f"{source}: MODELROUTER_DEFAULT_MODEL_TYPE"
    if default is None:
        if ModelType.SKLEARN in models:
            return ModelType.SKLEARN
        return next(iter(models), None)
    if not isinstance(default, str):
        raise ConfigError(f"{default_key} must be a string (got {default!r})")
    try:
        default_type = ModelType.parse(default)
    except ModelRouterError as exc:
        raise ConfigError(f"{default_key}: {exc}") from None
    if default_type not in models:
        configured = ", ".join(models) or "none"
        raise ConfigError(
            f"{source}: default_model_type {default!r} is not configured (configured: {configured})"
        )
    return default_type


def _model_settings(kind: ModelType, section: dict[str, Any], base: Path, source: Path) -> ModelSettings:
    for key in section:
        if key not in _MODEL_KEYS:
            valid = ", ".join(sorted(_MODEL_KEYS))
            raise ConfigError(f"{source}: unknown key {kind}.{key!r} (valid: {valid})")
    path = section.get("path")
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{source}: {kind}.path must be a non-empty string (got {path!r})")
    settings = ModelSettings(
        model_type=kind, path=_location(path, base, f"{kind}.path", source), pool_size=default_pool_size(kind)
    )
    if "pool_size" in section:
        size = section["pool_size"]
        if isinstance(size, str):  # a TOML file has numbers: "5" is a mistake to point at
            raise ConfigError(
                f"{source}: {kind}.pool_size must be an integer from 1 to {MAX_POOL_SIZE} "
                f"(got the string {size!r}; write it without quotes)"
            )
        settings = replace(settings, pool_size=_pool_size(size, f"{kind}.pool_size", source))
    if "sha256" in section:
        settings = replace(settings, sha256=_digest(section["sha256"], f"{kind}.sha256", source))
    if "trusted" in section:
        trusted = section["trusted"]
        if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
            raise ConfigError(f"{source}: {kind}.trusted must be a list of type names (got {trusted!r})")
        settings = replace(settings, trusted=tuple(trusted))
    if "classes" in section:
        classes = section["classes"]
        if (
            not isinstance(classes, list)
            or not classes
            or not all(isinstance(c, str | int) and not isinstance(c, bool) for c in classes)
        ):
            raise ConfigError(
                f"{source}: {kind}.classes must be a non-empty list of class labels (got {classes!r})"
            )
        settings = replace(settings, classes=tuple(str(c) for c in classes))
    return settings


def _apply_env(settings: ModelSettings, keys: dict[str, str], prefix: str, source: Path) -> ModelSettings:
    for key, value in keys.items():
        name = prefix + key.upper()
        if key == "path":
            path = _location(value, None, name, source)
            if path != settings.path and "sha256" not in keys:
                # A pin is the digest of the file it names: another file drops it (set
                # MODELROUTER_<TYPE>_SHA256 too to pin the new one).
                settings = replace(settings, sha256=None)
            settings = replace(settings, path=path)
        elif key == "pool_size":
            settings = replace(settings, pool_size=_pool_size(value, name, source))
        elif key == "sha256":
            # An empty value clears the pin; anything else must be a digest.
            digest = _digest(value, name, source) if value.strip() else None
            settings = replace(settings, sha256=digest)
        elif key == "trusted":
            settings = replace(settings, trusted=tuple(t.strip() for t in value.split(",") if t.strip()))
        elif key == "classes":
            settings = replace(settings, classes=tuple(c.strip() for c in value.split(",") if c.strip()))
        else:
            valid = ", ".join(prefix + k.upper() for k in sorted(_MODEL_KEYS))
            raise ConfigError(f"unknown environment variable {name} (valid: {valid})")
    return settings


def _location(raw: str, base: Path | None, key: str, source: Path) -> ModelLocation:
    """A model path (relative to ``base``), a URI, or a ``file://`` URI made a local path."""
    try:
        return model_location(raw, base)
    except ValueError as exc:
        raise ConfigError(f"{source}: {key}: {exc}") from None


def _pool_size(value: object, key: str, source: Path) -> int:
    try:
        size = int(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    except ValueError:
        size = None
    if size is None or not 1 <= size <= MAX_POOL_SIZE:
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}…"
        raise ConfigError(f"{source}: {key} must be an integer from 1 to {MAX_POOL_SIZE} (got {shown})")
    return size


def _digest(value: object, key: str, source: Path) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ConfigError(f"{source}: {key} must be 64 hexadecimal characters (got {value!r})")
    return value.lower()


def _parse_bool(value: str, key: str, source: Path) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{key} must be true or false (got {value!r})")


def _same_model_file(a: ModelLocation, b: ModelLocation) -> bool:
    if isinstance(a, Path) and isinstance(b, Path):
        try:
            return os.path.samefile(a, b)
        except OSError:
            return a.absolute() == b.absolute()
    return str(a) == str(b)


def bound_trust(configured: ModelSettings | None, data: bytes | None) -> tuple[str, ...]:
    """The configured skops ``trusted`` types that apply to a model file whose bytes are ``data``.

    Trust granted by a section that pins a digest was granted to *that* file: it applies only
    to bytes with that sha256, never to any other file of the type (``-m x.skops``, ``inspect
    other.skops``). A section without a pin trusts the types for every file of its type."""
    if configured is None or not configured.trusted:
        return ()
    if configured.sha256 is None:
        return configured.trusted
    if data is not None and hashlib.sha256(data).hexdigest() == configured.sha256:
        return configured.trusted
    return ()


def file_policy(
    settings: Settings, model_type: ModelType | str, location: ModelLocation, data: bytes
) -> tuple[str | None, tuple[str, ...]]:
    """``(sha256 pin, trusted types)`` the config sets for the model file at ``location``
    (its bytes: ``data``), for commands that take a model file (``inspect``, ``convert``).

    The configured file of the type gets the configured pin and trust, as ``predict`` does
    without ``-m``; another file gets no pin and only trust that is not bound to another
    digest (:func:`bound_trust`)."""
    kind = ModelType.parse(model_type)
    configured = settings.models.get(kind)
    if configured is not None and _same_model_file(location, configured.path):
        return configured.sha256, configured.trusted
    return None, bound_trust(configured, data)


def load_pool(
    settings: Settings,
    model_type: ModelType | str,
    *,
    path: ModelLocation | None = None,
    pool_size: int | None = None,
    sha256: str | None = None,
    threads: int | None = None,
    trust: tuple[str, ...] = (),
    fetch: Callable[[str], bytes] | None = None,
    classes: Sequence[str] | None = None,
    background: bool = False,
) -> ModelPool:
    """Load the pool of ``model_type`` as configured, with per-run overrides.

    ``path`` replaces the configured file; the configured pin then does not apply (docs/specification.md
    §3) and only ``sha256`` is checked. ``trust`` adds skops types to the configured
    ``trusted`` ones. ``classes`` (``--classes``) replaces the configured ``classes``. A
    model at a URI (``s3://…``) is read once — by ``fetch`` when given, else by
    :func:`modelrouter.remote.fetch_model` — and the pin is checked on those bytes before
    anything is loaded. ``background``: see :meth:`ModelPool.load`.
    """
    kind = ModelType.parse(model_type)
    if path is not None:
        if kind is ModelType.ONNX and not settings.enable_onnx:
            settings.model(kind)  # raises: ONNX disabled
        configured = settings.models.get(kind)
        size = pool_size or (configured.pool_size if configured else default_pool_size(kind))
        data = _fetched(path, fetch)
        if configured is not None and configured.trusted and configured.sha256 is not None and data is None:
            # Read once here: the trust is decided on exactly the bytes that are loaded.
            data = read_model_bytes(path, None)
        trusted = (*bound_trust(configured, data), *trust)
        return ModelPool.load(
            kind,
            path,
            size,
            threads=threads,
            sha256=sha256,
            trusted=trusted,
            classes=classes,
            data=data,
            background=background,
        )
    model = settings.model(kind)
    return ModelPool.load(
        kind,
        model.path,
        pool_size or model.pool_size,
        threads=threads,
        sha256=sha256 or model.sha256,
        trusted=(*model.trusted, *trust),
        classes=classes if classes is not None else model.classes,
        data=_fetched(model.path, fetch),
        background=background,
    )


def _fetched(location: ModelLocation, fetch: Callable[[str], bytes] | None) -> bytes | None:
    """The bytes of a model at a URI (``None`` for a local file, which the pool reads)."""
    if fetch is None or not (isinstance(location, str) and is_uri(location)):
        return None  # the pool reads it (a URI through modelrouter.remote)
    return fetch(location)
