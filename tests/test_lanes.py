"""Lanes without Spark: run_lanes (start, wait, and on an interruption start no more work but let the
running finish) and each_in_lanes (bronze's sources, silver's entities)."""

import threading
import time
from collections import deque

import pytest

from cdp_lib.lanes import each_in_lanes, run_lanes


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


def test_items_run_at_once_wait_for_each_other_and_raise_the_first_failure():
    started, finished = threading.Event(), threading.Event()

    def work(item):
        if item == "bad":
            assert started.wait(10)
            raise ValueError("boom")
        started.set()
        time.sleep(0.3)
        finished.set()
        return {"ok": item}

    ran = []
    with pytest.raises(ValueError, match="boom"):
        each_in_lanes(["bad", "slow", "next"], lambda i: ran.append(i) or work(i), 2, name=str)
    assert finished.is_set()  # the item already running was not abandoned mid-write
    assert "next" not in ran  # and none started after the failure
    assert each_in_lanes(list("abc"), work, 2, name=str) == {n: {"ok": n} for n in "abc"}


def test_heavy_items_take_one_lane_one_at_a_time_beside_the_light_ones():
    lock, running, overlaps = threading.Lock(), set(), []
    light_started = threading.Event()

    def work(item):
        with lock:
            running.add(item)
            overlaps.append(sorted(running))
        if item == "h1":
            assert light_started.wait(10)  # a light item runs while the first heavy one does
        if item.startswith("l"):
            light_started.set()
        time.sleep(0.05)
        with lock:
            running.discard(item)
        return item

    names = ["h1", "h2", "h3", "l1", "l2", "l3"]
    out = each_in_lanes(names, work, 3, name=str, heavy=frozenset({"h1", "h2", "h3"}))
    assert out == {n: n for n in names}
    assert all(sum(n.startswith("h") for n in seen) <= 1 for seen in overlaps)
