"""run_lanes: start the lanes, wait, and on an interruption start no more work but let the running finish."""

import threading
import time
from collections import deque

import pytest

from cdp_lib.lanes import run_lanes


class InterruptedJoin(threading.Thread):
    """A lane whose first join is interrupted, as Ctrl-C interrupts the waiting caller."""

    interrupted = False

    def join(self, timeout=None):
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        super().join(timeout)


def _lanes(kinds, items=200):
    pending, done, failed, lock = deque(range(items)), [], [], threading.Lock()

    def lane():
        while True:
            with lock:
                if failed or not pending:
                    return
                item = pending.popleft()
            time.sleep(0.01)  # work in progress when the interruption comes
            done.append(item)

    return [kind(target=lane) for kind in kinds], pending, done, failed, lock


def test_all_lanes_run_to_the_end():
    lanes, pending, done, failed, lock = _lanes([threading.Thread, threading.Thread], items=20)
    run_lanes(lanes, failed, lock)
    assert sorted(done) == list(range(20)) and not failed and not any(t.is_alive() for t in lanes)


def test_an_interrupted_wait_starts_nothing_more_and_lets_the_running_finish():
    lanes, pending, done, failed, lock = _lanes([InterruptedJoin, threading.Thread])
    with pytest.raises(KeyboardInterrupt):
        run_lanes(lanes, failed, lock)
    assert not any(t.is_alive() for t in lanes)  # the running work finished before it raised
    assert len(failed) == 1 and isinstance(failed[0], KeyboardInterrupt)
    assert pending and len(done) + len(pending) == 200  # no item lost half-way, most never started
