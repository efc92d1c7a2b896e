"""Lanes: threads that share one SparkSession and take work from a common queue.

The queue, and what a lane does with a failure, belong to the caller (bronze's source lanes,
:func:`cdp_lib.partitioning.checkpoint_all`); this is the part they share.
"""

from __future__ import annotations

import threading

__all__ = ["run_lanes"]


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
