"""One run's in-flight state (docs/reliability.md): a fresh one per run, found by the handler."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from modelrouter.storage import inflight


class Upload:
    def __init__(self) -> None:
        self.aborted = 0

    def abort_upload(self) -> None:
        self.aborted += 1


def test_a_new_run_starts_clean_and_drops_what_an_abandoned_run_left(tmp_path: Path) -> None:
    before = inflight.start_run()
    left = tmp_path / ".out.parquet.tmp"
    left.write_bytes(b"partial")
    upload = Upload()
    before.temp_files.add(left)
    before.uploads.add(upload)
    before.commit.published = 2
    with before.commit.section(final=True):
        pass
    assert before.commit.defer(signal.SIGTERM)  # committed: a signal no longer interrupts

    after = inflight.start_run()
    assert inflight.current() is after is not before
    assert not left.exists() and upload.aborted == 1
    assert (after.temp_files, after.uploads, after.commit.published) == (set(), set(), 0)
    assert not after.commit.defer(signal.SIGTERM)  # the new run is interruptible


def test_a_signal_held_during_a_section_is_raised_when_it_ends() -> None:
    run = inflight.start_run()
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        with run.commit.section(final=False):
            assert run.commit.defer(signal.SIGUSR1)
            assert received == []
        assert received == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)
    with pytest.raises(AssertionError):
        assert run.commit.committed


class _Interrupted(BaseException):
    pass


def test_a_signal_right_after_a_temporary_file_is_created_still_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal lands between mkstemp and the registration (what a busy machine makes of
    a signal sent as soon as the file appears): held until the file is registered, then
    raised, and the interrupted run's clean-up removes it."""
    import tempfile

    from modelrouter.storage import temp_files

    run = inflight.start_run()
    real_mkstemp = tempfile.mkstemp

    def mkstemp_then_signal(*args: object, **kwargs: object) -> tuple[int, str]:
        created = real_mkstemp(*args, **kwargs)  # type: ignore[call-overload]
        signal.raise_signal(signal.SIGUSR1)  # the handler runs before this function returns
        return created  # type: ignore[no-any-return]

    def on_signal(signum: int, frame: object) -> None:
        if not run.commit.defer(signum):  # as the command's handler (cli/exits.py)
            raise _Interrupted

    previous = signal.signal(signal.SIGUSR1, on_signal)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_then_signal)
    try:
        with pytest.raises(_Interrupted):
            temp_files.temp_beside(tmp_path / "scored.parquet")
    finally:
        signal.signal(signal.SIGUSR1, previous)
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and run.temp_files == set(left)  # registered: the clean-up sees it
    run.drop_temporaries()
    assert list(tmp_path.iterdir()) == []


def test_holds_nest_and_a_commit_section_keeps_its_signal() -> None:
    run = inflight.start_run()
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        with run.commit.section(final=False):
            with run.commit.hold(), run.commit.hold():
                assert run.commit.defer(signal.SIGUSR1)
            assert received == []  # the commit section is still open: it raises it
        assert received == [signal.SIGUSR1]
        with run.commit.hold():
            with run.commit.hold():
                assert run.commit.defer(signal.SIGUSR1)
            assert received == [signal.SIGUSR1]  # the outer hold is open
        assert received == [signal.SIGUSR1, signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)
