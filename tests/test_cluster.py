"""spark-submit.sh against a real standalone master + worker on 127.0.0.1."""

import json
import os
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


@pytest.mark.cluster
def test_smoke_job_on_standalone_cluster(tmp_path):
    with standalone_cluster(tmp_path / "cluster") as master:
        env = {
            **os.environ,
            "CDP_SPARK_MASTER": master,
            "CDP_LAKEHOUSE": str(tmp_path / "lakehouse"),
            "CDP_LANDING": str(tmp_path / "landing"),
            "PYSPARK_PYTHON": python_without_cdp_lib(tmp_path),
        }
        env.pop("PYSPARK_GATEWAY_PORT", None)
        proc = subprocess.run(
            [str(PROJECT / "spark-submit.sh"), "smoke", "--env", "cluster"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-5000:]
        result = last_json(proc.stdout)
        # The application really ran on the standalone master, with executors on the worker.
        app_dirs = list((tmp_path / "cluster" / "work").glob("app-*/*/stderr"))
        assert app_dirs, "no executor ran on the standalone worker"
        assert result["rows"] == [[1, "a"], [2, "B"], [3, "c"]]
        assert result["version0_rows"] == 2
        assert result["components"] == [[1, 2, 3], [10, 11], [20], [30]]
        assert result["labels"] == ["customer-1", "customer-10", "customer-20", "customer-30"]
        assert (tmp_path / "lakehouse" / "ops" / "smoke" / "_delta_log").is_dir()


def test_spark_submit_rejects_unknown_job():
    proc = subprocess.run([str(PROJECT / "spark-submit.sh"), "no_such_job"], capture_output=True, text=True)
    assert proc.returncode == 2 and "no such job" in proc.stderr
