"""Helpers for tests that look at a query's physical plan."""

import re
from contextlib import contextmanager

from cdp_lib.partitioning import AQE


def shuffles(df) -> int:
    """Runs ``df`` and counts the shuffle exchanges of its executed plan (broadcasts not counted)."""
    df.collect()  # an adaptive plan is final only after a run
    return len(re.findall(r"(?<!Broadcast)Exchange ", df._jdf.queryExecution().executedPlan().toString()))


@contextmanager
def adaptive(spark):
    """AQE on, as shipped (the test session turns it off): the case checkpoint_by must handle."""
    before = spark.conf.get(AQE)
    spark.conf.set(AQE, "true")
    try:
        yield
    finally:
        spark.conf.set(AQE, before)
