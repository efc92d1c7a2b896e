"""Helpers for tests that look at a query's physical plan."""

import re


def shuffles(df) -> int:
    """Runs ``df`` and counts the shuffle exchanges of its executed plan (broadcasts not counted)."""
    df.collect()  # an adaptive plan is final only after a run
    return len(re.findall(r"(?<!Broadcast)Exchange ", df._jdf.queryExecution().executedPlan().toString()))
