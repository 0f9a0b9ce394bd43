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
