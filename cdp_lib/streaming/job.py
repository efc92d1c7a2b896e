"""The event stream: files -> bronze -> live stitching -> cart state -> fired triggers -> sinks.

One Structured Streaming query (file source over every stream source's landing glob,
``maxFilesPerTrigger``, processingTime trigger, checkpoint under
``<checkpoints>/streams/<name>``) whose ``foreachBatch`` runs :meth:`EventStream.process_batch`:

1. bronze + quarantine for the batch's files (the batch path's reader; idempotent txn writes);
2. live links from identify/alias events, then every event resolved to a customer id;
3. each trigger's cart state updated, due carts fired, pending deliveries delivered;
4. one ``ops.run_log`` row (stage ``stream``) with the batch's counts.

A file source runs no batch when nothing new lands, so the driver also *ticks* (steps 3's fire
and deliver only) every trigger interval; a lock keeps ticks and batches from overlapping.
Every write is idempotent, so a batch replayed after a crash (Spark re-runs the last
uncommitted batch id) leaves the tables as one clean run would.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from cdp_lib.bronze.sources import SourcesConfig, contract_schema
from cdp_lib.lakehouse import Lakehouse
from cdp_lib.runlog import new_run_id, stage_run
from cdp_lib.streaming.bronze import write_bronze_batch
from cdp_lib.streaming.carts import apply_cart_events
from cdp_lib.streaming.config import TriggersConfig
from cdp_lib.streaming.fire import deliver_pending, fire_due
from cdp_lib.streaming.source import checkpoint_query_id, file_stream
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
        self.spark = spark
        self.lakehouse = lakehouse
        self.config = config
        self.sources = [sources.get(n) for n in config.stream.sources]
        self.schemas = {s.name: contract_schema(spark, s) for s in self.sources}
        self.clock = clock
        self.run_id = run_id or new_run_id()
        self.checkpoint = lakehouse.checkpoint("streams", config.stream.checkpoint)
        self.last_activity = time.monotonic()
        self._lock = threading.Lock()
        self._query_id: str | None = None

    # -- the query ---------------------------------------------------------------------------------

    def start(self, available_now: bool = False) -> StreamingQuery:
        stream = file_stream(self.spark, self.sources, self.lakehouse.settings.lakehouse.landing,
                             self.config.stream.max_files_per_trigger)
        writer = (
            stream.writeStream.queryName(f"cdp_{self.config.stream.checkpoint}")
            .option("checkpointLocation", self.checkpoint)
            .foreachBatch(self.process_batch)
        )
        if available_now:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{int(self.config.stream.interval.total_seconds())} seconds")
        return writer.start()

    def run_available_now(self) -> None:
        """Process every file landed so far, then one tick (fires carts due by now even without new files)."""
        query = self.start(available_now=True)
        query.awaitTermination()
        self.tick()

    def run(self, timeout_s: float | None = None) -> None:
        """Run continuously (or for ``timeout_s``), ticking every interval when no batch ran."""
        interval = self.config.stream.interval.total_seconds()
        query = self.start()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while query.isActive and (deadline is None or time.monotonic() < deadline):
                wait = interval if deadline is None else max(0.1, min(interval, deadline - time.monotonic()))
                if query.awaitTermination(wait):
                    break
                if time.monotonic() - self.last_activity >= interval:
                    self.tick()
        finally:
            if query.isActive:
                query.stop()
        if query.exception() is not None:
            raise query.exception()

    # -- work per micro-batch / tick ---------------------------------------------------------------

    @property
    def query_id(self) -> str:
        if self._query_id is None:
            self._query_id = checkpoint_query_id(self.spark, self.checkpoint)
        return self._query_id

    def process_batch(self, batch: DataFrame, batch_id: int) -> None:
        with self._lock:
            self._process(batch, batch_id)
            self.last_activity = time.monotonic()

    def _process(self, batch: DataFrame, batch_id: int) -> None:
        spark, lh = self.spark, self.lakehouse
        now = self.clock()
        files: dict[str, list[str]] = {}
        for r in batch.select("source", "file_path").distinct().collect():
            files.setdefault(r["source"], []).append(r["file_path"])
        with stage_run(spark, lh.path("ops", "run_log"), self.run_id, "stream") as run:
            run.details = {"batch_id": batch_id, "files": sum(len(v) for v in files.values())}
            parsed, frames, rows, bad = [], [], 0, 0
            try:
                for source in self.sources:
                    if source.name not in files:
                        continue
                    p, good, n, q = write_bronze_batch(spark, lh, source, self.schemas[source.name],
                                                       sorted(files[source.name]), batch_id, self.query_id)
                    parsed.append(p)
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
                for p in parsed:
                    p.unpersist()
            run.details.update(self._fire(now, batch_id, f"b{batch_id}-{self.query_id[:8]}"))

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
