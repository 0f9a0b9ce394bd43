"""A native booster load tried in a child process first, so a crash there is a model error.

The structure checks of :mod:`modelrouter.backends.booster_files` refuse the damage we know
of; XGBoost's and LightGBM's C++ loaders and predictors may still read out of bounds or
abort on damage nobody has listed yet, and a signal kills the whole process (exit 134/139)
with whatever output it had written. So before a process first loads a booster natively,
a child process (this interpreter, ``python -m modelrouter.backends.booster_probe``) loads
the same bytes through the same code (:meth:`BoosterModel.from_checked`) and predicts on a
small probe matrix (a row of zeros, a row of NaN). If the child dies by a signal or
exits in error, the parent raises :class:`ModelLoadError` naming the file and what happened
(docs/security.md, "Native booster files are validated…").

A file that passed is remembered by the sha256 of the bytes the library loads: within the
process, and on disk in a small cache (``$MODELROUTER_BOOSTER_CACHE``, else
``$XDG_CACHE_HOME/modelrouter/verified-boosters``, else ``~/.cache/…``), one file per digest
listing the library versions it passed with, so a file is checked once per machine and
library version. The cache is best effort: a cache that cannot be read or written means
checking every time, never an error.
"""

from __future__ import annotations

import faulthandler
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from modelrouter.errors import ModelLoadError
from modelrouter.model_type import ModelType

if TYPE_CHECKING:
    from modelrouter.backends.boosters import BoosterModel

__all__ = ["CACHE_ENV", "cache_dir", "main", "verified_natively"]

#: Overrides the cache folder; set and empty, there is no cache (every first load is checked).
CACHE_ENV = "MODELROUTER_BOOSTER_CACHE"

_LIBRARY = {ModelType.XGBOOST: "XGBoost", ModelType.LIGHTGBM: "LightGBM"}

#: The child's exit status when the library refused the file cleanly (a Python exception):
#: its message, the last line of its stdout, is the parent's error.
_REFUSED = 3

#: How long the child may take, once the file is loaded, to predict the two probe rows and
#: exit. The damage the child is there for can corrupt its heap instead of killing it, and a
#: corrupt heap can deadlock as well as fault (``logging.shutdown`` at exit was seen waiting
#: for ever on a lock, once in ~200 runs of a damaged LightGBM file); two rows take
#: milliseconds even for a model of 100,000 trees, so a child still running after this long
#: is hung, and the file is damaged.
_PROBE_SECONDS = 30.0

#: The first line faulthandler writes when its watchdog ends the child.
_WATCHDOG_LINE = "Timeout ("

#: Digests (with the library version) that passed in this process; bounded, as a server
#: may load many models over its life.
_VERIFIED: dict[str, None] = {}
_VERIFIED_MAX = 256
#: One child at a time: threads loading the same file (a pool's background loads, serve's
#: models) wait for the first check instead of each starting a child.
_LOCK = threading.Lock()


def cache_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """The folder of the verified-boosters cache, or ``None`` when caching is turned off."""
    env = os.environ if env is None else env
    if CACHE_ENV in env:
        return Path(env[CACHE_ENV]) if env[CACHE_ENV] else None
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG rule: a relative value is ignored
        home = env.get("HOME") or os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "modelrouter" / "verified-boosters"


def verified_natively(model_type: ModelType, payload: bytes, where: object, version: str) -> None:
    """Load ``payload`` (what the library will be given) in a child process, unless its
    digest passed before with this library ``version``.

    Blocks for the child's run (a second or so for a model of a few MB); raises
    :class:`ModelLoadError` naming ``where`` when the child crashes, is killed or refuses
    the file. Thread-safe.
    """
    key = hashlib.sha256(payload).hexdigest()
    stamp = f"{model_type.value} {version}"
    with _LOCK:
        if f"{key} {stamp}" in _VERIFIED:
            return
        entry = _cache_entry(key)
        if entry is None or not _cached(entry, stamp):
            _check_in_child(model_type, payload, where)
            if entry is not None:
                _remember_on_disk(entry, stamp)
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.pop(next(iter(_VERIFIED)))
        _VERIFIED[f"{key} {stamp}"] = None


def _cache_entry(key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / key


def _cached(entry: Path, stamp: str) -> bool:
    try:
        return stamp in entry.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False


def _remember_on_disk(entry: Path, stamp: str) -> None:
    """Add ``stamp`` to the entry, written whole (temporary file, then rename); any
    failure leaves the cache as it was."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            lines = entry.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        fd, temp = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("".join(f"{line}\n" for line in dict.fromkeys([*lines, stamp]) if line))
            os.replace(temp, entry)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass


def _timeout(size: int) -> float:
    """Generous: a loaded machine, a big model (a load takes ~0.1 s per MB)."""
    return 120.0 + size / 1e6


def _check_in_child(model_type: ModelType, payload: bytes, where: object) -> None:
    library = _LIBRARY[model_type]
    # -P: the working directory is not put on sys.path (a stray xgboost.py there is not
    # imported). subprocess starts the child by fork+exec (vfork where it can): it inherits
    # none of the parent's memory, as a multiprocessing fork would, and imports only this
    # module's few dependencies, where multiprocessing's spawn re-imports the parent's
    # __main__ (the whole CLI).
    command = [sys.executable, "-P", "-m", __name__, model_type.value, str(where)]
    timeout = _timeout(len(payload))
    try:
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise ModelLoadError(
            f"{where}: cannot start the process that checks the {library} model ({exc.strerror})"
        ) from None
    try:
        report, errors = child.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ModelLoadError(
            f"{where}: the {library} library did not finish loading it in {timeout:.0f} s"
        ) from None
    finally:
        if child.poll() is None:  # interrupted, or timed out
            child.kill()
            child.wait()
    _verdict(child.returncode, report.decode("utf-8", "replace"), errors, where, library)


def _verdict(status: int, report: str, errors: bytes, where: object, library: str) -> None:
    """Raise unless the child's ``status`` says the model loaded and predicted.

    ``report`` holds the child's lines: ``loaded`` once the library loaded the file, then
    ``{"error": …}`` if it refused it cleanly."""
    if status == 0:
        return
    lines = report.splitlines()
    if status == 1 and "loaded" in lines and _WATCHDOG_LINE in errors.decode("utf-8", "replace"):
        raise ModelLoadError(
            f"{where}: the {library} library hung predicting a probe row (zeros, NaN) with it or freeing it "
            f"(no answer in {_PROBE_SECONDS:g} s), tried in a separate process: the file is damaged"
        )
    if status < 0:
        if -status == signal.SIGINT:  # Ctrl-C reached the child first: the parent's is on its way
            raise KeyboardInterrupt
        stage = "predicting a probe row (zeros, NaN) with it" if "loaded" in lines else "loading it"
        raise ModelLoadError(
            f"{where}: the {library} library crashed ({_signal_name(-status)}) {stage}, "
            "tried in a separate process: the file is damaged"
        )
    if status == _REFUSED and lines and lines[-1].startswith("{"):
        raise ModelLoadError(str(json.loads(lines[-1])["error"]))
    last = (errors.decode("utf-8", "replace").strip().splitlines() or [""])[-1][:200]
    raise ModelLoadError(
        f"{where}: the process that checks the {library} model failed (exit {status}) {last}".rstrip()
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# -- the child -----------------------------------------------------------------------------


def _probe(model: BoosterModel) -> None:
    """Predict a row of zeros and a row of NaN (missing values take the trees' default
    branches) through the backend's own prediction, and check the outputs per row."""
    import numpy as np
    from modelrouter.backends.boosters import expected_outputs

    width = model.schema.width
    matrix = np.vstack([np.zeros(width), np.full(width, np.nan)]).reshape(2, width)
    raw = np.asarray(model._raw(matrix))
    if raw.size != 2 * expected_outputs(model.task):
        raise ModelLoadError(
            f"{model.path}: the model gives {raw.size // 2} outputs per row, "
            f"its objective implies {expected_outputs(model.task)}; multi-output boosters are not supported"
        )


def main(argv: list[str] | None = None) -> int:
    """The child: ``python -m modelrouter.backends.booster_probe TYPE WHERE`` with the
    payload on stdin. Writes ``loaded`` on stdout once the library loaded it; exits 0 when
    it also predicts, 3 with a line ``{"error": message}`` when the library refuses it
    cleanly; a crash is the parent's to report."""
    model_type, where = (argv if argv is not None else sys.argv[1:])[:2]
    # The result goes to the real stdout; what the native code prints goes to stderr.
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    payload = sys.stdin.buffer.read()
    # XGBoost and LightGBM import scikit-learn (and through it scipy.stats) for their
    # estimator wrappers, which a Booster never uses: two thirds of the child's time.
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]
    from modelrouter.backends import backend_for
    from modelrouter.backends.boosters import BoosterModel

    backend = backend_for(model_type)
    assert issubclass(backend, BoosterModel)
    try:
        model = backend.from_checked(where, payload, threads=1)
        result.write("loaded\n")
        result.flush()
        # A C thread ends the process (exit 1) if the probe or the exit after it hangs: it
        # needs no GIL, so it fires however the main thread is stuck. It stays armed through
        # the interpreter's exit, which is part of the check: freeing the damaged model's
        # memory is where glibc most often finds the heap corrupt (and aborts).
        faulthandler.dump_traceback_later(_PROBE_SECONDS, exit=True)
        _probe(model)
        del model  # the library's memory is freed here, in the check, not at some later exit
    except Exception as exc:  # a refusal: the parent reports it as its own load would
        from modelrouter.backends.boosters import native_message

        library = _LIBRARY[ModelType.parse(model_type)]
        message = (
            str(exc)
            if isinstance(exc, ModelLoadError)
            else f"{where}: the {library} library cannot load or predict with it ({native_message(exc)})"
        )
        result.write(json.dumps({"error": message}) + "\n")
        result.close()
        return _REFUSED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
