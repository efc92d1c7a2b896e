"""Helpers for the bronze tests: a private lakehouse per test and landing files in the
docs/landing.md formats, written by the tests themselves."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

from cdp_lib.bronze.sources import SourcesConfig
from cdp_lib.lakehouse import Lakehouse
from tests.silver_fixtures import lakehouse_at

# The JSON-lines contract of the bronze tests: required id, map, nested struct, int, timestamp.
EVENTS_CONTRACT = [
    {"name": "messageId", "type": "string", "nullable": False},
    {"name": "userId", "type": "string"},
    {"name": "traits", "type": "map<string,string>"},
    {"name": "context", "type": "struct<device:struct<id:string>>"},
    {"name": "n", "type": "int"},
    {"name": "ts", "type": "timestamp"},
]


def private_lakehouse(spark, settings, root: Path) -> Lakehouse:
    """A Lakehouse whose root and landing zone live under ``root`` (tests never share tables)."""
    return lakehouse_at(spark, settings, root / "lake", root / "landing")


def write_text(landing: str | Path, rel: str, text: str) -> Path:
    path = Path(landing) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_parquet(spark, landing: str | Path, rel: str, rows: list, schema: str) -> Path:
    """One Parquet file at exactly ``rel`` (Spark writes a folder; keep its single part file)."""
    target = Path(landing) / rel
    tmp = target.parent / ("_tmp_" + target.name)
    spark.createDataFrame(rows, schema).coalesce(1).write.mode("overwrite").parquet(str(tmp))
    part = glob.glob(str(tmp / "part-*.parquet"))[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(part, target)
    shutil.rmtree(tmp)
    return target


def sources(*blocks: dict) -> SourcesConfig:
    return SourcesConfig.model_validate({"sources": list(blocks)})


def uri(path: Path) -> str:
    """The file name as Spark and the file log record it."""
    return "file:" + str(path)
