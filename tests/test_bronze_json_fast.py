"""JSON lines on the fast path: files with nothing to rescue are parsed by Spark's JSON reader
and their quarantine rows re-parsed from the text (all of a file's lines, just its broken lines
kept by pass 1, or those found again by hash). Bronze and quarantine must be exactly what the
one-pass text parser gives. Real Spark, real Delta, files written here."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdp_lib.bronze import ingest_sources
from cdp_lib.bronze.readers import read_files, scan_json_files
from cdp_lib.bronze.sources import contract_schema
from tests.bronze_fixtures import EVENTS_CONTRACT, private_lakehouse, sources, uri, write_text

EVENTS = {
    "name": "tf_events", "format": "jsonl", "path": "events/*/events-*.jsonl", "entity": "events",
    "identifiers": {"userId": "user_id"},
    "contract": EVENTS_CONTRACT,
}

GOOD = [
    '{"messageId":"m1","userId":"u1","traits":{"email":"a@x.com","age":3},"context":{"device":{"id":"d1"}},'
    '"n":1,"ts":"2026-01-01T00:00:00Z"}',
    '{"messageId":"m2","n":null,"ts":"2026-01-01T10:00:00+02:00"}',
    '{"messageId":"m3","userId":"u3","n":3}',
]
BROKEN = ['{"messageId":"m4","userId":"u4","traits":{"email":"b@x', '{"messageId":"m5",']
# Day 1: clean files whose only bad lines are broken ones (quarantine re-parses them by hash).
DAY1 = {"events/2026-01-01/events-0001.jsonl": [GOOD[0], BROKEN[0], "", GOOD[1]],
        "events/2026-01-01/events-0002.jsonl": [GOOD[2], BROKEN[1], BROKEN[1]]}
# Day 2: a clean file with a type mismatch and a missing required field (its quarantine re-parses
# the whole file), a file with a key outside the contract and one with a top-level array (both on
# the text parser).
DAY2 = {
    "events/2026-01-02/events-0001.jsonl": [
        GOOD[0].replace("m1", "m6"), '{"messageId":"m7","n":"seven"}', '{"userId":"u8","n":8}', BROKEN[0]],
    "events/2026-01-02/events-0002.jsonl": ['{"messageId":"m9","extra":{"x":1}}', GOOD[1].replace("m2", "m10")],
    "events/2026-01-02/events-0003.jsonl": ['[{"messageId":"m11"}]', GOOD[2].replace("m3", "m12")],
}
DAY2_FAST = {"events/2026-01-02/events-0001.jsonl"}


@pytest.fixture(scope="module")
def lake(spark, settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("bronze_json_fast")
    lh = private_lakehouse(spark, settings, root)
    yield lh, sources(EVENTS)
    shutil.rmtree(root, ignore_errors=True)


def _deliver(lh, day: dict[str, list[str]]) -> list[str]:
    landing = lh.settings.lakehouse.landing
    return [uri(write_text(landing, rel, "\n".join(lines) + "\n")) for rel, lines in day.items()]


def _expected(spark, source, files):
    """What the one-pass text parser makes of ``files``: good rows and quarantine rows."""
    parsed = read_files(spark, source, contract_schema(spark, source), files)
    good = parsed.where("_reason is null").drop("_reason", "_raw")
    bad = parsed.where("_reason is not null").select(F.col("_raw").alias("raw"), F.col("_reason").alias("reason"),
                                                     "_source_file")
    return good, bad


def _batch(lh, table, batch_id, columns):
    return lh.read("bronze", table).where(F.col("_batch_id") == batch_id).select(*columns)


def _check_day(spark, lh, config, files, summary):
    source = config.get("tf_events")
    good, bad = _expected(spark, source, files)
    out = summary["tf_events"]
    assert (out["rows"], out["quarantined"]) == (good.count(), bad.count())
    # Maps cannot be sorted by chispa: compare them as JSON text.
    cols = [F.to_json(c).alias(c) if c == "traits" else c for c in good.columns]
    assert_df_equality(_batch(lh, "tf_events", out["batch_id"], good.columns).select(*cols), good.select(*cols),
                       ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(_batch(lh, "tf_events_quarantine", out["batch_id"], bad.columns), bad,
                       ignore_row_order=True, ignore_nullable=True)
    per_file = {(r.file_path, r.rows, r.quarantined) for r in lh.read("ops", "bronze_file_log").where(
        (F.col("status") == "committed") & (F.col("batch_id") == out["batch_id"])).collect()}
    counted = {r._source_file: r["count"] for r in good.groupBy("_source_file").count().collect()}
    quarantined = {r._source_file: r["count"] for r in bad.groupBy("_source_file").count().collect()}
    assert per_file == {(f, counted.get(f, 0), quarantined.get(f, 0)) for f in files}


def test_clean_files_take_the_json_reader_and_broken_lines_come_from_pass_one(spark, lake, caplog):
    lh, config = lake
    files = _deliver(lh, DAY1)
    scan = scan_json_files(spark, config.get("tf_events"), contract_schema(spark, config.get("tf_events")), files)
    assert scan.fast == frozenset(files) and scan.lines == dict(zip(files, [3, 3], strict=True))
    assert sum(scan.broken_bytes.values()) == len(BROKEN[0]) + 2 * len(BROKEN[1])
    with caplog.at_level(logging.INFO, logger="cdp_lib.bronze.ingest"):
        summary = ingest_sources(spark, lh, config, run_id="fast-1")
    assert "2 by the JSON reader of 2 files" in caplog.text and "broken lines kept from pass 1" in caplog.text
    assert (summary["tf_events"]["rows"], summary["tf_events"]["quarantined"]) == (3, 3)
    _check_day(spark, lh, config, files, summary)


def test_broken_lines_over_the_kept_bytes_are_found_again_by_hash(spark, lake, caplog, monkeypatch):
    import cdp_lib.bronze.ingest as ingest

    monkeypatch.setattr(ingest, "COLLECT_MAX_BYTES", len(BROKEN[0]))  # fewer than the broken lines' bytes
    lh, config = lake
    # New bytes (same bytes would be a re-delivery): the ids of day 1 with another prefix.
    files = _deliver(lh, {rel.replace("2026-01-01", "2026-01-05"): [line.replace('":"m', '":"k') for line in lines]
                          for rel, lines in DAY1.items()})
    with caplog.at_level(logging.INFO, logger="cdp_lib.bronze.ingest"):
        summary = ingest_sources(spark, lh, config, run_id="fast-1b")
    assert "2 by the JSON reader of 2 files" in caplog.text and "broken lines by hash" in caplog.text
    assert (summary["tf_events"]["rows"], summary["tf_events"]["quarantined"]) == (3, 3)
    _check_day(spark, lh, config, files, summary)


def test_other_bad_rows_reparse_whole_files_and_drift_or_arrays_take_the_text_parser(spark, lake, caplog):
    lh, config = lake
    files = _deliver(lh, DAY2)
    source = config.get("tf_events")
    scan = scan_json_files(spark, source, contract_schema(spark, source), files)
    assert scan.fast == frozenset(f for f, rel in zip(files, DAY2, strict=True) if rel in DAY2_FAST)
    with caplog.at_level(logging.INFO, logger="cdp_lib.bronze.ingest"):
        summary = ingest_sources(spark, lh, config, run_id="fast-2")
    assert "1 by the JSON reader of 3 files" in caplog.text and "broken lines" not in caplog.text
    # m6, m10, m12 good, m9 rescued; m7 (type), u8 (required), the broken line and the array quarantined.
    assert (summary["tf_events"]["rows"], summary["tf_events"]["quarantined"]) == (4, 4)
    _check_day(spark, lh, config, files, summary)
    rescued = _batch(lh, "tf_events", summary["tf_events"]["batch_id"], ["messageId", "_rescued"]).where(
        "_rescued is not null").collect()
    assert [tuple(r) for r in rescued] == [("m9", '{"extra":"{\\"x\\":1}"}')]


def test_a_lost_file_log_is_an_error_not_a_silent_skip(spark, settings, tmp_path):
    # Delta would skip the append of batch 0 again (its txn version is in bronze): say so, never wait.
    lh = private_lakehouse(spark, settings, tmp_path)
    config = sources(EVENTS)
    _deliver(lh, {"events/2026-01-01/events-0001.jsonl": [GOOD[0], BROKEN[0]]})
    ingest_sources(spark, lh, config, run_id="lost-1")
    version = lh.version("bronze", "tf_events")
    shutil.rmtree(lh.path("ops", "bronze_file_log"))
    with pytest.raises(RuntimeError, match="already holds batch 0"):
        ingest_sources(spark, lh, config, run_id="lost-2")
    assert lh.version("bronze", "tf_events") == version


def test_per_file_counts_read_back_when_a_batch_has_many_files(spark, settings, tmp_path, monkeypatch):
    # Above PER_FILE_COUNTED files the counts come from the written tables: same file log.
    import cdp_lib.bronze.ingest as ingest

    monkeypatch.setattr(ingest, "PER_FILE_COUNTED", 1)
    lh = private_lakehouse(spark, settings, tmp_path)
    config = sources(EVENTS)
    files = _deliver(lh, DAY2)
    summary = ingest_sources(spark, lh, config, run_id="many-1")
    assert (summary["tf_events"]["rows"], summary["tf_events"]["quarantined"]) == (4, 4)
    _check_day(spark, lh, config, files, summary)


def test_nan_invalid_utf8_and_a_space_in_the_name_agree_with_the_text_parser(spark, settings, tmp_path):
    # NaN is JSON to Spark's reader but not to the key scan; bytes that are not UTF-8 fail the
    # reader but not the text parser: both must land where the text parser puts them, once.
    from cdp_lib.bronze.filelog import spark_path

    lh = private_lakehouse(spark, settings, tmp_path)
    config = sources(EVENTS)
    landing = Path(lh.settings.lakehouse.landing)
    nan_file = write_text(landing, "events/2026-01-03/events-0001 nan.jsonl", "\n".join(
        [GOOD[0], '{"messageId":"n1","traits":{"x":NaN},"n":1}', BROKEN[0]]) + "\n")
    bad_bytes = landing / "events/2026-01-03/events-0002.jsonl"
    bad_bytes.write_bytes(GOOD[2].encode() + b'\n{"messageId":"u1","userId":"Caf\xe9"}\n')
    files = [uri(nan_file), uri(bad_bytes)]
    source = config.get("tf_events")
    scan = scan_json_files(spark, source, contract_schema(spark, source), files)
    assert scan.fast == frozenset({spark_path(spark, files[0])})
    out = ingest_sources(spark, lh, config, run_id="odd-1")["tf_events"]
    good, bad = _expected(spark, source, files)
    assert (out["rows"], out["quarantined"]) == (good.count(), bad.count()) == (3, 2)
    assert_df_equality(_batch(lh, "tf_events", out["batch_id"], ["messageId", "userId"]),
                       good.select("messageId", "userId"), ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(_batch(lh, "tf_events_quarantine", out["batch_id"], bad.columns), bad,
                       ignore_row_order=True, ignore_nullable=True)
    per_file = {(r.file_path, r.rows, r.quarantined) for r in lh.read("ops", "bronze_file_log").where(
        (F.col("status") == "committed") & (F.col("batch_id") == out["batch_id"])).collect()}
    assert per_file == {(files[0], 1, 2), (files[1], 2, 0)}


def test_options_that_split_decode_or_relax_lines_keep_a_source_off_the_json_reader():
    from cdp_lib.bronze.readers import json_reader_allowed

    assert json_reader_allowed(sources(EVENTS).get("tf_events"))
    # Also leniency the key scan does not share: a line with a comment would be good to the reader only.
    for options in ({"encoding": "ISO-8859-1"}, {"multiLine": True}, {"lineSep": "\r"}, {"allowComments": True},
                    {"allowSingleQuotes": True}):
        assert not json_reader_allowed(sources({**EVENTS, "options": options}).get("tf_events"))
    assert not json_reader_allowed(sources({**EVENTS, "format": "csv"}).get("tf_events"))
