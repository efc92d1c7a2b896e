"""The identifier graph, built whole from the inputs or grown from the last run's graph.

A full build turns every input's rows into standard records, deterministic edges, each input's
share of each vertex (its *vertex parts*) and the probabilistic tier's scored edges.

An incremental build starts from what the last run left: ``silver.identity_edges`` (one input's
records make the edges whose ``source`` is that input), ``silver.identity_vertex_parts`` and
``gold.identity_records`` (each record's key identifier), and the input versions that run read.
Per input, from the Delta Change Data Feed of its table since that version:

- nothing committed: its edges, vertex parts and records are reused;
- only inserts (new events, new orders): the new rows' records become edges and parts, combined
  with the stored ones (every aggregate of :func:`graph.dedupe_edges` and :func:`graph.vertex_parts`
  is a min, max or sum of partial aggregates, so the result is what a full build gives);
- rows updated or deleted too (a CRM row replaced, an order corrected), up to :data:`UPDATE_SHARE`
  of the table: the identifiers of the changed rows, before and after (the feed's pre- and
  post-images), are *retracted*: every edge with an end among them and every vertex part of one is
  recomputed from the table's current records that carry one of them (every record behind such an
  edge or part carries one), and the changed rows' records are replaced; the input's other edges,
  parts and records are reused. So a day of corrections costs a scan of the input, not a rebuild;
- anything else (a table overwritten, a change feed that cannot be read, most of the rows changed):
  the input is rebuilt from its table, and what differs from its stored share is what it touched.

The probabilistic tier compares records across its inputs: when any of them changed, all of them
are rebuilt and the scored edges recomputed; otherwise the stored scored edges are reused.

An incremental build also reports the identifiers it *touched*: the ends of every edge added or
changed and every identifier whose vertex part was added or changed (constrained values, first or
last seen). Their previous components
are what :func:`clustering.update_clusters` re-clusters; everything else keeps its component.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp_lib.identity.clustering import symmetric_difference
from cdp_lib.identity.config import IdentityConfig, IdentityInput, validate_columns
from cdp_lib.identity.graph import (
    PROBABILISTIC_RULE,
    dedupe_edges,
    deterministic_edges,
    input_vertices,
    merge_vertices,
    vertex_parts,
)
from cdp_lib.identity.probabilistic import probabilistic_edges
from cdp_lib.identity.records import id_col, to_records
from cdp_lib.lakehouse import ChangeFeedUnavailable, split_table_name

__all__ = ["IdentityGraph", "PreviousGraph", "build_graph", "build_graph_incremental", "RECORD_COLUMNS"]

log = logging.getLogger(__name__)

RECORD_COLUMNS = ["source", "record_key", "key_type", "key_value"]
_EDGE_SIG = ["id_type_a", "id_value_a", "id_type_b", "id_value_b", "rule", "source", "priority", "score",
             "n_records"]
_CDF_COLUMNS = ["_change_type", "_commit_version", "_commit_timestamp"]
# An input whose updated and deleted rows since the last run are at most this share of its rows is
# updated in place (module docstring); more (a table overwritten), and it is rebuilt.
UPDATE_SHARE = 0.25
# ... and at most this many distinct identifiers and record keys among the changed rows: they are
# broadcast to every task that scans the input (several times: once per identifier type and edge end).
UPDATE_MAX_KEYS = 200_000


@dataclass
class IdentityGraph:
    records: DataFrame  # source, record_key, key_type, key_value (one row per input record)
    vertices: DataFrame
    edges: DataFrame
    figures: dict
    parts: DataFrame | None = None  # source, id_type, id_value, first_seen, last_seen, cvals
    # Incremental builds: identifiers (id_type, id_value) whose edges or vertex parts changed.
    touched: DataFrame | None = None
    # Incremental builds: the records of inputs appended to (the new rows) or rebuilt (all of them),
    # and of inputs updated in place (the changed rows' records as they are now).
    changed_records: DataFrame | None = None
    # Incremental builds: the stored records of the changed rows of inputs updated in place (the
    # records as they were; those still current are in changed_records too).
    retracted_records: DataFrame | None = None
    cached: list = field(default_factory=list)  # persisted inputs, released by :meth:`release`

    def release(self) -> None:
        for df in self.cached:
            df.unpersist()


@dataclass
class PreviousGraph:
    """What the last successful run left, read before anything overwrites it."""

    versions: dict[str, int]  # input table -> the version that run read
    edges: DataFrame  # silver.identity_edges (with status)
    parts: DataFrame  # silver.identity_vertex_parts
    records: DataFrame  # gold.identity_records (RECORD_COLUMNS)


def _records(df: DataFrame, inp: IdentityInput, cfg: IdentityConfig, cached: list) -> DataFrame:
    validate_columns(inp, df.columns)
    # Edges, vertices, the record map and the probabilistic tier all read the records: on disk
    # once instead of re-reading and re-normalising the input four times.
    r = df.transform(to_records, inp, cfg.blocklist).persist(StorageLevel.DISK_ONLY)
    cached.append(r)
    return r


def _scored(prob_recs: list[DataFrame], cfg: IdentityConfig) -> tuple[DataFrame | None, dict]:
    id_cols = sorted({c for r in prob_recs for c in r.columns if c.startswith("id__")})
    cols = sorted({c for r in prob_recs for c in r.columns})
    aligned = [r.select(*[F.col(c) if c in r.columns else F.lit(None).cast("string").alias(c) for c in cols])
               for r in prob_recs]
    return probabilistic_edges(reduce(DataFrame.unionByName, aligned), cfg.probabilistic, id_cols)


def _probabilistic_on(cfg: IdentityConfig, probabilistic: bool = True) -> bool:
    return bool(probabilistic and cfg.probabilistic and cfg.probabilistic.enabled)


def build_graph(tables: dict[str, DataFrame], cfg: IdentityConfig, probabilistic: bool = True) -> IdentityGraph:
    """Vertices and deduplicated edges from input frames keyed by input name."""
    recs, raw_edges, parts, prob_recs, cached = [], [], [], [], []
    for inp in cfg.inputs:
        r = _records(tables[inp.name], inp, cfg, cached)
        recs.append(r.select(*RECORD_COLUMNS))
        raw_edges.append(deterministic_edges(r, inp))
        parts.append(vertex_parts(input_vertices(r, inp, cfg), inp.name))
        if inp.probabilistic:
            prob_recs.append(r)
    figures: dict = {}
    if _probabilistic_on(cfg, probabilistic) and prob_recs:
        pe, figures = _scored(prob_recs, cfg)
        if pe is not None:
            raw_edges.append(pe)
    edges = dedupe_edges(reduce(DataFrame.unionByName, raw_edges))
    all_parts = reduce(DataFrame.unionByName, parts)
    return IdentityGraph(reduce(DataFrame.unionByName, recs), merge_vertices(all_parts), edges, figures,
                         parts=all_parts, cached=cached)


def _change_kind(lakehouse, table: str, since: int | None, until: int, cached: list) -> tuple[str, DataFrame | None]:
    """``same``, ``insert`` (with the inserted rows), ``update`` (with every row of the feed: inserts,
    pre- and post-images, deletes) or ``rebuild`` for one input table."""
    if since == until:
        return "same", None
    if since is None or since > until:
        return "rebuild", None
    try:
        feed = lakehouse.changes(*split_table_name(table), since, until)
    except ChangeFeedUnavailable as exc:  # rebuild this input, the result is the same
        log.warning("identity: no change feed: %s; input rebuilt", exc)
        return "rebuild", None
    feed = feed.persist(StorageLevel.DISK_ONLY)
    cached.append(feed)
    # update pre-images and deletes: the rows as they were (post-images are counted by their pre-image)
    retracted = feed.where(F.col("_change_type").isin("update_preimage", "delete")).count()
    if not retracted:
        return "insert", feed.drop(*_CDF_COLUMNS)
    rows = lakehouse.read(*split_table_name(table), until).count()  # Delta answers from its file statistics
    if retracted > UPDATE_SHARE * rows:
        return "rebuild", None
    return "update", feed.drop(*_CDF_COLUMNS)


def _hits(df: DataFrame, pairs: list[tuple[str, str]], ids: DataFrame) -> tuple[DataFrame, Column]:
    """``df`` with a flag column per (id_type, column) pair: whether its value is one of ``ids``
    (distinct, small: broadcast lookups, so no row is repeated); and a column true when any is."""
    flags = []
    for i, (id_type, column) in enumerate(pairs):
        flag = f"_hit{i}"
        wanted = ids.where(F.col("id_type") == id_type).select(F.col("id_value").alias(flag))
        df = df.join(F.broadcast(wanted), F.col(column) == F.col(flag), "left")
        flags.append(flag)
    return df, reduce(lambda a, b: a | b, [F.col(f).isNotNull() for f in flags], F.lit(False))


def _edges_at(edges: DataFrame, ids: DataFrame, at: bool = True) -> DataFrame:
    """The edges with an end among ``ids``; with ``at=False``, the edges with neither end among them."""
    cols = edges.columns
    out, hit = edges, F.lit(False)
    for side in ("a", "b"):
        flag = f"_end_{side}"
        wanted = ids.select(F.col("id_type").alias(f"{flag}_t"), F.col("id_value").alias(f"{flag}_v"),
                            F.lit(True).alias(flag))
        out = out.join(F.broadcast(wanted), (F.col(f"id_type_{side}") == F.col(f"{flag}_t"))
                       & (F.col(f"id_value_{side}") == F.col(f"{flag}_v")), "left")
        hit = hit | F.col(flag).isNotNull()
    return out.where(hit if at else ~hit).select(*cols)


def _updated(
    table: DataFrame, feed: DataFrame, inp: IdentityInput, cfg: IdentityConfig,
    old_edges: DataFrame, old_parts: DataFrame, old_recs: DataFrame,
) -> tuple[DataFrame, ...] | None:
    """An input updated in place (module docstring): (records kept, records of the changed rows now,
    stored records they replace, edges, vertex parts, identifiers touched); None when the changed
    rows carry too many identifiers or keys to broadcast, or a changed row's record key is null or
    not unique (records are replaced by key): the input is then rebuilt."""
    validate_columns(inp, table.columns)
    changed = to_records(feed, inp, cfg.blocklist)  # every image, before and after
    ids = _materialize(reduce(DataFrame.unionByName, [
        changed.where(F.col(id_col(t)).isNotNull())
        .select(F.lit(t).alias("id_type"), F.col(id_col(t)).alias("id_value")) for t in inp.identifiers
    ]).distinct())
    keys = _materialize(feed.select(F.col(inp.record_key).cast("string").alias("record_key")).distinct())
    n_keys, n_null = keys.agg(F.count(F.lit(1)), F.count_if(F.col("record_key").isNull())).first()
    if n_keys > UPDATE_MAX_KEYS or ids.count() > UPDATE_MAX_KEYS:
        log.info("identity: input %s: too many changed rows to update in place", inp.name)
        return None
    if n_null:
        log.info("identity: input %s: a changed row has no record key", inp.name)
        return None
    # The current records that carry a retracted identifier (every record behind an edge or vertex
    # part with an end among them) or have a changed key.
    current = to_records(table, inp, cfg.blocklist)
    flagged, carries = _hits(current, [(t, id_col(t)) for t in inp.identifiers], ids)
    key_hit = keys.select(F.col("record_key").alias("_key_hit"))
    flagged = flagged.join(F.broadcast(key_hit), F.col("record_key") == F.col("_key_hit"), "left")
    carrying = _materialize(flagged.where(carries | F.col("_key_hit").isNotNull()).select(*current.columns))
    new_edges = _materialize(_edges_at(dedupe_edges(deterministic_edges(carrying, inp)), ids))
    rows = input_vertices(carrying, inp, cfg).join(F.broadcast(ids), ["id_type", "id_value"], "left_semi")
    new_parts = _materialize(vertex_parts(rows, inp.name))
    old_touching = _edges_at(old_edges, ids)
    old_parts_hit = old_parts.join(F.broadcast(ids), ["id_type", "id_value"], "left_semi")
    touched = _changed_edges(new_edges, old_touching).unionByName(_changed_parts(new_parts, old_parts_hit))
    edges = _edges_at(old_edges, ids, at=False).unionByName(new_edges)
    parts = old_parts.join(F.broadcast(ids), ["id_type", "id_value"], "left_anti").unionByName(new_parts)
    now_recs = _materialize(carrying.join(F.broadcast(keys), "record_key", "left_semi").select(*RECORD_COLUMNS))
    was_recs = _materialize(old_recs.join(F.broadcast(keys), "record_key", "left_semi"))
    tagged = now_recs.withColumn("_was", F.lit(False)).unionByName(was_recs.withColumn("_was", F.lit(True)))
    if tagged.groupBy("_was", "record_key").count().where("count > 1").take(1):  # one job for both
        log.info("identity: input %s: a changed row's record key is not unique", inp.name)
        return None
    kept_recs = old_recs.join(F.broadcast(keys), "record_key", "left_anti")
    return kept_recs, now_recs, was_recs, edges, parts, touched


def _materialize(df: DataFrame) -> DataFrame:
    return df.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)


def _edge_ends(edges: DataFrame) -> DataFrame:
    a = edges.select(F.col("id_type_a").alias("id_type"), F.col("id_value_a").alias("id_value"))
    b = edges.select(F.col("id_type_b").alias("id_type"), F.col("id_value_b").alias("id_value"))
    return a.unionByName(b)


def _changed_edges(new: DataFrame, old: DataFrame) -> DataFrame:
    return _edge_ends(symmetric_difference(new.select(*_EDGE_SIG), old.select(*_EDGE_SIG)))


def _changed_parts(new: DataFrame, old: DataFrame) -> DataFrame:
    # first/last seen too: an incremental run republishes only the affected identifiers' map rows
    cols = ["id_type", "id_value", "first_seen", "last_seen", "cvals"]
    return symmetric_difference(new.select(*cols), old.select(*cols)).select("id_type", "id_value")


def build_graph_incremental(
    lakehouse, cfg: IdentityConfig, previous: PreviousGraph, versions: dict[str, int], probabilistic: bool = True,
) -> IdentityGraph:
    """The graph of the inputs at ``versions``, from ``previous`` and the changes since (module docstring)."""
    cached: list = []
    kinds: dict[str, tuple[str, DataFrame | None]] = {}
    for table in dict.fromkeys(inp.table for inp in cfg.inputs):
        kinds[table] = _change_kind(lakehouse, table, previous.versions.get(table), versions[table], cached)
    prob_on = _probabilistic_on(cfg, probabilistic)
    prob_inputs = [inp for inp in cfg.inputs if inp.probabilistic] if prob_on else []
    redo_scored = any(kinds[inp.table][0] != "same" for inp in prob_inputs)

    stored_edges = previous.edges.where(F.col("rule") != PROBABILISTIC_RULE).drop("status")
    recs, edges, parts, touched, prob_recs, changed_recs, retracted_recs = [], [], [], [], [], [], []
    mode = {}
    for inp in cfg.inputs:
        kind, feed = kinds[inp.table]
        if redo_scored and inp.probabilistic:
            kind = "rebuild"  # the scored edges compare this input's records with every other's
        mode[inp.name] = kind
        old_edges = stored_edges.where(F.col("source") == inp.name)
        old_parts = previous.parts.where(F.col("source") == inp.name)
        old_recs = previous.records.where(F.col("source") == inp.name).select(*RECORD_COLUMNS)
        if kind == "same":
            recs.append(old_recs)
            edges.append(old_edges)
            parts.append(old_parts)
            continue
        if kind == "update":
            updated = _updated(lakehouse.read(*split_table_name(inp.table), versions[inp.table]), feed, inp, cfg,
                               old_edges, old_parts, old_recs)
            if updated is not None:
                kept_recs, new_recs, gone_recs, new_edges, new_parts, touched_ids = updated
                recs.append(kept_recs.unionByName(new_recs))
                changed_recs.append(new_recs)
                retracted_recs.append(gone_recs)
                edges.append(new_edges)
                parts.append(new_parts)
                touched.append(touched_ids)
                continue
            kind = mode[inp.name] = "rebuild"
        if kind == "insert":
            r = _records(feed, inp, cfg, cached)
            new_edges = deterministic_edges(r, inp)
            new_rows = input_vertices(r, inp, cfg)
            new_recs = r.select(*RECORD_COLUMNS).where(F.col("key_value").isNotNull())
            recs.append(old_recs.unionByName(new_recs))
            changed_recs.append(new_recs)
            edges.append(dedupe_edges(old_edges.unionByName(new_edges)))
            parts.append(vertex_parts(old_parts.drop("source").unionByName(new_rows), inp.name))
            touched += [_edge_ends(new_edges), new_rows.select("id_type", "id_value")]
            continue
        table = lakehouse.read(*split_table_name(inp.table), versions[inp.table])
        r = _records(table, inp, cfg, cached)
        if inp.probabilistic:
            prob_recs.append(r)
        # Materialised: the graph and the comparison with the stored share both read them.
        new_edges = _materialize(dedupe_edges(deterministic_edges(r, inp)))
        new_parts = _materialize(vertex_parts(input_vertices(r, inp, cfg), inp.name))
        recs.append(r.select(*RECORD_COLUMNS))
        changed_recs.append(r.select(*RECORD_COLUMNS))
        edges.append(new_edges)
        parts.append(new_parts)
        touched += [_changed_edges(new_edges, old_edges), _changed_parts(new_parts, old_parts)]
    figures: dict = {"inputs": mode}
    old_scored = previous.edges.where(F.col("rule") == PROBABILISTIC_RULE).drop("status")
    if redo_scored and prob_recs:
        scored, prob_figures = _scored(prob_recs, cfg)
        figures.update(prob_figures)
        if scored is not None:
            scored = _materialize(dedupe_edges(scored))
            edges.append(scored)
            touched.append(_changed_edges(scored, old_scored))
        else:
            touched.append(_edge_ends(old_scored))
    elif prob_on:
        edges.append(old_scored)
    else:
        touched.append(_edge_ends(old_scored))  # the tier was switched off: its edges are gone
    for name, kind in mode.items():
        log.info("identity: input %s %s", name, {"same": "unchanged", "insert": "appended to",
                                                   "update": "updated in place", "rebuild": "rebuilt"}[kind])
    all_parts = reduce(DataFrame.unionByName, parts)
    spark = lakehouse.spark
    touched_ids = (reduce(DataFrame.unionByName, touched) if touched
                   else spark.createDataFrame([], "id_type string, id_value string")).distinct()
    changed_records = (reduce(DataFrame.unionByName, changed_recs) if changed_recs
                       else spark.createDataFrame([], ", ".join(f"{c} string" for c in RECORD_COLUMNS)))
    retracted_records = reduce(DataFrame.unionByName, retracted_recs) if retracted_recs else None
    return IdentityGraph(
        reduce(DataFrame.unionByName, recs), merge_vertices(all_parts), reduce(DataFrame.unionByName, edges),
        figures, parts=all_parts, touched=touched_ids, changed_records=changed_records,
        retracted_records=retracted_records, cached=cached,
    )
