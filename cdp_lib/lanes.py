"""Lanes: threads that share one SparkSession and take work from a common queue.

:func:`each_in_lanes` runs named items (bronze's sources, silver's entities) in lanes;
:func:`run_lanes` is the part every lane runner shares, :func:`cdp_lib.partitioning.checkpoint_all`'s too.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from pyspark import InheritableThread
from pyspark.sql import SparkSession

__all__ = ["HEAVY_BYTES", "each_in_lanes", "run_lanes"]

log = logging.getLogger(__name__)

# An item that reads at least this many bytes keeps both cores busy on its own: such items are
# "heavy" for :func:`each_in_lanes` (measured on bronze's sources at 1M people).
HEAVY_BYTES = 256 << 20

T = TypeVar("T")
R = TypeVar("R")


def run_lanes(lanes: list[threading.Thread], failed: list[BaseException], lock: threading.Lock) -> None:
    """Start ``lanes`` and wait for all of them.

    If the caller is interrupted while it waits (Ctrl-C), the interruption goes into ``failed``
    under ``lock`` (lanes check ``failed`` there before they take more work, so none starts any),
    the lanes still running finish, and the interruption is raised.
    """
    try:
        for t in lanes:
            t.start()
        for t in lanes:
            t.join()
    except BaseException as exc:
        with lock:
            failed.append(exc)
        for t in lanes:
            if t.is_alive():
                t.join()
        raise


def each_in_lanes(items: list[T], work: Callable[[T], R], parallel: int, *, name: Callable[[T], str],
                  heavy: frozenset[str] = frozenset(), spark: SparkSession | None = None,
                  label: str = "lane") -> dict[str, R]:
    """``{name(item): work(item)}`` in ``parallel`` lanes (threads sharing the SparkSession, each in
    a copy of this context, so run-log rows reach the caller's open hold), in the order given.

    The ``heavy`` items (by name) all go through the first lane, one after the other: each keeps
    both cores busy on its own, and two at once only contend (measured at 1M people: bronze's web
    and app events 147 s at once against 128 s one after the other). The other lanes take the
    light items, whose time is mostly driver-side (planning, Delta commits), and the first lane
    joins them when it has no heavy item left. Each lane's jobs go to its own scheduler pool
    (``<label>-<lane>``) of ``spark`` (FAIR mode shares the cores between pools; under FIFO a
    light item's small jobs would wait for every task of a heavy one). After a failure no lane
    starts another item; the running ones finish, then the first failure is raised."""
    if parallel <= 1 or len(items) <= 1:
        return {name(i): work(i) for i in items}
    queues = (deque(i for i in items if name(i) in heavy), deque(i for i in items if name(i) not in heavy))
    lock = threading.Lock()
    done: dict[str, R] = {}
    failed: list[BaseException] = []

    def lane(number: int) -> None:
        try:
            if spark is not None:
                spark.sparkContext.setLocalProperty("spark.scheduler.pool", f"{label}-{number}")
            while True:
                with lock:
                    # The first lane takes the heavy items; any lane takes them if it has died.
                    queue = queues[0] if queues[0] and (number == 0 or 0 not in alive) else queues[1]
                    if failed or not queue:
                        return
                    item = queue.popleft()
                done[name(item)] = work(item)
        except BaseException as exc:  # noqa: BLE001 - raised again in the calling thread
            with lock:
                failed.append(exc)
        finally:
            with lock:
                alive.discard(number)

    # InheritableThread: a lane's jobs carry the caller's local properties (job group, tags).
    thread = InheritableThread if spark is not None else threading.Thread
    count = min(parallel, len(items))
    alive = set(range(count))
    run_lanes([thread(target=contextvars.copy_context().run, args=(lane, i), name=f"{label}-{i}")
               for i in range(count)], failed, lock)
    if failed:
        for exc in failed[1:]:
            log.error("%s: another item failed in the same run too (%s)", label, type(exc).__name__)
        raise failed[0]
    return {name(i): done[name(i)] for i in items}
