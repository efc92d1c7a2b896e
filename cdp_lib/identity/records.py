"""Input tables -> standard identity records: normalised identifiers and person attributes.

Whatever the input's column names, the output has ``source``, ``record_key``, ``seen_at``,
one ``id__<type>`` column per declared identifier type (blocked values already nulled),
``key_type``/``key_value`` (the record's key identifier: the first non-null one in declared
order) and one column per declared standard attribute.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.identity.config import Blocklist, IdentityInput

__all__ = [
    "id_col",
    "normalize_identifier",
    "blocked",
    "normalize_attribute",
    "to_records",
]


def id_col(id_type: str) -> str:
    return f"id__{id_type}"


def normalize_identifier(c: Column, id_type: str) -> Column:
    """Trimmed string, emails lower-cased, empty -> null (silver already normalises; other inputs may not)."""
    s = F.trim(c.cast("string"))
    if id_type == "email":
        s = F.lower(s)
    return F.when(s != "", s)


def blocked(c: Column, id_type: str, blocklist: Blocklist) -> Column:
    """True when the (normalised) value is on the blocklist for its type or for every type (``*``)."""
    values = [v.strip().lower() for key in (id_type, "*") for v in blocklist.values.get(key, [])]
    patterns = [p for key in (id_type, "*") for p in blocklist.patterns.get(key, [])]
    cond = F.lit(False)
    if values:
        cond = cond | F.lower(c).isin(values)
    for p in patterns:
        cond = cond | c.rlike(p)
    return F.coalesce(cond, F.lit(False))


def _birth_date(c: Column, dtype: T.DataType) -> Column:
    if isinstance(dtype, (T.DateType, T.TimestampType, T.TimestampNTZType)):
        d = F.to_date(c)
    else:
        s = F.trim(c.cast("string"))
        d = F.coalesce(F.try_to_date(s, "yyyy-MM-dd"), F.try_to_date(s, "dd/MM/yyyy"))
    return F.date_format(d, "yyyy-MM-dd")


def normalize_attribute(c: Column, attribute: str, dtype: T.DataType = T.StringType()) -> Column:
    """Comparable form of a person attribute (strings; null when empty)."""
    if attribute == "birth_date":
        return _birth_date(c, dtype)
    s = F.trim(c.cast("string"))
    if attribute in ("first_name", "last_name", "city"):
        s = F.regexp_replace(F.lower(s), r"[^\p{L} '-]", "")
    elif attribute == "address":
        s = F.regexp_replace(F.lower(s), r"[^\p{L}\p{N} ]", " ")
        s = F.trim(F.regexp_replace(s, r"\s+", " "))
    elif attribute == "postcode":
        s = F.upper(F.regexp_replace(s, r"\s", ""))
    elif attribute == "phone":
        s = F.regexp_replace(s, r"[^0-9]", "")
        s = F.substring(s, -9, 9)  # national significant part: +44 7700 and 07700 compare equal
    elif attribute == "email":
        s = F.lower(s)
    return F.when(s != "", s)


def to_records(df: DataFrame, inp: IdentityInput, blocklist: Blocklist) -> DataFrame:
    """Standard identity records of one input (see module docstring)."""
    if inp.where:
        df = df.where(F.expr(inp.where))
    dtypes = {f.name: f.dataType for f in df.schema.fields}
    cols = [
        F.lit(inp.name).alias("source"),
        F.col(inp.record_key).cast("string").alias("record_key"),
        F.col(inp.time).cast("timestamp").alias("seen_at"),
    ]
    for id_type, column in inp.identifiers.items():
        v = normalize_identifier(F.col(column), id_type)
        cols.append(F.when(~blocked(v, id_type, blocklist), v).alias(id_col(id_type)))
    for attr, column in inp.attributes.items():
        cols.append(normalize_attribute(F.col(column), attr, dtypes[column]).alias(attr))
    out = df.select(*cols)
    order = list(inp.identifiers)
    key_type = F.coalesce(*[F.when(F.col(id_col(t)).isNotNull(), F.lit(t)) for t in order], F.lit(None))
    key_value = F.coalesce(*[F.col(id_col(t)) for t in order], F.lit(None).cast("string"))
    return out.withColumn("key_type", key_type).withColumn("key_value", key_value)
