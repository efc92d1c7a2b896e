"""Fixtures for the streaming tests: a private lakehouse, a controllable clock, a webhook receiver."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pyspark.sql import types as T

from cdp_lib.lakehouse import Lakehouse

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)

# The columns of gold.trigger_events the tests compare (chispa needs an explicit schema for expected rows).
FIRED = T.StructType([
    T.StructField("trigger", T.StringType()),
    T.StructField("customer_id", T.StringType()),
    T.StructField("cart_id", T.StringType()),
    T.StructField("fired_at", T.TimestampType()),
    T.StructField("event_ts", T.TimestampType()),
])


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(minutes: float) -> str:
    return at(minutes).isoformat().replace("+00:00", "Z")


class Clock:
    """'now' for the stream under test: set by the test, never the wall clock."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Webhook:
    """A local HTTP endpoint on 127.0.0.1 recording every POST (or answering 500 when ``failing``)."""

    def __init__(self):
        self.posts: list[tuple[dict, dict]] = []
        self.failing = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.failing:
                    self.send_response(500)
                else:
                    outer.posts.append((dict(self.headers), json.loads(body)))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def private_lakehouse(spark, settings, root: Path) -> Lakehouse:
    """A lakehouse (and landing zone, checkpoints) of its own under ``root``."""
    lh = settings.lakehouse.model_copy(update={"root": str(root / "lake"), "landing": str(root / "landing"),
                                               "checkpoints": None})
    return Lakehouse(spark, settings.model_copy(update={"lakehouse": lh}))


def seed_customers(spark, lh: Lakehouse) -> None:
    """identity map: C1 -> cust1, C2 -> cust2, c3@example.com -> cust3, C4 -> cust4;
    consent_email: cust1 and cust2 yes, cust3 no, cust4 has no profile."""
    spark.createDataFrame(
        [("crm_id", "C1", "cust1"), ("crm_id", "C2", "cust2"), ("email", "c3@example.com", "cust3"),
         ("crm_id", "C4", "cust4")],
        "id_type string, id_value string, customer_id string",
    ).write.format("delta").save(lh.path("gold", "identity_map"))
    spark.createDataFrame(
        [("cust1", True), ("cust2", True), ("cust3", False)], "customer_id string, consent_email boolean",
    ).write.format("delta").save(lh.path("gold", "customer_profile"))


def land(landing: Path, channel: str, events: list[dict | str]) -> Path:
    """Write one JSON-lines file of events into ``events/<channel>/<date>/`` (renamed into place)."""
    folder = landing / "events" / channel / "2026-03-10"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(list(folder.glob("events-*.jsonl")))
    path = folder / f"events-{n:04d}.jsonl"
    tmp = folder / f".tmp-{uuid.uuid4().hex}"
    tmp.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events), encoding="utf-8")
    tmp.rename(path)
    return path


def track(msg: str, event: str, ts: str, cart: str | None, user: str | None = None, anon: str | None = None,
          email: str | None = None) -> dict:
    return {"messageId": msg, "type": "track", "event": event, "userId": user, "anonymousId": anon,
            "traits": {"email": email} if email else None,
            "properties": {"cart_id": cart} if cart else {}, "timestamp": ts}


def identify(msg: str, ts: str, user: str | None = None, anon: str | None = None, email: str | None = None) -> dict:
    return {"messageId": msg, "type": "identify", "userId": user, "anonymousId": anon,
            "traits": {"email": email} if email else None, "timestamp": ts}
