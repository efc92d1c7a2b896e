"""The README's main command at toy scale: generate, day 0, incremental day 1, summary; then the
Customer 360 notebook executed against the lakehouse it built."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from cdp_lib.cli import Context
from cdp_lib.gold.config import load_gold_config
from cdp_lib.lakehouse import Lakehouse
from cdp_lib.pipeline.demo import run_demo

PROJECT = Path(__file__).resolve().parent.parent
STAGES = ["ingest", "silver", "identity", "gold", "segments", "export"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(spark, settings, tmp_path_factory, sample_landing):
    root = tmp_path_factory.mktemp("demo")
    staging, truth = sample_landing
    # where run_demo keeps its generated files: it then skips generating them again
    shutil.copytree(staging, root / "landing_generated")
    shutil.copytree(truth, root / "truth")
    lh_settings = settings.lakehouse.model_copy(
        update={"root": str(root / "lakehouse"), "landing": str(root / "landing"), "checkpoints": str(root / "_cp")}
    )
    ctx = Context(settings.model_copy(update={"lakehouse": lh_settings}))
    ctx.__dict__["spark"] = spark  # the suite's session (cached_property slot)
    ctx.__dict__["lakehouse"] = Lakehouse(spark, ctx.settings)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CDP_ACTIVATION_URI", str(root / "activation"))
        summary = run_demo(ctx)
    return ctx, root, summary


def test_demo_runs_every_stage_on_two_days(demo):
    ctx, _, summary = demo
    assert len(summary["runs"]) == 2
    for run in summary["runs"]:
        assert list(run["stage_seconds"]) == STAGES
    log = ctx.lakehouse.read("ops", "run_log").where(F.col("source").isNull())
    statuses = {(r.run_id, r.stage): r.status for r in log.collect()}
    assert len(statuses) == 12 and set(statuses.values()) == {"success"}


def test_second_day_is_incremental(demo):
    ctx, _, summary = demo
    day0, day1 = (r["run_id"] for r in summary["runs"])
    log = ctx.lakehouse.read("ops", "run_log").where(F.col("source").isNull() & (F.col("stage") == "ingest"))
    rows = {r.run_id: r.rows_out for r in log.collect()}
    # day 1 ingests only the newly delivered files, not the day-0 files again
    assert 0 < rows[day1] < rows[day0]


def test_second_day_recomputes_only_what_changed(demo):
    ctx, _, summary = demo
    day1 = summary["runs"][1]["run_id"]
    log = ctx.lakehouse.read("ops", "run_log").where(
        F.col("source").isNull() & (F.col("run_id") == day1) & F.col("stage").isin("identity", "gold"))
    details = {r.stage: json.loads(r.details) for r in log.collect()}
    # gold.identity_map is merged, not overwritten, so gold sees only the customers whose
    # identifiers or data changed, not all of them (whether it then recomputes only those or, past
    # recompute_all_share, every profile, is a matter of cost: both give the same table)
    customers = ctx.lakehouse.read("gold", "customer_profile").count()
    touched = details["gold"]["customers_touched"]
    assert 0 < touched < customers
    share = load_gold_config(ctx.settings.conf_dir).recompute_all_share
    assert details["gold"]["mode"] == ("incremental" if touched <= share * customers else "full")


def test_summary_shows_the_whole_cdp(demo):
    _, root, summary = demo
    tables = summary["tables"]
    for t in ("bronze.crm_contacts", "silver.contacts", "silver.events", "gold.identity_map",
              "gold.customer_profile", "gold.segment_membership"):
        assert tables.get(t, 0) > 0, t
    assert 0 < summary["customers"] < summary["identifiers"]
    assert summary["segment_sizes"] and all(n > 0 for n in summary["segment_sizes"].values())
    assert summary["drops_written"] > 0
    assert any((root / "activation").rglob("manifest.json"))
    acc = summary["identity_accuracy"]
    assert acc["pairwise_precision"] > 0.9 and acc["pairwise_recall"] > 0.5


def test_customer_360_notebook_executes(demo):
    import nbformat
    from nbclient import NotebookClient

    ctx, _, _ = demo
    nb = nbformat.read(PROJECT / "notebooks" / "01_customer_360.ipynb", as_version=4)
    env = {"CDP_ENV": "local", "CDP_LAKEHOUSE": ctx.settings.lakehouse.root, "CDP_CONF_DIR": str(PROJECT / "conf")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(PROJECT)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "gold.customer_profile" in text and "customer_id" in text and " -- " in text  # a merge chain
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 2  # cluster sizes, segment sizes


def test_maintenance_frees_what_no_reader_needs_and_the_next_run_recovers(demo, tmp_path, caplog):
    """`cdp maintain` at a 0-hour retention on a copy of the two-day lakehouse: every table keeps its rows,
    only the files its current version uses remain (but for the gold versions the incremental export's
    next drop needs), and a pipeline run afterwards succeeds: silver reads its bronze again, gold
    recomputes, the export cuts its drop against the held versions; nothing is duplicated or lost."""
    from urllib.parse import urlparse

    from cdp_lib.lakehouse import LAYERS
    from cdp_lib.maintenance import export_held_versions, maintain_lakehouse
    from cdp_lib.pipeline.cli import run_with_checks

    ctx, root, _ = demo
    copy = tmp_path / "copy"
    for part in ("lakehouse", "landing", "activation"):
        shutil.copytree(root / part, copy / part)
    lh_settings = ctx.settings.lakehouse.model_copy(update={
        "root": str(copy / "lakehouse"), "landing": str(copy / "landing"), "checkpoints": str(copy / "_cp"),
        "retention_hours": 0, "compact_min_files": 4})
    mctx = Context(ctx.settings.model_copy(update={"lakehouse": lh_settings}))
    mctx.__dict__["spark"] = ctx.spark
    mctx.__dict__["lakehouse"] = lh = Lakehouse(ctx.spark, mctx.settings)
    names = [(layer, t) for layer in LAYERS for t in lh.tables(layer)]
    rows = {n: lh.read(*n).count() for n in names}
    identity_map = {(r.id_type, r.id_value): r.customer_id for r in lh.read("gold", "identity_map").collect()}

    silver = [n for n in names if n[0] == "silver"]
    # silver's own tables, row for row (the identity stage rewrites its graph tables in silver)
    entities = {n: lh.read(*n).localCheckpoint() for n in silver if not n[1].startswith("identity_")}
    stored = {n: lh.storage(*n) for n in silver}
    dry = maintain_lakehouse(lh, dry_run=True, layers=("silver",))
    assert dry["files_to_remove"] > 0 and {n: lh.storage(*n) for n in silver} == stored  # nothing removed

    held = export_held_versions(lh)
    assert set(held) == {"segment_membership", "customer_profile"}  # meta_ads is incremental
    summary = maintain_lakehouse(lh)
    assert summary["failed"] == {} and summary["tables"] == len(names)
    assert summary["files_removed"] > 0 and summary["bytes_freed"] > 0 and summary["compacted"]
    for layer, table in names:
        added = 2 if (layer, table) == ("ops", "run_log") else 0  # the two maintenance runs' own rows
        assert lh.read(layer, table).count() == rows[(layer, table)] + added, (layer, table)
        on_disk = {p for p in (copy / "lakehouse" / layer / table).rglob("*.parquet") if "_delta_log" not in p.parts}
        used = {Path(urlparse(f).path) for f in lh.read(layer, table).inputFiles()}
        assert used <= on_disk, (layer, table)  # nothing the current version uses was removed
        if not (layer == "gold" and table in held):
            assert on_disk == used, (layer, table)  # and nothing else is left
    for table, version in held.items():  # still readable: the export's next drop is cut against them
        assert lh.snapshot("gold", table, version).count() == rows[("gold", table)]

    with pytest.MonkeyPatch.context() as mp, caplog.at_level("WARNING"):
        mp.setenv("CDP_ACTIVATION_URI", str(copy / "activation"))
        result = run_with_checks(mctx)
    assert list(result["stages"]) == STAGES
    log = lh.read("ops", "run_log").where(F.col("source").isNull() & (F.col("run_id") == result["run_id"]))
    statuses = {r.stage: r.status for r in log.collect()}
    assert set(statuses.values()) <= {"success", "skipped"} and statuses["export"] == "success", statuses
    assert "every row of bronze." in caplog.text  # silver's watermarks were older than the retention
    gold = json.loads(log.where(F.col("stage") == "gold").first().details)
    assert gold["mode"] == "full"  # its change feeds were too
    # no row duplicated or lost: the same tables hold the same rows and customers keep their ids
    for layer, table in names:
        if layer in ("silver", "gold") and table not in ("identity_lineage", "segment_membership"):
            assert lh.read(layer, table).count() == rows[(layer, table)], (layer, table)
    for n, before in entities.items():  # not one silver row added, changed (_run_id included) or lost
        now = lh.read(*n)
        assert before.exceptAll(now).count() == 0 and now.exceptAll(before).count() == 0, n
    after = {(r.id_type, r.id_value): r.customer_id for r in lh.read("gold", "identity_map").collect()}
    assert after == identity_map
