"""Generate a landing zone plus its ground truth: the front object of the generator."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib.config import join_path
from cdp_lib.errors import GenerateError
from cdp_lib.generate.config import GenerateConfig
from cdp_lib.generate.crm import build_crm_contacts
from cdp_lib.generate.events import build_ecom_orders, build_events, build_sessions
from cdp_lib.generate.offline import (
    build_consent,
    build_email_engagement,
    build_enrichment,
    build_pos_orders,
    build_support_tickets,
)
from cdp_lib.generate.people import Timeline, build_people, partitions_for
from cdp_lib.generate.reference import build_postcodes, build_products
from cdp_lib.generate.rng import Rng
from cdp_lib.generate.truth import (
    identifier_rows,
    read_side_identifiers,
    read_side_records,
    record_rows,
    side_lines,
    truth_identifiers,
    truth_people,
    truth_records,
)
from cdp_lib.generate.writer import FileSpec, HadoopFiles, redeliver, write_files
from cdp_lib.session import temporary_conf

__all__ = ["GenerateResult", "LANDING_FOLDERS", "generate_sample_data", "default_truth_dir", "source_frames"]

log = logging.getLogger(__name__)

# Top-level landing folders the generator owns (replaced on --overwrite, nothing else is touched).
LANDING_FOLDERS = ("crm", "events", "orders", "support", "email", "consent", "reference", "enrichment")


def _spec(source: str) -> FileSpec:
    d = lambda v: v["_date"]  # noqa: E731
    specs = {
        "crm_contacts": FileSpec(
            source, "csv",
            lambda v, i: f"crm/contacts/{d(v)}/contacts_{'full' if v['_full'] == 'true' else 'delta'}_{d(v)}.csv",
            ("_date", "_full"), ("contact_id", "updated_at"), single_file=True),
        # web and app events in one pass: events/<channel>/<date>/...
        "events": FileSpec(source, "jsonl", lambda v, i: f"events/{v['channel']}/{d(v)}/events-{i:04d}.jsonl",
                           ("channel", "_date")),
        "ecom_orders": FileSpec(source, "parquet", lambda v, i: f"orders/ecom/{d(v)}/orders-{i:04d}.parquet"),
        "pos_orders": FileSpec(source, "csv", lambda v, i: f"orders/pos/{d(v)}/pos_{v['store_id']}_{d(v)}.csv",
                               ("_date", "store_id"), ("order_id", "line_no"), single_file=True),
        "support_tickets": FileSpec(source, "jsonl", lambda v, i: f"support/{d(v)}/tickets-{i:04d}.json"),
        "email_engagement": FileSpec(source, "csv", lambda v, i: f"email/{d(v)}/engagement_{d(v)}.csv",
                                     sort_by=("event_id",), single_file=True),
        "consent": FileSpec(source, "csv", lambda v, i: f"consent/{d(v)}/consent_{d(v)}.csv",
                            sort_by=("record_id",), single_file=True),
        "enrichment": FileSpec(source, "csv", lambda v, i: f"enrichment/{d(v)}/enrichment_{d(v)}.csv",
                               sort_by=("email_sha256",), single_file=True),
    }
    return specs[source]


@dataclass
class GenerateResult:
    landing: str
    truth: str
    people: int
    days: int
    seed: int
    files: dict[str, int] = field(default_factory=dict)
    redelivered: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"landing": self.landing, "truth": self.truth, "people": self.people, "days": self.days,
                "seed": self.seed, "dates": self.dates, "files": self.files, "redelivered": self.redelivered}


def default_truth_dir(landing: str) -> str:
    """``truth/`` next to the landing folder."""
    parent = landing.rstrip("/").rsplit("/", 1)[0] if "/" in landing.rstrip("/") else "."
    return join_path(parent, "truth")


Stage = Callable[[DataFrame, str], DataFrame]

# Sources whose frame is generated once and written with its truth in the same pass; the
# others are staged (Parquet) and both their landing files and truth are read from the stage.
_TEXT_SOURCES = ("events", "support_tickets")


def _frames(spark: SparkSession, cfg: GenerateConfig, seed: int,
            stage: Stage) -> tuple[DataFrame, dict[str, DataFrame]]:
    """The people frame and one frame per landing source; ``events`` holds web and app
    events (a ``channel`` column)."""
    rng = Rng(seed)
    tl = Timeline(cfg)
    people = stage(build_people(spark, cfg, rng), "people")
    sessions = stage(build_sessions(people, cfg, rng), "sessions")
    started = time.time()
    events = build_events(sessions, cfg, rng)
    frames = {
        "crm_contacts": build_crm_contacts(people, cfg, rng).withColumn(
            "_full", F.when(F.col("_day") == 0, F.lit("true")).otherwise(F.lit("false"))),
        "events": events,
        "ecom_orders": build_ecom_orders(sessions, cfg, rng),
        "pos_orders": build_pos_orders(people, cfg, rng),
        "support_tickets": build_support_tickets(people, cfg, rng),
        "email_engagement": build_email_engagement(people, cfg, rng),
        "consent": build_consent(people, cfg, rng),
        "enrichment": build_enrichment(people, cfg, rng),
    }
    frames = {k: v.withColumn("_date", tl.date_of(F.col("_day"))) for k, v in frames.items() if v is not None}
    log.info("generate: planned the sources in %.1fs", time.time() - started)
    return people, frames


def source_frames(spark: SparkSession, cfg: GenerateConfig, seed: int,
                  stage: Stage | None = None) -> tuple[DataFrame, dict[str, DataFrame]]:
    """The people frame and every source frame (landing columns + internal ``_`` columns).

    ``stage(df, name)`` may materialise the two shared intermediate frames (people,
    sessions): without it every source re-derives them inside one enormous expression tree.
    """
    people, frames = _frames(spark, cfg, seed, stage or (lambda df, name: df))
    events = frames.pop("events")
    split = {f"{c}_events": events.where(F.col("channel") == c).drop("channel") for c in ("web", "app")}
    return people, {k: v for k, v in {**frames, **split}.items()}


# Session settings while generating (restored afterwards). The generated row expressions are
# large: whole-stage code above the JIT's 8000-byte method limit would run interpreted (several
# times slower), so such stages fall back to per-operator code (split into small methods).
_GENERATE_CONF = {"spark.sql.codegen.hugeMethodLimit": "8000"}


def generate_sample_data(spark: SparkSession, cfg: GenerateConfig, seed: int, landing: str,
                         truth: str | None = None, *, overwrite: bool = False) -> GenerateResult:
    """Write the landing zone of ``cfg.people`` people over day 0..``cfg.days`` and its ground truth.

    Deterministic: the same config and seed write the same rows into the same file names.
    Refuses to write into a landing folder that already holds generated data unless
    ``overwrite`` (which replaces only the generator's own folders and the truth folder).
    """
    with temporary_conf(spark, _GENERATE_CONF):
        return _generate(spark, cfg, seed, landing, truth, overwrite)


def _generate(spark: SparkSession, cfg: GenerateConfig, seed: int, landing: str, truth: str | None,
              overwrite: bool) -> GenerateResult:
    truth = truth or default_truth_dir(landing)
    files = HadoopFiles(spark, landing)
    existing = [f for f in LANDING_FOLDERS if files.exists(join_path(landing, f))]
    if existing and not overwrite:
        raise GenerateError(f"landing folder {landing} already holds generated data ({', '.join(existing)}); "
                            "use --overwrite to replace it")
    for f in existing:
        files.delete(join_path(landing, f))
    files.delete(truth)
    tmp = join_path(landing, "_generating")
    files.delete(tmp)

    def stage(df: DataFrame, name: str) -> DataFrame:
        # Parquet on the landing file system, not memory: driver/executor memory stays flat with scale.
        # Reading it back keeps the generating partitions (fixed ranges of person ids) in order.
        path = join_path(tmp, "_stage", name)
        started = time.time()
        # No dictionary pages: the staged columns are mostly unique strings, and trying to
        # dictionary-encode them (then falling back) costs more than it saves.
        df.write.mode("overwrite").option("parquet.enable.dictionary", "false").parquet(path)
        log.info("generate: staged %s in %.1fs", name, time.time() - started)
        return spark.read.parquet(path)

    people, frames = _frames(spark, cfg, seed, stage)
    parts = partitions_for(cfg.people)
    result = GenerateResult(landing=landing, truth=truth, people=cfg.people, days=cfg.days, seed=seed)
    daily: list[str] = []
    records: list[DataFrame] = []          # de-duplicated by the truth
    unique_records: list[DataFrame] = []   # already free of duplicates
    identifiers: list[DataFrame] = []
    for source, frame in frames.items():
        spec = _spec(source)
        n = cfg.days + 1 if spec.single_file else parts
        if source in _TEXT_SOURCES:
            # One pass: each row's landing line plus its truth lines.
            label = F.concat(F.col("channel"), F.lit("_events")) if source == "events" else source
            side = join_path(tmp, "_truth", source)
            written = write_files(frame, spec, join_path(tmp, source), landing, files, n,
                                  side=side_lines(label), side_dir=side)
            # Event message ids are unique (128 hash bits): no de-duplicating shuffle for them.
            (unique_records if source == "events" else records).append(
                read_side_records(spark, join_path(side, "records")))
            identifiers.append(read_side_identifiers(spark, join_path(side, "identifiers")))
        else:
            staged = stage(frame, source)
            written = write_files(staged, spec, join_path(tmp, source), landing, files, n)
            records.append(record_rows(staged, source))
            identifiers.append(identifier_rows(staged))
        if source == "events":
            for c in ("web", "app"):
                result.files[f"{c}_events"] = sum(p.startswith(f"events/{c}/") for p in written)
        else:
            result.files[source] = len(written)
        daily += written
    result.redelivered = redeliver(daily, cfg.noise.redelivered_file, seed, landing, files)

    rng = Rng(seed)
    for name, frame in (("postcodes", build_postcodes(spark, cfg)), ("products", build_products(spark, cfg, rng))):
        spec = FileSpec(f"ref_{name}", "csv", lambda v, i, n=name: f"reference/{n}/{n}.csv", (), (frame.columns[0],),
                        single_file=True)
        result.files[f"ref_{name}"] = len(write_files(frame, spec, join_path(tmp, name), landing, files, 1))

    for name, frame in (("people", truth_people(people)), ("records", truth_records(records, unique_records)),
                        ("identifiers", truth_identifiers(identifiers))):
        started = time.time()
        frame.write.mode("overwrite").parquet(join_path(truth, name))
        log.info("generate: truth %s in %.1fs", name, time.time() - started)
    files.delete(tmp)
    tl = Timeline(cfg)
    result.dates = [(tl.start_date.fromordinal(tl.start_date.toordinal() + d)).isoformat() for d in range(cfg.days + 1)]
    log.info("generate: %d people, %d days, %d landing files (%d re-delivered)", cfg.people, cfg.days + 1,
             sum(result.files.values()), len(result.redelivered))
    return result
