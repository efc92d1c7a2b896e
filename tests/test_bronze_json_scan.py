"""The key scan of JSON-lines files (``io.cdp.bronze.JsonLinesScan``, cdp_lib/jvm/src) against
its oracle: the same scan written in Spark SQL over ``spark.read.text`` (the code it replaced).
Files with every line ending, a BOM, blank and spaces-only lines, bytes that are not UTF-8, cut
off and non-object lines, drift, a compressed file and lines longer than the scan's buffer;
then the same files cut into pieces of a few bytes, so that pieces start inside lines, on line
starts and between the CR and the LF of a CRLF. Real Spark, files written here."""

from __future__ import annotations

import gzip
import random

import pytest
from pyspark.sql import functions as F

from cdp_lib.bronze.filelog import spark_path
from cdp_lib.bronze.readers import JsonScan, json_lines, scan_json_files
from cdp_lib.bronze.sources import contract_schema
from tests.bronze_fixtures import EVENTS_CONTRACT, sources, uri

SPEC = {"name": "scan_events", "format": "jsonl", "path": "events/*.jsonl", "entity": "events",
        "identifiers": {"userId": "user_id"}, "contract": EVENTS_CONTRACT}
SOURCE = sources(SPEC).get("scan_events")

_FILE = "_cdp_file"


def oracle(spark, files) -> JsonScan:
    """The scan in Spark SQL: per line the top-level keys, then one row per file."""
    schema = contract_schema(spark, SOURCE)
    known = F.array(*[F.lit(n) for n in schema.fieldNames()])
    per_line = json_lines(spark, SOURCE, files).select(
        _FILE, "value", F.json_object_keys("value").alias("keys")).select(
        _FILE,
        (F.coalesce(F.size(F.array_except("keys", known)), F.lit(0)) > 0).alias("drift"),
        (~F.col("value").startswith("{") | ~F.is_valid_utf8("value")).alias("odd"),
        F.when(F.col("keys").isNull(), F.xxhash64("value")).alias("broken"),
        F.when(F.col("keys").isNull(), F.octet_length("value")).alias("broken_bytes"))
    rows = per_line.groupBy(_FILE).agg(
        F.count(F.lit(1)).alias("lines"), F.count_if("drift").alias("drift"), F.count_if("odd").alias("odd"),
        F.collect_list("broken").alias("broken"), F.sum("broken_bytes").alias("broken_bytes")).collect()
    return JsonScan(
        lines={r[_FILE]: r["lines"] for r in rows},
        fast=frozenset(r[_FILE] for r in rows if r["drift"] == 0 and r["odd"] == 0),
        broken={r[_FILE]: sorted(r["broken"]) for r in rows},
        broken_bytes={r[_FILE]: r["broken_bytes"] or 0 for r in rows},
    )


def _sorted(scan: JsonScan) -> JsonScan:
    return JsonScan(scan.lines, scan.fast, {f: sorted(h) for f, h in scan.broken.items()}, scan.broken_bytes)


GOOD = b'{"messageId":"m1","userId":"u1","traits":{"email":"a@x.com","zzz":1},"n":1}'
LINES = [
    GOOD,
    b'{"messageId":"m2","extra":{"x":1}}',            # drift
    b'{"messageId":"m3","userId":"u3","traits":{"email":"b@x',  # cut off
    b"",                                                # blank
    b"   ",                                             # spaces only: blank
    b"\t",                                              # a tab is not trimmed: a broken record
    b'  {"messageId":"m4"}',                            # not '{' first: odd
    b'[{"messageId":"m5"}]',                            # an array: broken and odd
    b"{'messageId':'m6'}",                              # single quotes: keys to json_object_keys
    b'{"messageId":"Caf\xe9"}',                         # not UTF-8: odd
    b'{"messageId":"m7","n":NaN}',
    '{"messageId":"m8 \u00e9\u4e2d\U0001f600","userId":"u8"}'.encode(),
    b'{"messageId":"m9"} trailing',
    b'{"m\x00":"zero bytes"}',
    b"{}",
    b"{",
    b'{"messageId":"m10"',
    b"not json at all",
    b'\xef\xbb\xbf{"messageId":"m11"}',                # a BOM inside a file (files concatenated)
]


def _body(lines: list[bytes], ends: list[bytes]) -> bytes:
    return b"".join(line + ends[i % len(ends)] for i, line in enumerate(lines))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("json_scan")
    rnd = random.Random(7)
    mixed = [rnd.choice(LINES) for _ in range(400)]
    content = {
        "lf.jsonl": _body(LINES, [b"\n"]),
        "bom crlf.jsonl": b"\xef\xbb\xbf" + _body(LINES, [b"\r\n"]),
        "cr.jsonl": _body(LINES, [b"\r"]),
        "no final newline.jsonl": _body(LINES, [b"\n"]) + GOOD,
        "empty.jsonl": b"",
        "blank only.jsonl": b"\n  \n\r\n",
        "clean.jsonl": _body([GOOD] * 50, [b"\n"]),
        "mixed ends.jsonl": _body(mixed, [b"\n", b"\r\n", b"\r", b"\r\n\r\n", b"\n\r"]),
        "mixed short.jsonl": _body(mixed[:40], [b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"\n\r"]),
        # Longer than the scan's 1 MiB buffer, so a line is read across refills.
        # CRLF and CR where the scan's buffer is refilled (a line of 2^20 - 1 bytes first).
        "refill.jsonl": b"".join([b'{"messageId":"', b"r" * ((1 << 20) - 17), b'"}\r\n', GOOD, b"\r",
                                  b"{", b" " * ((1 << 20) - 5 - len(GOOD)), b"}\r", GOOD, b"\r\n", GOOD]),
        "long lines.jsonl": _body([b'{"messageId":"' + b"x" * (3 << 19) + b'"}', GOOD,
                                   b'{"messageId":"' + b"y" * (1 << 20) + b'",' + b"z" * 5000], [b"\n"]),
    }
    paths = []
    for name, data in content.items():
        (root / name).write_bytes(data)
        paths.append(uri(root / name))
    gz = root / "compressed.jsonl.gz"
    gz.write_bytes(gzip.compress(_body(LINES, [b"\r\n"])))
    (root / "empty.jsonl.gz").write_bytes(b"")  # no bytes at all, not even a gzip header
    paths += [uri(gz), uri(root / "empty.jsonl.gz")]
    return paths


def test_the_scan_gives_what_spark_sql_gives_on_every_kind_of_line(spark, files):
    schema = contract_schema(spark, SOURCE)
    expected = oracle(spark, files)
    got = _sorted(scan_json_files(spark, SOURCE, schema, files))
    assert got == expected
    # The cases are there: every kind of file and line is in the oracle's answer.
    name = {f.rsplit("/", 1)[1]: spark_path(spark, f) for f in files}
    assert expected.fast == {name[n] for n in ("clean.jsonl", "long lines.jsonl", "refill.jsonl")}  # broken is not odd
    assert name["empty.jsonl"] not in expected.lines and name["blank only.jsonl"] not in expected.lines
    assert expected.lines[name["compressed.jsonl.gz"]] == expected.lines[name["lf.jsonl"]] == len(LINES) - 2
    assert expected.lines[name["no final newline.jsonl"]] == len(LINES) - 1
    assert len(expected.broken[name["lf.jsonl"]]) == 8
    assert expected.lines[name["refill.jsonl"]] == 5
    assert len(expected.broken[name["long lines.jsonl"]]) == 1


# Pieces of 1 and 3 bytes start at every offset of every line; larger ones on the big files.
@pytest.mark.parametrize("piece", [1, 3, 64, 4096, 1 << 19])
def test_pieces_that_start_anywhere_in_a_line_give_the_same_scan(spark, files, piece):
    schema = contract_schema(spark, SOURCE)
    expected = oracle(spark, files)
    before = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(piece))
    try:
        big = ("long", "refill") if piece < 4096 else ()  # a piece inside a long line reads the rest of it
        big += ("mixed ends", "clean") if piece < 64 else ()
        small = [f for f in files if not any(b in f for b in big)]
        got = _sorted(scan_json_files(spark, SOURCE, schema, small))
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", before)
    keep = {spark_path(spark, f) for f in small}
    assert got == JsonScan({f: n for f, n in expected.lines.items() if f in keep}, expected.fast & keep,
                           {f: h for f, h in expected.broken.items() if f in keep},
                           {f: n for f, n in expected.broken_bytes.items() if f in keep})


def test_no_files_is_an_empty_scan_and_a_decoding_option_an_error(spark, files):
    assert scan_json_files(spark, SOURCE, contract_schema(spark, SOURCE), []) == JsonScan({}, frozenset(), {}, {})
    latin = sources({**SPEC, "options": {"encoding": "ISO-8859-1"}}).get("scan_events")
    with pytest.raises(ValueError, match="UTF-8 JSON lines only"):
        scan_json_files(spark, latin, contract_schema(spark, latin), files)
