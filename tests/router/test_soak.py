"""Concurrency soak: 10^5 borrows from 32 threads with random failures and timeouts."""

from __future__ import annotations

import random
import threading

import pandas as pd
import pytest
from modelrouter import ModelPool, ModelType, PoolTimeoutError

from tests.router.test_pool import RecordingModel

THREADS = 32
ATTEMPTS_PER_THREAD = 3_200  # 102,400 in all


class Boom(Exception):
    """Raised on purpose inside a borrow."""


# 10 s of CPU (32 threads): make test-slow runs it; test_pool.py's invariant tests are the
# fast tier's cover of the same pool.
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_soak_pool_invariants_and_exact_stats() -> None:
    instances = [RecordingModel(f"m{i}") for i in range(4)]
    pool = ModelPool(ModelType.SKLEARN, instances)
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    tallies: list[dict[str, int]] = []
    failures: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        tally = {"borrowed": 0, "timeouts": 0, "raised": 0, "predicts": 0}
        try:
            for _ in range(ATTEMPTS_PER_THREAD):
                timeout = 0.0 if rng.random() < 0.05 else None  # some give up at once
                try:
                    with pool.borrow(timeout=timeout) as model:
                        tally["borrowed"] += 1
                        inner = model.model
                        assert isinstance(inner, RecordingModel)
                        inner.enter()
                        try:
                            if rng.random() < 0.5:
                                model.predict(frame)
                                tally["predicts"] += 1
                            if rng.random() < 0.1:
                                tally["raised"] += 1
                                raise Boom
                        finally:
                            inner.leave()
                except PoolTimeoutError:
                    tally["timeouts"] += 1
                except Boom:
                    pass
        except BaseException as exc:
            failures.append(exc)
        tallies.append(tally)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    total = {key: sum(t[key] for t in tallies) for key in tallies[0]}
    assert total["borrowed"] + total["timeouts"] == THREADS * ATTEMPTS_PER_THREAD
    assert total["borrowed"] >= 100_000 * 0.9
    stats = pool.stats()
    assert stats.borrows == total["borrowed"]
    assert stats.timeouts == total["timeouts"]
    assert stats.errors == total["raised"]
    assert stats.chunks == total["predicts"]
    assert stats.rows == 2 * total["predicts"]
    assert (stats.available, stats.in_use, stats.size) == (4, 0, 4)
    # One borrower per instance at a time: the body's hold plus predict's own is at most 2.
    assert max(m.max_holders for m in instances) <= 2
    assert stats.wait_max >= stats.wait_mean >= 0
