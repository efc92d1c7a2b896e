"""Build gold.customer_profile: survivorship attributes, identifiers, consent, traits, enrichment.

Full: every customer in gold.identity_map. Incremental: only customers *touched* since the
last run are recomputed, where touched means any of

- a row of a gold input changed (Delta Change Data Feed since the versions the last run read);
- an identifier of the customer was added to the map, removed from it or moved (merge, split);
- a row carrying such an identifier names the customer in any of its identifiers: the row may
  have moved to or from it (a row belongs to its first identifier found in the whole map, never
  only in the map of the customers being recomputed);
- a row's time crosses a trait window boundary or the as-of cut between the two as-of times,
  or an abandoned-cart deadline falls between them;

and every customer when a reference table (a lookup, enrichment) changed;

then merged into the table. Population-wide or as-of-relative columns (RFM quantile scores,
``days_since_*``) are re-projected for every row; only the rows whose content hash differs, the
new ones and those of customers gone are merged (:meth:`Lakehouse.sync`), so unchanged rows are
neither rewritten nor in the change feed. A full rebuild gives the same table.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta, timezone
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.errors import CdpError
from cdp_lib.gold.attach import ROW_KEY, identifier_customers, with_customer_id
from cdp_lib.gold.config import GoldConfig, TraitsConfig
from cdp_lib.gold.consent import consent_state
from cdp_lib.gold.enrich import with_postcode_reference, with_third_party
from cdp_lib.gold.survivorship import candidates, collect_values, survive
from cdp_lib.gold.traits import compute_traits, relative_traits, window_bounds, with_rfm
from cdp_lib.lakehouse import ChangeFeedUnavailable, split_table_name
from cdp_lib.partitioning import checkpoint_all, checkpoint_by

__all__ = ["build_gold", "customer_frames", "full_profiles", "profiles_for", "used_columns"]

log = logging.getLogger(__name__)

META = ("_profile_hash", "updated_run_id", "as_of")
STATE_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("as_of", T.TimestampType()),
        T.StructField("versions", T.StringType()),  # JSON {table: version}
        T.StructField("recorded_at", T.TimestampType()),
    ]
)


def _broadcastable(cfg: GoldConfig, imap: DataFrame) -> bool:
    return cfg.broadcast_map_rows > 0 and imap.count() <= cfg.broadcast_map_rows


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


# A star that stands for columns (``struct(*)``, ``t.*``), not a multiplication or ``count(*)``.
_COUNT_STAR = re.compile(r"count\s*\(\s*\*\s*\)", re.I)
_STAR = re.compile(r"(^|[(,.\s])\*\s*($|[),])")


def used_columns(cfg: GoldConfig, traits: TraitsConfig, name: str, columns: list[str]) -> list[str]:
    """The columns of input ``name`` that gold's config mentions (in order); no other column is ever read.

    A column is kept when its name appears as a word (case-insensitively, as Spark resolves names)
    in any setting of the input itself, of inputs attached through it, and of the survivorship
    candidates, collected values, consent sources and traits over it. SQL expressions are matched
    by their words, so a kept column may go unused but a used one is never dropped; an expression
    with a star that expands to columns (``struct(*)``) keeps them all.
    """
    parts = [cfg.inputs[name]]
    parts += [i.via for i in cfg.inputs.values() if i.via is not None and i.via.input == name]
    parts += [c for r in cfg.survivorship for c in r.candidates if c.input == name]
    parts += [c for cs in cfg.collect.values() for c in cs if c.input == name]
    parts += [s for s in cfg.consent.sources if s.input == name]
    parts += [t for t in traits.traits if t.input == name]
    texts = [s for p in parts for s in _strings(p.model_dump())]
    if any(_STAR.search(_COUNT_STAR.sub("", t)) for t in texts):
        return list(columns)
    text = "\n".join(texts)
    return [c for c in columns if re.search(rf"(?<![A-Za-z0-9_]){re.escape(c)}(?![A-Za-z0-9_])", text, re.I)]


def _frames(
    lakehouse, cfg: GoldConfig, traits: TraitsConfig, imap: DataFrame, as_of: datetime, scope: DataFrame | None = None
) -> dict[str, DataFrame]:
    """Each input's rows with their ``customer_id`` by ``imap`` (the whole map).

    ``scope``: the map rows of the customers wanted (default: all). Only the rows whose customer (by
    the whole map: a row's first identifier may belong to a customer out of scope) is in scope are kept.
    """
    frames = {}
    small = _broadcastable(cfg, imap)
    scope_small = scope is not None and _broadcastable(cfg, scope)
    for name, inp in cfg.inputs.items():
        layer, table = split_table_name(inp.table)
        if not lakehouse.exists(layer, table):
            log.warning("gold input %s: table %s does not exist yet; treated as empty", name, inp.table)
            continue
        df = lakehouse.read(layer, table).where(F.col(inp.time) <= F.lit(as_of))
        for lk in inp.lookups:
            if lakehouse.exists(*split_table_name(lk.table)):
                ref = lakehouse.read(*split_table_name(lk.table)).select(lk.key, *lk.columns).dropDuplicates([lk.key])
                df = df.join(F.broadcast(ref), lk.key, "left")
            else:
                df = df.select("*", *[F.lit(None).cast("string").alias(c) for c in lk.columns])
        # Only the columns gold uses are carried through the attach joins and the checkpoint: silver
        # rows are wide (lineage, quality flags) and the events input alone has millions of them.
        df = df.select(*[F.col(f"`{c}`") for c in used_columns(cfg, traits, name, df.columns)])
        if scope is not None and inp.via is None and not small:
            # Only rows with an identifier in scope go through the whole map's shuffle join. (With a
            # broadcast map this would be one more lookup pass over the rows, for nothing.) Rows
            # attached through another input follow that input's rows, already in scope.
            df = with_customer_id(df, inp, scope, scope_small).where(F.col("customer_id").isNotNull())
            df = df.drop("customer_id", ROW_KEY)
        frame = _attach(df, inp, imap, frames, small)
        if scope is not None and inp.via is None:
            wanted = scope.select("customer_id").distinct()
            frame = frame.join(F.broadcast(wanted) if scope_small else wanted, "customer_id", "left_semi")
        frames[name] = frame
    return frames


def _attach(df: DataFrame, inp, imap: DataFrame, frames: dict[str, DataFrame], broadcast: bool) -> DataFrame:
    if inp.via is None:
        return with_customer_id(df, inp, imap, broadcast).drop(ROW_KEY)
    if inp.via.input not in frames:
        return df.withColumn("customer_id", F.lit(None).cast("string"))
    return df.join(_owners(frames[inp.via.input], inp.via.keys), inp.via.keys, "left")


def _owners(rows: DataFrame, keys: list[str]) -> DataFrame:
    """One customer per key of the owning input's rows (the smallest, when rows disagree)."""
    # An aggregate, not dropDuplicates: the optimizer rewrites dropDuplicates into an aggregate with
    # a new customer_id attribute, and a checkpoint of the result (checkpoint_by) would then report
    # its partitioning on an attribute its output does not have, so it would be shuffled again.
    return rows.groupBy(*keys).agg(F.min("customer_id").alias("customer_id"))


def customer_frames(
    lakehouse, cfg: GoldConfig, traits: TraitsConfig, as_of: datetime, customers: DataFrame | None = None
) -> tuple[DataFrame, dict[str, DataFrame]]:
    """The identity map's (customer_id, id_type, id_value) rows and each input's rows of a customer.

    Only customers in ``customers`` (default: all), rows up to ``as_of`` and the columns gold uses
    (:func:`used_columns`). Every input is read by several survivorship rules and traits: it is
    attached to its customers once and its lineage cut on disk (not in storage memory: cached
    blocks up to spark.memory.storageFraction cannot be evicted by execution, and the profile
    query's many sorts then ran out of memory at 100k people).
    Rows of no customer in scope (anonymous traffic, untouched customers of an incremental run) are
    left out: every use groups by customer. All are hash-partitioned by customer_id into the same
    number of partitions (:func:`checkpoint_all`, two at a time), so the profile query's aggregates, windows and joins
    by customer need no exchange: one shuffle per input instead of one per use (the profile plan had
    64 exchanges before).
    """
    imap = lakehouse.read(*split_table_name(cfg.identity_map)).cache()
    scope = None
    if customers is not None:
        scope = imap.join(customers.select("customer_id").distinct(), "customer_id", "left_semi").cache()
    frames = {n: f.where(F.col("customer_id").isNotNull())
              for n, f in _frames(lakehouse, cfg, traits, imap, as_of, scope).items()}
    people = (imap if scope is None else scope).select("customer_id", "id_type", "id_value")
    *done, people = checkpoint_all([*frames.values(), people], "customer_id")
    frames = dict(zip(frames, done, strict=True))
    for cached in (imap, scope):
        if cached is not None:
            cached.unpersist()
    return people, frames


def _seen_aggregates(frames: dict[str, DataFrame], times: dict[str, str]) -> tuple[dict[str, list], list]:
    """Per input, the aggregates behind first/last seen and ``sources``; and the columns built from them.

    They are computed in the same hash aggregate per input as the traits (:func:`compute_traits`'s
    ``extra``): one pass over each input's rows for both. (A set of input names collected over every
    row was an object aggregate, which sorts all its rows once a task holds more than 128 customers.)
    Returns ({input: aggregate columns}, [first_seen_at, last_seen_at, sources columns]).
    """
    names = sorted(frames)
    extra = {
        n: [F.min(F.col(times[n]).cast("timestamp")).alias(f"_seen_first{i}"),
            F.max(F.col(times[n]).cast("timestamp")).alias(f"_seen_last{i}"),
            F.count(F.lit(1)).alias(f"_seen_rows{i}")]
        for i, n in enumerate(names)
    }

    def over_inputs(fn, prefix):
        cols = [F.col(f"{prefix}{i}") for i in range(len(names))]
        return fn(*cols) if len(cols) > 1 else cols[0]

    listed = F.array(*[F.when(F.col(f"_seen_rows{i}").isNotNull(), F.lit(n)) for i, n in enumerate(names)])
    columns = [
        over_inputs(F.least, "_seen_first").alias("first_seen_at"),  # least/greatest skip nulls
        over_inputs(F.greatest, "_seen_last").alias("last_seen_at"),
        # null, not [], for a customer with no input row (as a left join of nothing gave before)
        F.when(F.size(F.array_compact(listed)) > 0, F.array_compact(listed)).alias("sources"),
    ]
    return extra, columns


def profiles_for(
    spark: SparkSession,
    lakehouse,
    cfg: GoldConfig,
    traits: TraitsConfig,
    as_of: datetime,
    customers: DataFrame | None = None,
) -> DataFrame:
    """Profiles (without RFM / as-of-relative traits) of ``customers`` (default: all) as of ``as_of``."""
    people, frames = customer_frames(lakehouse, cfg, traits, as_of, customers)
    times = {n: i.time for n, i in cfg.inputs.items()}
    base = people.select("customer_id").distinct()
    profile = base
    for rule in cfg.survivorship:
        usable = rule.model_copy(update={"candidates": [c for c in rule.candidates if c.input in frames]})
        if usable.candidates:
            profile = profile.join(survive(usable, candidates(usable, frames, times)), "customer_id", "left")
        else:
            for a in rule.attributes:
                profile = profile.withColumn(a, F.lit(None).cast("string"))
    for name, cands in cfg.collect.items():
        usable = [c for c in cands if c.input in frames]
        if usable:
            profile = profile.join(collect_values(name, usable, frames), "customer_id", "left")
    # The map is unique on (id_type, id_value): a list, not a set, and no hash set per customer.
    ids = people.groupBy("customer_id").agg(
        F.sort_array(F.collect_list(F.struct("id_type", "id_value"))).alias("identifiers")
    )
    profile = profile.join(ids, "customer_id", "left")
    consent = consent_state(
        cfg.consent.model_copy(update={"sources": [s for s in cfg.consent.sources if s.input in frames]}), frames
    )
    if consent is not None:
        profile = profile.join(consent, "customer_id", "left")
    usable_traits = traits.model_copy(
        update={"traits": [t for t in traits.traits if t.input is None or t.input in frames]}
    )
    seen_extra, seen_columns = _seen_aggregates(frames, times)
    traits_and_seen = compute_traits(usable_traits, frames, times, as_of, base, extra=seen_extra)
    helpers = [c for c in traits_and_seen.columns if c.startswith("_seen_")]
    profile = profile.join(traits_and_seen, "customer_id", "left").select("*", *seen_columns).drop(*helpers)
    en = cfg.enrichment
    if en.postcodes and lakehouse.exists(*split_table_name(en.postcodes)):
        profile = with_postcode_reference(profile, lakehouse.read(*split_table_name(en.postcodes)))
    else:
        profile = profile.withColumn("enriched_attributes", F.array().cast("array<string>"))
    if en.third_party and lakehouse.exists(*split_table_name(en.third_party)):
        profile = with_third_party(
            profile, lakehouse.read(*split_table_name(en.third_party)), en.third_party_columns,
            split_table_name(en.third_party)[1],
        )
    return profile


def _references(cfg: GoldConfig) -> list[str]:
    """The reference tables gold reads: input lookups and enrichment."""
    en = cfg.enrichment
    tables = [lk.table for i in cfg.inputs.values() for lk in i.lookups] + [en.postcodes, en.third_party]
    return [t for t in dict.fromkeys(tables) if t]


def _versions(lakehouse, cfg: GoldConfig) -> dict[str, int]:
    tables = [cfg.identity_map, *[i.table for i in cfg.inputs.values()], *_references(cfg)]
    return {t: v for t in dict.fromkeys(tables) if (v := lakehouse.version(*split_table_name(t))) is not None}


def _last_state(lakehouse) -> tuple[datetime, dict[str, int]] | None:
    if not lakehouse.exists("ops", "gold_state"):
        return None
    row = lakehouse.read("ops", "gold_state").orderBy(F.desc("recorded_at")).first()
    return (row.as_of, json.loads(row.versions)) if row else None


def _changes(lakehouse, table: str, since: int | None, until: int) -> DataFrame | None:
    return lakehouse.changes(*split_table_name(table), since, until)


def _moved_identifiers(map_changes: DataFrame) -> DataFrame:
    """The change feed's rows of identifiers that were added, removed or moved to another customer.

    Other map changes (an identifier's last-seen time) change no profile: profiles read only who
    owns which identifier.
    """
    moved = map_changes.groupBy("id_type", "id_value").agg(
        ((F.countDistinct("customer_id") > 1) | F.max(F.col("_change_type").isin("insert", "delete"))).alias("_moved")
    ).where("_moved")
    return map_changes.join(moved.drop("_moved"), ["id_type", "id_value"], "left_semi")


def _touched(
    lakehouse,
    cfg: GoldConfig,
    traits: TraitsConfig,
    prev_as_of: datetime,
    as_of: datetime,
    prev: dict[str, int],
    now: dict[str, int],
) -> DataFrame:
    """The customers whose profile may differ from the last run's (see the module docstring).

    A row's customer is that of its first identifier found in the map, so when an identifier is added
    to the map, removed or moved, every row carrying it may change customer: to or from the identifier's
    old or new owner, or any customer of the row's other identifiers. The customers of all identifiers
    of such rows (and of the rows changed or crossing a window) are touched.
    """
    imap = lakehouse.read(*split_table_name(cfg.identity_map))
    small = _broadcastable(cfg, imap)
    parts = []
    moved = None
    map_changes = _changes(lakehouse, cfg.identity_map, prev.get(cfg.identity_map), now[cfg.identity_map])
    if map_changes is not None:
        moved = _moved_identifiers(map_changes)
        parts.append(moved.select("customer_id"))
        # the moved identifiers as a "map" to any customer: with_customer_id finds the rows carrying one
        moved_ids = moved.select("id_type", "id_value").distinct().withColumn("customer_id", F.lit("moved"))
        moved_small = _broadcastable(cfg, moved_ids)
    shifts = [timedelta(0)] + [timedelta(days=d) for d in window_bounds(traits)]
    shifts += [timedelta(hours=t.delay_hours) for t in traits.traits if t.kind == "abandoned_cart"]
    for inp in cfg.inputs.values():
        if inp.table not in now:
            continue
        changed = _changes(lakehouse, inp.table, prev.get(inp.table), now[inp.table])
        full = lakehouse.read(*split_table_name(inp.table))
        cols = full.columns
        crossing = reduce(
            lambda a, b: a | b,
            [(F.col(inp.time) > F.lit(prev_as_of - s)) & (F.col(inp.time) <= F.lit(as_of - s)) for s in shifts],
        )
        if moved is not None and inp.via is None:
            # one pass: the rows crossing a boundary and those carrying a moved identifier
            carrying = with_customer_id(full, inp, moved_ids, moved_small)
            rows = carrying.where(crossing | F.col("customer_id").isNotNull()).select(*cols)
        else:
            rows = full.where(crossing)
        if changed is not None:
            # Pre-images too: a row updated to another customer's identifiers leaves its old one.
            rows = rows.unionByName(changed.select(*cols))
        if inp.via is not None:
            # rows reach their customer through the owning input's current rows (which follow the map)
            owner = cfg.inputs[inp.via.input]
            if owner.table in now:
                owners = _owners(with_customer_id(lakehouse.read(*split_table_name(owner.table)), owner, imap, small),
                                 inp.via.keys)
                parts.append(rows.join(owners, inp.via.keys).select("customer_id"))
        else:
            parts.append(identifier_customers(rows, inp, imap, small))
    return reduce(lambda a, b: a.unionByName(b), parts).where(F.col("customer_id").isNotNull()).distinct()


def _finish(profile: DataFrame, traits: TraitsConfig, as_of: datetime, run_id: str) -> DataFrame:
    profile = profile.withColumn("_as_of", F.lit(as_of).cast("timestamp"))
    for t in relative_traits(traits):
        profile = profile.withColumn(t.name, F.expr(t.expr))
    profile = with_rfm(profile.drop("_as_of"), traits)
    data_cols = sorted(c for c in profile.columns if c not in META)
    return profile.select(
        *data_cols,
        F.sha2(F.to_json(F.struct(*data_cols)), 256).alias("_profile_hash"),
        F.lit(run_id).alias("updated_run_id"),
        F.lit(as_of).cast("timestamp").alias("as_of"),
    )


def full_profiles(
    spark: SparkSession, lakehouse, cfg: GoldConfig, traits: TraitsConfig, as_of: datetime, run_id: str
) -> DataFrame:
    """Every customer's ``gold.customer_profile`` row as a full build as of ``as_of`` writes it.

    What a full build merges into the table, and what every incremental build must leave there.
    The fresh profiles are checkpointed: _finish reads them twice (RFM ranks them and joins back),
    and their plan has almost no exchanges for Spark to reuse, so it would run twice.
    """
    fresh = checkpoint_by(profiles_for(spark, lakehouse, cfg, traits, as_of), "customer_id")
    return _finish(fresh, traits, as_of, run_id)


def build_gold(
    spark: SparkSession,
    lakehouse,
    cfg: GoldConfig,
    traits: TraitsConfig,
    run_id: str,
    as_of: datetime | None = None,
    full: bool = False,
) -> dict:
    """Build or incrementally maintain gold.customer_profile; returns counts for the run log."""
    as_of = as_of or datetime.now(timezone.utc).replace(tzinfo=None)
    versions = _versions(lakehouse, cfg)
    if cfg.identity_map not in versions:
        raise CdpError(f"{cfg.identity_map} does not exist: run `cdp resolve` first")
    state = None if full else _last_state(lakehouse)
    if state is not None and (refs := [t for t in _references(cfg) if versions.get(t) != state[1].get(t)]):
        # Any profile may read a changed reference row (a product's category, a postcode's region):
        # every profile is recomputed, and still only the rows that differ are merged.
        log.info("gold: reference tables changed since the last build (%s): every profile is recomputed",
                 ", ".join(refs))
        state = None
    touched, touched_count = None, None
    if state is not None and lakehouse.exists("gold", "customer_profile"):
        prev_as_of, prev_versions = state
        try:
            touched = _touched(lakehouse, cfg, traits, prev_as_of, as_of, prev_versions, versions).cache()
        except ChangeFeedUnavailable as e:
            # the feed was switched off for a while, or its versions were cleaned up (log retention,
            # VACUUM) after a long pause: which customers changed is unknown, so all are recomputed
            log.warning("gold: no change feed for %s; every profile is recomputed", e)
    if touched is not None:
        touched_count = touched.count()
        # The customers a full build computes (new ones too: they are touched, and not yet profiles):
        # counted for the share, then the scoped build keeps the stored profiles of these only. On disk,
        # as the other intermediates (see profiles_for), so the map is read and de-duplicated once.
        live = lakehouse.read(*split_table_name(cfg.identity_map)).select("customer_id").distinct()
        live = live.persist(StorageLevel.DISK_ONLY)
        customers = live.count()
        if touched_count > cfg.recompute_all_share * customers:
            log.info("gold: %d of %d customers touched (more than recompute_all_share %.2f): every profile is "
                     "recomputed", touched_count, customers, cfg.recompute_all_share)
            touched.unpersist()
            live.unpersist()
            touched = None
    if touched is None:
        mode = "full"
        final = full_profiles(spark, lakehouse, cfg, traits, as_of, run_id)
    else:
        # checkpointed, as in full_profiles: _finish reads them twice
        fresh = checkpoint_by(profiles_for(spark, lakehouse, cfg, traits, as_of, customers=touched), "customer_id")
        current = lakehouse.read("gold", "customer_profile")
        kept = current.join(touched, "customer_id", "left_anti").join(live, "customer_id", "left_semi")
        kept = kept.drop(*META)
        mode = "incremental"
        final = _finish(kept.unionByName(fresh, allowMissingColumns=True), traits, as_of, run_id)
    final = final.persist(StorageLevel.DISK_ONLY)  # see profiles_for: keep storage memory free
    rows_out = final.count()
    # Only the rows whose content hash changed, the new ones and those of customers gone are merged
    # (one commit, none when nothing differs): the MERGE's source is what changed, not every profile.
    properties = {"delta.enableDeletionVectors": "true" if cfg.deletion_vectors else "false"}
    changed = lakehouse.sync(final, "gold", "customer_profile", ["customer_id"], compare=["_profile_hash"],
                             properties=properties)
    lakehouse.register("gold", "customer_profile")
    state_row = [(run_id, as_of, json.dumps(versions, sort_keys=True), datetime.now(timezone.utc).replace(tzinfo=None))]
    spark.createDataFrame(state_row, STATE_SCHEMA).write.format("delta").mode("append").save(
        lakehouse.path("ops", "gold_state")
    )
    try:
        compacted = lakehouse.compact("gold", "customer_profile", cfg.compact_every)
    except Exception as e:  # maintenance: the profiles and the build state are committed; the next build retries
        log.warning("gold: compacting gold.customer_profile failed (%s); the next build tries again", type(e).__name__)
        compacted = False
    final.unpersist()
    if touched is not None:
        touched.unpersist()
        live.unpersist()
    return {
        "mode": mode,
        "rows_out": rows_out,
        "customers_recomputed": touched_count if mode == "incremental" else rows_out,
        "customers_touched": touched_count,  # None: not looked for (full or first build, reference changed, no feed)
        "rows_changed": changed,
        "compacted": compacted,
    }
