"""``manifest.json``: what a drop contains, so a consumer can verify it before loading.

Written after the data files and before ``_SUCCESS``; a consumer that waits for
``_SUCCESS`` can trust every file the manifest lists (row counts and SHA-256 per file).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import types as T

from cdp_lib.activation.destinations import Destination

__all__ = ["MANIFEST", "SUCCESS", "build_manifest", "manifest_bytes", "consent_policy"]

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"


def consent_policy(dest: Destination) -> dict[str, Any]:
    if dest.consent == "none":
        return {"channel": None, "rule": "no consent filter"}
    return {
        "channel": dest.consent,
        "column": f"consent_{dest.consent}",
        "rule": "only customers whose consent is true; false and null (unknown) are excluded",
    }


def build_manifest(
    dest: Destination,
    segment: str,
    run_id: str,
    drop_uri: str,
    schema: T.StructType,
    files: list[dict[str, Any]],
    inputs: dict[str, int | None],
    counts: dict[str, int],
    previous_run_id: str | None,
    full_refresh: bool = False,
) -> dict[str, Any]:
    """The manifest as a dict (files: name, rows, bytes, sha256). ``full_refresh``: an incremental drop
    that holds the whole audience as adds and replaces everything sent before (the difference from
    the last drop could not be computed); consumers drop whoever is not in it."""
    return {
        "destination": dest.name,
        "segment": segment,
        "run_id": run_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "uri": drop_uri,
        "format": dest.format,
        "mode": dest.mode,
        "previous_run_id": previous_run_id,
        "full_refresh": full_refresh,
        "rows": sum(f["rows"] for f in files),
        "counts": counts,
        "schema": [{"name": f.name, "type": f.dataType.simpleString()} for f in schema.fields],
        "files": files,
        "inputs": {table: {"delta_version": version} for table, version in inputs.items()},
        "consent": consent_policy(dest),
        "pii": {f.output if f.pii != "drop" else f.source: f.pii for f in dest.fields if f.pii},
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
