"""Benchmark: the event stream's landing-to-delivery latency and sustained event rate.

    .venv/bin/python bench/stream_latency.py                       # defaults below
    .venv/bin/python bench/stream_latency.py --files 6 --backlog-files 20 --events-per-file 5000

Runs ``EventStream.run`` (the processingTime trigger at the interval of conf/triggers.yaml,
10 s by default) in a background thread against a fresh lakehouse under ``--work``, with the
cart trigger's ``delay`` set to 0 and ``watermark`` to ``--watermark`` (30 s): a cart is due once
the watermark passes its event, so the measured latency includes that wait (in production the
business delay comes on top). Delivery goes to a local folder drop and a webhook on 127.0.0.1.

1. **Latency**: ``--files`` files, ``--gap`` seconds apart, each with one ``Product Added`` for
   a new cart of a consented customer (plus ``--filler`` other events); latency = webhook
   receipt time - time the file was renamed into the landing folder.
2. **Sustained rate**: ``--backlog-files`` x ``--events-per-file`` events landed at once; rate =
   events / (time until all are in bronze - landing time).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from cdp_lib.bronze.sources import load_sources  # noqa: E402
from cdp_lib.config import load_settings  # noqa: E402
from cdp_lib.lakehouse import Lakehouse  # noqa: E402
from cdp_lib.session import build_session  # noqa: E402
from cdp_lib.streaming.config import load_triggers  # noqa: E402
from cdp_lib.streaming.job import EventStream  # noqa: E402


def _receiver(received: dict[str, float]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            for e in body["events"]:
                received.setdefault(e["cart_id"], time.time())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _event(i: int, cart: str | None, customer: int, ts: str) -> str:
    e = {"messageId": f"m-{uuid.uuid4().hex}", "type": "track", "userId": f"C{customer:08d}",
         "anonymousId": f"a-{customer}", "event": "Product Added" if cart else "Product Viewed",
         "properties": {"cart_id": cart, "product_id": f"P{i % 500}", "price": "9.99"} if cart
         else {"product_id": f"P{i % 500}", "price": "9.99"},
         "context": {"device": {"id": None, "type": "desktop", "model": None}, "ip": "10.0.0.1",
                     "userAgent": "bench", "library": {"name": "analytics.js"}},
         "timestamp": ts}
    return json.dumps(e)


def _land(landing: Path, lines: list[str]) -> float:
    folder = landing / "events" / "web" / "2026-03-10"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{uuid.uuid4().hex}"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = folder / f"events-{uuid.uuid4().hex[:12]}.jsonl"
    tmp.rename(path)
    return time.time()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/cdp-bench-stream")
    p.add_argument("--customers", type=int, default=10000)
    p.add_argument("--files", type=int, default=6, help="latency probes (one file each)")
    p.add_argument("--gap", type=float, default=7.0, help="seconds between latency probes")
    p.add_argument("--filler", type=int, default=100, help="other events per probe file")
    p.add_argument("--watermark", type=int, default=30,
                   help="trigger watermark, seconds (events later than this are ignored; a cart fires after it)")
    p.add_argument("--backlog-files", type=int, default=20)
    p.add_argument("--events-per-file", type=int, default=5000)
    args = p.parse_args(argv)

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    settings = load_settings("local", PROJECT / "conf")
    lh_settings = settings.lakehouse.model_copy(update={"root": str(work / "lake"), "landing": str(work / "landing"),
                                                        "checkpoints": None})
    settings = settings.model_copy(update={"lakehouse": lh_settings})
    spark = build_session(settings, {"spark.ui.enabled": "false"})
    lh = Lakehouse(spark, settings)
    received: dict[str, float] = {}
    server = _receiver(received)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    sources = load_sources(settings.conf_dir)
    config = load_triggers(settings.conf_dir, sources)
    triggers = [t.model_copy(update={
        "delay": "0 seconds", "watermark": f"{args.watermark} seconds",
        "sinks": t.sinks.model_copy(update={
            "drop": t.sinks.drop.model_copy(update={"uri": str(work / "drops")}),
            "webhook": t.sinks.webhook.model_copy(update={"url": url}),
        }),
    }) for t in config.triggers]
    config = config.model_copy(update={"triggers": triggers})

    ids = spark.range(args.customers).selectExpr(
        "'crm_id' as id_type", "format_string('C%08d', id) as id_value", "format_string('cust%d', id) as customer_id")
    ids.write.format("delta").save(lh.path("gold", "identity_map"))
    spark.range(args.customers).selectExpr("format_string('cust%d', id) as customer_id", "true as consent_email") \
        .write.format("delta").save(lh.path("gold", "customer_profile"))

    job = EventStream(spark, lh, config, sources)
    errors: list[BaseException] = []

    def runner():
        try:
            job.run(timeout_s=None)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    # Warm-up: one file through the whole path before measuring (JIT, Delta table creation).
    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    now_iso = lambda: datetime.now(timezone.utc).isoformat()  # noqa: E731
    _land(Path(lh_settings.landing), [_event(0, "warmup", 1, now_iso())])
    deadline = time.time() + 180
    while "warmup" not in received and time.time() < deadline and not errors:
        time.sleep(0.2)

    landed: dict[str, float] = {}
    for i in range(args.files):
        cart = f"probe-{i}"
        lines = [_event(j, None, j % args.customers, now_iso()) for j in range(args.filler)]
        lines.append(_event(i, cart, (i * 7919) % args.customers, now_iso()))
        landed[cart] = _land(Path(lh_settings.landing), lines)
        time.sleep(args.gap)
    deadline = time.time() + 180
    while len([c for c in landed if c in received]) < len(landed) and time.time() < deadline and not errors:
        time.sleep(0.2)
    latencies = sorted(received[c] - landed[c] for c in landed if c in received)

    # Sustained rate: a backlog landed at once.
    before = lh.read("bronze", "web_events").count()
    total = args.backlog_files * args.events_per_file
    start = None
    for _ in range(args.backlog_files):
        lines = [_event(j, None, j % args.customers, now_iso()) for j in range(args.events_per_file)]
        t = _land(Path(lh_settings.landing), lines)
        start = start or t
    while time.time() < start + 900 and not errors:
        if lh.read("bronze", "web_events").count() - before >= total:
            break
        time.sleep(1)
    elapsed = time.time() - start
    job_stop = getattr(spark.streams, "active", [])
    for q in job_stop:
        q.stop()
    thread.join(timeout=60)
    server.shutdown()
    if errors:
        raise errors[0]
    result = {
        "trigger_interval": config.stream.trigger_interval,
        "latency_probes": len(landed),
        "delivered": len(latencies),
        "latency_s": {"min": round(latencies[0], 1), "median": round(statistics.median(latencies), 1),
                      "max": round(latencies[-1], 1)} if latencies else None,
        "backlog_events": total,
        "backlog_s": round(elapsed, 1),
        "events_per_s": round(total / elapsed, 1),
    }
    print(json.dumps(result, indent=2))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
