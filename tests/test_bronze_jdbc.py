"""The JDBC source against a real PostgreSQL: incremental by updated_at, quarantine, drift."""

from __future__ import annotations

import shutil
from datetime import datetime

from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdp_lib.bronze import ingest_sources
from tests.bronze_fixtures import private_lakehouse, sources
from tests.postgres_fixtures import postgres  # noqa: F401 - fixture

SETUP = """
CREATE TABLE public.contacts (contact_id text, email text, updated_at timestamptz, score int, crm_note text);
INSERT INTO public.contacts VALUES
  ('C1', 'a@x.com', '2026-01-01 10:00:00+00', 5, NULL),
  ('C2', NULL,      '2026-01-01 11:00:00+00', NULL, 'vip'),
  (NULL, 'n@x.com', '2026-01-01 12:00:00+00', 1, NULL);
"""


def _source(pg):
    return {
        "name": "tj_crm_db", "format": "jdbc", "entity": "contacts",
        "jdbc": {"url": pg.jdbc_url, "table": "public.contacts", "watermark_column": "updated_at",
                 "user_env": "TJ_CRM_USER", "password_env": "TJ_CRM_PASSWORD"},
        "options": {"driver": "org.postgresql.Driver", "fetchsize": 1000},
        "identifiers": {"contact_id": "crm_id", "email": "email"},
        "contract": [
            {"name": "contact_id", "type": "string", "nullable": False},
            {"name": "email", "type": "string"},
            {"name": "updated_at", "type": "timestamp"},
            {"name": "score", "type": "int"},
        ],
    }


def test_jdbc_incremental_by_watermark(spark, settings, tmp_path, postgres, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TJ_CRM_USER", postgres.user)
    monkeypatch.setenv("TJ_CRM_PASSWORD", postgres.password)
    postgres.sql(SETUP)
    lh = private_lakehouse(spark, settings, tmp_path)
    config = sources(_source(postgres))

    first = ingest_sources(spark, lh, config, run_id="j1")["tj_crm_db"]
    assert (first["rows"], first["quarantined"]) == (2, 1)
    bronze = lh.read("bronze", "tj_crm_db")
    expected = spark.createDataFrame([
        ("C1", "a@x.com", datetime(2026, 1, 1, 10), 5, None),
        ("C2", None, datetime(2026, 1, 1, 11), None, '{"crm_note":"vip"}'),
    ], "contact_id string, email string, updated_at timestamp, score int, _rescued string")
    assert_df_equality(bronze.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True,
                       ignore_metadata=True)
    query = bronze.select("_source_query").distinct().collect()
    assert query == [("SELECT * FROM public.contacts t WHERE updated_at <= '2026-01-01 12:00:00+00'",)]
    q = lh.read("bronze", "tj_crm_db_quarantine").select("raw", "reason").collect()
    assert q == [('{"email":"n@x.com","updated_at":"2026-01-01T12:00:00.000Z","score":1}',
                  "contract: contact_id is required")]

    # Nothing changed: nothing read, bronze untouched.
    version = lh.version("bronze", "tj_crm_db")
    assert ingest_sources(spark, lh, config, run_id="j2")["tj_crm_db"]["rows"] == 0
    assert lh.version("bronze", "tj_crm_db") == version

    # An update moves C1's watermark; a new row arrives: exactly those two are read.
    postgres.sql("UPDATE public.contacts SET email = 'a2@x.com', updated_at = '2026-01-02 09:00:00+00' "
                 "WHERE contact_id = 'C1'; INSERT INTO public.contacts VALUES "
                 "('C3', 'c@x.com', '2026-01-02 10:00:00+00', 2, NULL)")
    third = ingest_sources(spark, lh, config, run_id="j3")["tj_crm_db"]
    assert (third["rows"], third["quarantined"]) == (2, 0)
    new = lh.read("bronze", "tj_crm_db").where(F.col("_batch_id") == third["batch_id"]).select("contact_id", "email")
    assert sorted(new.collect()) == [("C1", "a2@x.com"), ("C3", "c@x.com")]
    marks = lh.read("ops", "bronze_file_log").where("status = 'committed'").orderBy("batch_seq").select(
        "watermark_from", "watermark_to", "rows", "quarantined").collect()
    assert marks == [(None, "2026-01-01 12:00:00+00", 2, 1),
                     ("2026-01-01 12:00:00+00", "2026-01-02 10:00:00+00", 2, 0)]
    shutil.rmtree(tmp_path, ignore_errors=True)
