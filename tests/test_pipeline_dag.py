"""The Airflow DAG generated from conf/pipeline.yaml has one task per stage and the declared dependencies."""

import ast
import importlib.util
import sys

from cdp_lib.pipeline.airflow import render_dag
from cdp_lib.pipeline.config import load_pipeline_config


def parse_dag(source: str):
    """Tasks (task_id -> bash_command) and edges (upstream, downstream) read from the DAG's syntax tree."""
    tree = ast.parse(source)
    tasks, edges, names = {}, set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            if getattr(call.func, "id", None) == "BashOperator":
                kw = {k.arg: k.value for k in call.keywords}
                task_id = kw["task_id"].value
                names[node.targets[0].id] = task_id
                tasks[task_id] = ast.unparse(kw["bash_command"])
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.BinOp) and isinstance(node.value.op, ast.RShift):
            edges.add((node.value.left.id, node.value.right.id))
    return tasks, {(names[a], names[b]) for a, b in edges}


def test_dag_matches_pipeline_config():
    cfg = load_pipeline_config()
    source = render_dag(cfg, "cluster", "0 3 * * *")
    compile(source, "cdp_pipeline_dag.py", "exec")
    tasks, edges = parse_dag(source)
    assert list(tasks) == [s.name for s in cfg.ordered()]
    assert edges == {(d, s.name) for s in cfg.stages for d in s.depends_on}
    assert edges == {("ingest", "silver"), ("silver", "identity"), ("identity", "gold"), ("gold", "segments"),
                     ("segments", "export")}
    for stage in cfg.stages:
        assert f"./spark-submit.sh {stage.job} --env cluster --run-id" in tasks[stage.name]


def test_dag_loads_in_airflow(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    path = tmp_path / "cdp_pipeline_dag.py"
    path.write_text(render_dag(load_pipeline_config(), "local", "@daily"))
    spec = importlib.util.spec_from_file_location("cdp_pipeline_dag", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cdp_pipeline_dag"] = module
    spec.loader.exec_module(module)
    dag = module.dag
    assert set(dag.task_ids) == {"ingest", "silver", "identity", "gold", "segments", "export"}
    assert dag.get_task("gold").upstream_task_ids == {"identity"}
