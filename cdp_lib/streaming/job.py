"""The event stream: files (and Kafka) -> bronze -> live stitching -> cart state -> fired triggers -> sinks.

One Structured Streaming query over the files (file source over every stream source's landing
glob, ``maxFilesPerTrigger``, checkpoint under ``<checkpoints>/streams/<name>``) and, when
``stream.kafka.bootstrap_servers`` is set, a second one over the Kafka topics
(``maxOffsetsPerTrigger``, checkpoint ``<checkpoints>/streams/<name>_kafka``), both on the
processingTime trigger. Each ``foreachBatch`` parses its batch into one parsed frame per source
(files: the batch reader; Kafka: the same JSON parser over record values), then
:meth:`EventStream._process` runs the same steps whichever input it came from:

1. bronze + quarantine for the batch (idempotent txn writes keyed by the query's own id);
2. live links from identify/alias events, then every event resolved to a customer id;
3. each trigger's cart state updated, due carts fired, pending deliveries delivered;
4. one ``ops.run_log`` row (stage ``stream``) with the batch's counts and its input.

A file source runs no batch when nothing new lands, so the driver also *ticks* (steps 3's fire
and deliver only) every trigger interval; one lock keeps ticks and the batches of both queries
from overlapping (carts and deliveries are read-modify-write). Every write is idempotent, so a
batch replayed after a crash (Spark re-runs the last uncommitted batch id, with the same files
or the same Kafka offsets) leaves the tables as one clean run would.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from cdp_lib.bronze.readers import parse_json_lines, read_files
from cdp_lib.bronze.sources import SourcesConfig, contract_schema
from cdp_lib.lakehouse import Lakehouse
from cdp_lib.runlog import new_run_id, stage_run
from cdp_lib.streaming.bronze import write_bronze_batch
from cdp_lib.streaming.carts import apply_cart_events
from cdp_lib.streaming.config import TriggersConfig, check_kafka_topics
from cdp_lib.streaming.fire import deliver_pending, fire_due
from cdp_lib.streaming.source import checkpoint_query_id, file_stream, kafka_stream
from cdp_lib.streaming.stitch import identity_lookup, merge_links, new_links, with_customer_id

__all__ = ["EventStream", "utc_now"]

log = logging.getLogger(__name__)

_EVENT_COLUMNS = ("messageId", "type", "anonymousId", "userId", "previousId", "event", "traits", "properties",
                  "context", "timestamp")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class EventStream:
    """The stream job for one lakehouse; ``clock`` is injectable so tests control 'now'."""

    def __init__(self, spark: SparkSession, lakehouse: Lakehouse, config: TriggersConfig, sources: SourcesConfig,
                 clock: Callable[[], datetime] = utc_now, run_id: str | None = None):
        check_kafka_topics(config)
        self.spark = spark
        self.lakehouse = lakehouse
        self.config = config
        self.sources = [sources.get(n) for n in config.stream.sources]
        self.schemas = {s.name: contract_schema(spark, s) for s in self.sources}
        self.clock = clock
        self.run_id = run_id or new_run_id()
        self.checkpoint = lakehouse.checkpoint("streams", config.stream.checkpoint)
        self.kafka_checkpoint = lakehouse.checkpoint("streams", config.stream.kafka_checkpoint)
        self.last_activity = time.monotonic()
        self._lock = threading.Lock()
        self._query_ids: dict[str, str] = {}

    # -- the queries -------------------------------------------------------------------------------

    def _trigger(self, writer, available_now: bool):
        if available_now:
            return writer.trigger(availableNow=True)
        return writer.trigger(processingTime=f"{int(self.config.stream.interval.total_seconds())} seconds")

    def start(self, available_now: bool = False) -> list[StreamingQuery]:
        """Start the file query and, when Kafka is configured, the Kafka query (same lock, same steps)."""
        stream = file_stream(self.spark, self.sources, self.lakehouse.settings.lakehouse.landing,
                             self.config.stream.max_files_per_trigger)
        writer = (
            stream.writeStream.queryName(f"cdp_{self.config.stream.checkpoint}")
            .option("checkpointLocation", self.checkpoint)
            .foreachBatch(self.process_batch)
        )
        queries = [self._trigger(writer, available_now).start()]
        if self.config.stream.kafka.enabled:
            try:
                kafka = (
                    kafka_stream(self.spark, self.config.stream.kafka).writeStream
                    .queryName(f"cdp_{self.config.stream.kafka_checkpoint}")
                    .option("checkpointLocation", self.kafka_checkpoint)
                    .foreachBatch(self.process_kafka_batch)
                )
                queries.append(self._trigger(kafka, available_now).start())
            except BaseException:
                queries[0].stop()
                raise
        return queries

    def run_available_now(self) -> None:
        """Process every file landed and every Kafka record published so far, then one tick
        (fires carts due by now even without new input)."""
        queries = self.start(available_now=True)
        try:
            for query in queries:
                query.awaitTermination()
        finally:
            _stop(queries)
        self.tick()

    def run(self, timeout_s: float | None = None) -> None:
        """Run continuously (or for ``timeout_s``), ticking every interval when no batch ran."""
        interval = self.config.stream.interval.total_seconds()
        queries = self.start()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while all(q.isActive for q in queries) and (deadline is None or time.monotonic() < deadline):
                wait = interval if deadline is None else max(0.1, min(interval, deadline - time.monotonic()))
                if queries[0].awaitTermination(wait):
                    break
                if time.monotonic() - self.last_activity >= interval:
                    self.tick()
        finally:
            _stop(queries)
        for query in queries:
            if query.exception() is not None:
                raise query.exception()

    # -- work per micro-batch / tick ---------------------------------------------------------------

    def _query_id(self, checkpoint: str) -> str:
        if checkpoint not in self._query_ids:
            self._query_ids[checkpoint] = checkpoint_query_id(self.spark, checkpoint)
        return self._query_ids[checkpoint]

    @property
    def query_id(self) -> str:
        """The file query's id (names its bronze txnAppId)."""
        return self._query_id(self.checkpoint)

    @property
    def kafka_query_id(self) -> str:
        """The Kafka query's id: another checkpoint, so another txnAppId on the same bronze tables."""
        return self._query_id(self.kafka_checkpoint)

    def process_batch(self, batch: DataFrame, batch_id: int) -> None:
        """``foreachBatch`` of the file query: rows (source, file_path) of newly landed files."""
        with self._lock:
            files: dict[str, list[str]] = {}
            for r in batch.select("source", "file_path").distinct().collect():
                files.setdefault(r["source"], []).append(r["file_path"])
            parsed = {s.name: read_files(self.spark, s, self.schemas[s.name], sorted(files[s.name]))
                      for s in self.sources if s.name in files}
            self._process(parsed, batch_id, self.query_id,
                          {"input": "files", "files": sum(len(v) for v in files.values())})
            self.last_activity = time.monotonic()

    def process_kafka_batch(self, batch: DataFrame, batch_id: int) -> None:
        """``foreachBatch`` of the Kafka query: rows (source, value, record), one per Kafka record."""
        with self._lock:
            # Cached: each source's parse and the counts read the records once, not once per action.
            batch = batch.persist(StorageLevel.MEMORY_AND_DISK)
            try:
                records = {r["source"]: r["count"] for r in batch.groupBy("source").count().collect()}
                parsed = {
                    s.name: parse_json_lines(batch.where(F.col("source") == s.name), s, self.schemas[s.name],
                                             F.col("value"), F.col("record"))
                    for s in self.sources if s.name in records
                }
                self._process(parsed, batch_id, self.kafka_query_id,
                              {"input": "kafka", "records": sum(records.values())})
            finally:
                batch.unpersist()
            self.last_activity = time.monotonic()

    def _process(self, parsed_by_source: dict[str, DataFrame], batch_id: int, query_id: str, details: dict) -> None:
        """Steps 1-4 for one batch of either input: ``parsed_by_source`` holds the bronze reader's
        parsed frame for each source that has input in this batch."""
        spark, lh = self.spark, self.lakehouse
        now = self.clock()
        with stage_run(spark, lh.path("ops", "run_log"), self.run_id, "stream") as run:
            run.details = {"batch_id": batch_id, **details}
            cached, frames, rows, bad = [], [], 0, 0
            try:
                for source in self.sources:
                    if source.name not in parsed_by_source:
                        continue
                    p, good, n, q = write_bronze_batch(lh, source, self.schemas[source.name],
                                                       parsed_by_source[source.name], batch_id, query_id)
                    cached.append(p)
                    frames.append(good.select(*_EVENT_COLUMNS))
                    rows, bad = rows + n, bad + q
                run.rows_in, run.rows_quarantined = rows + bad, bad
                if frames:
                    events = frames[0]
                    for f in frames[1:]:
                        events = events.unionByName(f)
                    events = events.persist()
                    links = new_links(events, identity_lookup(spark, lh), now)
                    merge_links(spark, lh, links)
                    resolved = with_customer_id(events, identity_lookup(spark, lh)).persist()
                    run.rows_out = resolved.count()
                    run.details["resolved"] = resolved.where(F.col("customer_id").isNotNull()).count()
                    for trigger in self.config.triggers:
                        apply_cart_events(spark, lh, resolved, trigger, now)
                    resolved.unpersist()
                    events.unpersist()
            finally:
                for p in cached:
                    p.unpersist()
            run.details.update(self._fire(now, batch_id, f"b{batch_id}-{query_id[:8]}"))

    def tick(self) -> dict:
        """Fire carts that became due by the clock and retry pending deliveries (no new input)."""
        with self._lock:
            now = self.clock()
            summary = self._fire(now, None, "t" + now.strftime("%Y%m%dT%H%M%S%f"))
            self.last_activity = time.monotonic()
            return summary

    def _fire(self, now: datetime, batch_id: int | None, tag: str) -> dict:
        out: dict = {}
        for trigger in self.config.triggers:
            counts = fire_due(self.spark, self.lakehouse, trigger, now, batch_id, self.run_id,
                              f"{trigger.name}-{tag}")
            delivered = deliver_pending(self.spark, self.lakehouse, trigger, self.lakehouse.settings.s3, now)
            out[trigger.name] = {**counts, **delivered}
            if counts.get("fire") or delivered["failed"]:
                log.info("trigger %s: fired %d, delivered %d, failed deliveries %d", trigger.name,
                         counts.get("fire", 0), delivered["delivered"], delivered["failed"])
        return out


def _stop(queries: list[StreamingQuery]) -> None:
    for query in queries:
        if query.isActive:
            query.stop()
