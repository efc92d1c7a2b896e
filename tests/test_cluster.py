"""spark-submit.sh against a real standalone master + worker on 127.0.0.1."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.standalone import standalone_cluster

PROJECT = Path(__file__).resolve().parent.parent


def python_without_cdp_lib(directory: Path) -> str:
    """A Python for executors that sees site-packages but not the editable cdp_lib.

    ``-S`` skips site processing, so the editable-install hook (a .pth file) never runs;
    cdp_lib can then only come from the --py-files zip that spark-submit.sh ships.
    """
    wrapper = directory / "python-no-cdp"
    site = sysconfig.get_paths()["purelib"]
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}" exec {sys.executable} -S "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def last_json(stdout: str) -> dict:
    start = stdout.rindex("\n{") + 1 if "\n{" in stdout else stdout.index("{")
    return json.loads(stdout[start:])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    with standalone_cluster(root / "cluster") as master:
        yield master, root


@pytest.fixture(scope="module")
def small_cluster_conf(cluster) -> Path:
    """The shipped conf/ for a small cluster: few shuffle partitions, and Delta log replays in 2
    tasks instead of 50 (this lakehouse's tables are tiny; each replay would queue 50 tasks on 2 cores)."""
    conf = cluster[1] / "conf"
    shutil.copytree(PROJECT / "conf", conf)
    cluster_yaml = conf / "env" / "cluster.yaml"
    cluster_yaml.write_text(cluster_yaml.read_text().replace(
        "shuffle_partitions: 200",
        "shuffle_partitions: 4\n  conf:\n    spark.databricks.delta.snapshotPartitions: 2"))
    return conf


def submit(master: str, root: Path, job: str, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CDP_SPARK_MASTER": master,
        "CDP_LAKEHOUSE": str(root / "lakehouse"),
        "CDP_LANDING": str(root / "landing"),
        "PYSPARK_PYTHON": python_without_cdp_lib(root),
        **extra_env,
    }
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return subprocess.run(
        [str(PROJECT / "spark-submit.sh"), job, "--env", "cluster", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=1200,
    )


@pytest.mark.cluster
def test_smoke_job_on_standalone_cluster(cluster, small_cluster_conf):
    master, root = cluster
    proc = submit(master, root, "smoke", "--conf-dir", str(small_cluster_conf))
    assert proc.returncode == 0, proc.stderr[-5000:]
    result = last_json(proc.stdout)
    # The application really ran on the standalone master, with executors on the worker.
    app_dirs = list((root / "cluster" / "work").glob("app-*/*/stderr"))
    assert app_dirs, "no executor ran on the standalone worker"
    assert result["rows"] == [[1, "a"], [2, "B"], [3, "c"]]
    assert result["version0_rows"] == 2
    assert result["components"] == [[1, 2, 3], [10, 11], [20], [30]]
    assert result["labels"] == ["customer-1", "customer-10", "customer-20", "customer-30"]
    assert (root / "lakehouse" / "ops" / "smoke" / "_delta_log").is_dir()


@pytest.mark.cluster
@pytest.mark.cluster_pipeline
def test_whole_pipeline_on_standalone_cluster(cluster, small_cluster_conf, sample_landing):
    """jobs/run_pipeline.py through spark-submit.sh: every stage on the cluster's executors."""
    from cdp_lib.pipeline.demo import deliver_day

    master, root = cluster
    staging, _ = sample_landing
    assert deliver_day(staging, root / "landing", None) + deliver_day(staging, root / "landing", "2026-03-01") > 0
    apps_before = set((root / "cluster" / "work").glob("app-*"))
    proc = submit(master, root, "run_pipeline", "--conf-dir", str(small_cluster_conf),
                  CDP_ACTIVATION_URI=str(root / "activation"))
    assert proc.returncode == 0, proc.stderr[-5000:]
    result = last_json(proc.stdout)
    assert [s for s, v in result["stages"].items() if v["status"] == "success"] == [
        "ingest", "silver", "identity", "gold", "segments", "export"]
    assert set((root / "cluster" / "work").glob("app-*")) - apps_before, "the pipeline did not run on the cluster"
    for table in ("bronze/crm_contacts", "silver/contacts", "gold/identity_map", "gold/customer_profile",
                  "gold/segment_membership"):
        assert (root / "lakehouse" / table / "_delta_log").is_dir(), table
    assert any((root / "activation").rglob("manifest.json"))


def test_spark_submit_rejects_unknown_job():
    proc = subprocess.run([str(PROJECT / "spark-submit.sh"), "no_such_job"], capture_output=True, text=True)
    assert proc.returncode == 2 and "no such job" in proc.stderr
