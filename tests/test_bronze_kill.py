"""Kill -9 a real ``cdp ingest`` subprocess at random points, twice (new files land in between),
then re-run the ingest: bronze, quarantine and the file log must equal those of one clean run."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from chispa import assert_df_equality

from cdp_lib.bronze import ingest_sources, load_sources
from tests.bronze_fixtures import write_text
from tests.silver_fixtures import lakehouse_at

PROJECT = Path(__file__).resolve().parent.parent
SOURCES = {"sources": [
    {"name": "tk_contacts", "format": "csv", "path": "crm/*/contacts_*.csv", "entity": "contacts",
     "options": {"header": True},
     "contract": [{"name": "contact_id", "type": "string", "nullable": False}, {"name": "email", "type": "string"},
                  {"name": "updated_at", "type": "timestamp"}]},
    {"name": "tk_events", "format": "jsonl", "path": "events/*/events-*.jsonl", "entity": "events",
     "contract": [{"name": "messageId", "type": "string", "nullable": False}, {"name": "n", "type": "int"}]},
]}


def _conf_dir(root: Path) -> Path:
    """The shipped conf with test-sized Spark settings and the sources above."""
    conf = root / "conf"
    (conf / "env").mkdir(parents=True)
    base = yaml.safe_load((PROJECT / "conf" / "base.yaml").read_text())
    base["spark"]["conf"].update({
        "spark.ui.enabled": False,
        "spark.databricks.delta.snapshotPartitions": 1,  # tiny Delta logs: 50 tasks per log read is pure overhead
    })
    base["spark"]["shuffle_partitions"] = 2
    (conf / "base.yaml").write_text(yaml.safe_dump(base))
    (conf / "env" / "local.yaml").write_text(yaml.safe_dump({"spark": {"master": "local[2]", "driver_memory": "1g"}}))
    (conf / "sources.yaml").write_text(yaml.safe_dump(SOURCES))
    return conf


def _deliver(spark, landing: Path, day: int) -> None:
    d = f"2026-01-0{day}"
    write_text(landing, f"crm/{d}/contacts_delta_{d}.csv", "contact_id,email,updated_at\n" + "".join(
        f"C{day}{i:03d},p{i}@x.com,{d}T10:00:00Z\n" for i in range(30)) + "bad,line,with,extra\n")
    for part in range(2):
        write_text(landing, f"events/{d}/events-{part:04d}.jsonl", "".join(
            f'{{"messageId":"m{day}-{part}-{i}","n":{i}}}\n' for i in range(20)) + "{oops\n")


def _run_and_kill(conf: Path, env: dict, log: Path, delay: float) -> None:
    """Start ``cdp ingest``; once it has started its first source, SIGKILL it after ``delay`` seconds."""
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "cdp_lib.cli", "ingest", "--conf-dir", str(conf)],
                                cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    deadline = time.time() + 90
    while "bronze/tk_" not in log.read_text() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the Python driver and its JVM
    proc.wait()


def test_kill_and_rerun_equals_one_clean_run(spark, settings, tmp_path):
    rng = random.Random(os.environ.get("CDP_KILL_SEED"))
    conf = _conf_dir(tmp_path)
    landing = tmp_path / "landing"
    killed = tmp_path / "killed"
    env = {**os.environ, "CDP_LAKEHOUSE": str(killed), "CDP_LANDING": str(landing), "PYTHONPATH": str(PROJECT)}
    _deliver(spark, landing, 1)
    delays = []
    for attempt in range(2):
        delays.append(round(rng.uniform(0.0, 6.0), 2))
        _run_and_kill(conf, env, tmp_path / f"kill{attempt}.log", delays[-1])
        if attempt == 0:
            _deliver(spark, landing, 2)  # new files arrive while a batch may be half done
    # The re-run: what `cdp ingest` runs (load conf/sources.yaml, ingest_sources), in this session's
    # JVM instead of a third cold one; the killed runs' leftovers are all on disk.
    after = lakehouse_at(spark, settings, killed, landing)
    ingest_sources(spark, after, load_sources(conf), run_id="rerun")
    clean = lakehouse_at(spark, settings, tmp_path / "clean" / "lake", landing)
    ingest_sources(spark, clean, load_sources(conf), run_id="clean")

    for name in ("tk_contacts", "tk_events"):
        keep = [c for c in clean.read("bronze", name).columns if c not in ("_ingested_at", "_batch_id")]
        assert_df_equality(after.read("bronze", name).select(*keep), clean.read("bronze", name).select(*keep),
                           ignore_row_order=True, ignore_nullable=True), (name, delays)
        qcols = ["raw", "reason", "_source_file"]
        assert_df_equality(after.read("bronze", f"{name}_quarantine").select(*qcols),
                           clean.read("bronze", f"{name}_quarantine").select(*qcols),
                           ignore_row_order=True, ignore_nullable=True), (name, delays)
    logged = ["source", "file_path", "content_hash", "rows", "quarantined"]
    assert_df_equality(after.read("ops", "bronze_file_log").where("status = 'committed'").select(*logged),
                       clean.read("ops", "bronze_file_log").where("status = 'committed'").select(*logged),
                       ignore_row_order=True, ignore_nullable=True)
    shutil.rmtree(tmp_path, ignore_errors=True)
