"""Delivering fired triggers: an S3-compatible drop and an HTTP webhook.

A delivery is the trigger rows of one micro-batch (or timer tick), named by its ``delivery_id``.

* Drop: ``<uri>/<trigger>/<delivery_id>/part-00000.jsonl``, then ``manifest.json`` (rows, schema,
  sha256), then ``_SUCCESS`` last, through activation's object stores (boto3 for ``s3a://``, files
  otherwise). A delivery whose ``_SUCCESS`` exists is not written again; a partial one is rewritten.
* Webhook: one ``POST`` of ``{"trigger", "delivery_id", "events": [...]}`` with an
  ``Idempotency-Key: <delivery_id>`` header; any non-2xx answer or network error is a failure, and
  the delivery is retried at the next batch or tick (at-least-once: receivers dedupe on the key).

Payloads carry ids and times only (customer id, cart id, event and fire times), never personal data.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from datetime import datetime, timezone
from typing import Any

from cdp_lib.activation.manifest import MANIFEST, SUCCESS
from cdp_lib.activation.s3 import LocalStore, ObjectStore, S3Store, boto3_client, join_key, resolve_s3, split_uri
from cdp_lib.config import S3Settings
from cdp_lib.errors import TriggerDeliveryError
from cdp_lib.streaming.config import DropSink, WebhookSink

__all__ = ["PAYLOAD_FIELDS", "drop_store", "deliver_drop", "deliver_webhook"]

PAYLOAD_FIELDS = ("trigger", "customer_id", "cart_id", "event_ts", "fired_at", "delivery_id")
PART = "part-00000.jsonl"


def _iso(v: Any) -> Any:
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).isoformat()
    return v


def _lines(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps({k: _iso(r[k]) for k in PAYLOAD_FIELDS}, sort_keys=True) + "\n"
                   for r in rows).encode("utf-8")


def drop_store(sink: DropSink, defaults: S3Settings) -> tuple[ObjectStore, str]:
    """The store and key prefix for a drop sink."""
    bucket, key = split_uri(sink.uri)
    if bucket is None:
        return LocalStore(key), ""
    return S3Store(bucket, boto3_client(resolve_s3(sink.s3, defaults))), key


def deliver_drop(store: ObjectStore, prefix: str, trigger: str, delivery_id: str,
                 rows: list[dict[str, Any]]) -> bool:
    """Write one delivery (data, manifest, ``_SUCCESS`` last); False when it was complete already."""
    base = join_key(prefix, trigger, delivery_id)
    if store.exists(join_key(base, SUCCESS)):
        return False
    store.delete_prefix(base)  # a partial earlier attempt
    data = _lines(sorted(rows, key=lambda r: (r["customer_id"], r["cart_id"])))
    store.put_bytes(join_key(base, PART), data)
    manifest = {
        "trigger": trigger,
        "delivery_id": delivery_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "format": "jsonl",
        "rows": len(rows),
        "schema": list(PAYLOAD_FIELDS),
        "files": [{"name": PART, "rows": len(rows), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}],
    }
    store.put_bytes(join_key(base, MANIFEST), (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    store.put_bytes(join_key(base, SUCCESS), b"")
    return True


def deliver_webhook(sink: WebhookSink, trigger: str, delivery_id: str, rows: list[dict[str, Any]]) -> None:
    """POST one delivery; raises TriggerDeliveryError (status or error type only) on failure."""
    body = json.dumps({
        "trigger": trigger,
        "delivery_id": delivery_id,
        "events": [{k: _iso(r[k]) for k in PAYLOAD_FIELDS} for r in rows],
    }, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(
        sink.url, data=body, method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": delivery_id},
    )
    try:
        with urllib.request.urlopen(request, timeout=sink.timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise TriggerDeliveryError(f"webhook for trigger {trigger}: HTTP {exc.code}") from None
    except OSError as exc:
        raise TriggerDeliveryError(f"webhook for trigger {trigger}: {type(exc).__name__}") from None
    if not 200 <= status < 300:
        raise TriggerDeliveryError(f"webhook for trigger {trigger}: HTTP {status}")
