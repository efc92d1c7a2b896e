"""Deterministic per-row randomness: every draw is a hash of (seed, salt, row key columns).

Unlike ``rand(seed)``, a hash of the row's own key does not depend on how rows are
partitioned, so the same seed gives the same rows on 1 core or 100 executors.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

__all__ = ["Rng"]

_BITS = 1 << 53
ColumnOrName = Column | str


class Rng:
    """Column factories for draws keyed on row columns; ``salt`` names the draw."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def hash(self, salt: str, *key: ColumnOrName) -> Column:
        return F.xxhash64(F.lit(self.seed), F.lit(salt), *key)

    def uniform(self, salt: str, *key: ColumnOrName) -> Column:
        """Uniform double in [0, 1)."""
        return F.pmod(self.hash(salt, *key), F.lit(_BITS)).cast("double") / float(_BITS)

    def chance(self, p: float | Column, salt: str, *key: ColumnOrName) -> Column:
        """True with probability ``p``."""
        return self.uniform(salt, *key) < (p if isinstance(p, Column) else F.lit(float(p)))

    def integer(self, lo: int | Column, hi: int | Column, salt: str, *key: ColumnOrName) -> Column:
        """Uniform long in [lo, hi] (inclusive)."""
        lo_c = lo if isinstance(lo, Column) else F.lit(lo)
        hi_c = hi if isinstance(hi, Column) else F.lit(hi)
        return (lo_c + F.floor(self.uniform(salt, *key) * (hi_c - lo_c + 1))).cast("long")

    def count(self, mean: float, salt: str, *key: ColumnOrName) -> Column:
        """A small non-negative count with the given mean (uniform on 0..2*mean)."""
        span = 2.0 * float(mean) + 1.0
        return F.floor(self.uniform(salt, *key) * span).cast("int")

    def choice(self, values: Sequence, salt: str, *key: ColumnOrName) -> Column:
        """One of ``values`` (literals or Columns), uniformly."""
        arr = F.array(*[v if isinstance(v, Column) else F.lit(v) for v in values])
        return F.element_at(arr, (F.floor(self.uniform(salt, *key) * len(values)) + 1).cast("int"))

    def weighted(self, pairs: Sequence[tuple[object, float]], salt: str, *key: ColumnOrName) -> Column:
        """One of the values of ``(value, weight)`` pairs, with probability proportional to weight."""
        total = float(sum(w for _, w in pairs))
        u = self.uniform(salt, *key) * total
        acc = 0.0
        expr = None
        for value, weight in pairs[:-1]:
            acc += weight
            expr = (F.when(u < acc, F.lit(value)) if expr is None else expr.when(u < acc, F.lit(value)))
        last = F.lit(pairs[-1][0])
        return last if expr is None else expr.otherwise(last)

    def digits(self, n: int, salt: str, *key: ColumnOrName) -> Column:
        """A string of ``n`` random decimal digits (n <= 15)."""
        return F.lpad(F.pmod(self.hash(salt, *key), F.lit(10**n)).cast("string"), n, "0")

    def hex_upper(self, salt: str, *key: ColumnOrName) -> Column:
        """16 upper-case hex characters."""
        return F.lpad(F.hex(self.hash(salt, *key)), 16, "0")

    def hex(self, salt: str, *key: ColumnOrName) -> Column:
        """16 lower-case hex characters."""
        return F.lower(self.hex_upper(salt, *key))

    def uuid(self, salt: str, *key: ColumnOrName) -> Column:
        """A UUID-shaped string (8-4-4-4-12 hex) from two hashes."""
        h = F.concat(self.hex(salt + ".a", *key), self.hex(salt + ".b", *key))
        return F.concat_ws(
            "-", F.substring(h, 1, 8), F.substring(h, 9, 4), F.concat(F.lit("4"), F.substring(h, 14, 3)),
            F.substring(h, 17, 4), F.substring(h, 21, 12),
        )
