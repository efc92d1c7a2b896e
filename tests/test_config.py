"""Config loading: overlays, interpolation and errors that name file, key and problem."""

from pathlib import Path

import pytest

from cdp_lib.config import load_settings
from cdp_lib.errors import CdpError, ConfigError


def write_conf(root: Path, base: str, env: str, name: str = "local") -> Path:
    conf = root / "conf"
    (conf / "env").mkdir(parents=True)
    (conf / "base.yaml").write_text(base)
    (conf / "env" / f"{name}.yaml").write_text(env)
    return conf


BASE = "spark:\n  app_name: cdp\nlakehouse:\n  root: lakehouse\n  landing: /data/landing\n"


def test_overlay_and_relative_paths(tmp_path):
    conf = write_conf(tmp_path, BASE, "spark:\n  master: local[2]\n  shuffle_partitions: 3\n")
    s = load_settings("local", conf)
    assert s.spark.master == "local[2]"
    assert s.spark.shuffle_partitions == 3
    assert s.spark.app_name == "cdp"
    assert s.lakehouse.root == str((tmp_path / "lakehouse").resolve())
    assert s.lakehouse.landing == "/data/landing"
    assert s.lakehouse.checkpoint_root.endswith("lakehouse/_checkpoints")


def test_env_interpolation_with_default(tmp_path, monkeypatch):
    conf = write_conf(tmp_path, BASE, "lakehouse:\n  root: ${LH_ROOT:-s3a://bucket/lh}\n  landing: ${LANDING}\n")
    monkeypatch.setenv("LANDING", "hdfs://nn/landing")
    monkeypatch.delenv("LH_ROOT", raising=False)
    s = load_settings("local", conf)
    assert s.lakehouse.root == "s3a://bucket/lh"
    assert s.lakehouse.landing == "hdfs://nn/landing"


def test_missing_env_var_names_file_and_key(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    conf = write_conf(tmp_path, BASE, "spark:\n  master: ${NOPE_NOT_SET}\n")
    with pytest.raises(ConfigError) as err:
        load_settings("local", conf)
    assert "local.yaml" in str(err.value) and "spark.master" in str(err.value)
    assert "NOPE_NOT_SET" in str(err.value)


def test_typo_in_key_names_file_and_key(tmp_path):
    conf = write_conf(tmp_path, BASE, "spark:\n  shuffle_partitons: 3\n")
    with pytest.raises(ConfigError) as err:
        load_settings("local", conf)
    msg = str(err.value)
    assert "local.yaml" in msg and "spark.shuffle_partitons" in msg and "unknown key" in msg


def test_wrong_type_names_key(tmp_path):
    conf = write_conf(tmp_path, BASE, "spark:\n  shuffle_partitions: lots\n")
    with pytest.raises(ConfigError) as err:
        load_settings("local", conf)
    assert "spark.shuffle_partitions" in str(err.value) and "'lots'" in str(err.value)


def test_missing_required_key(tmp_path):
    conf = write_conf(tmp_path, "lakehouse:\n  root: x\n", "{}\n")
    with pytest.raises(ConfigError) as err:
        load_settings("local", conf)
    assert "lakehouse.landing" in str(err.value) and "required" in str(err.value)


def test_unknown_environment_lists_known(tmp_path):
    conf = write_conf(tmp_path, BASE, "{}\n")
    with pytest.raises(ConfigError) as err:
        load_settings("prod", conf)
    assert "unknown environment 'prod'" in str(err.value) and "local" in str(err.value)


def test_broken_yaml_is_a_config_error(tmp_path):
    conf = write_conf(tmp_path, BASE, "spark: [unclosed\n")
    with pytest.raises(CdpError, match="not valid YAML"):
        load_settings("local", conf)


def test_shipped_environments_load(monkeypatch):
    conf = Path(__file__).resolve().parent.parent / "conf"
    assert load_settings("local", conf).spark.master.startswith("local")
    monkeypatch.setenv("CDP_SPARK_MASTER", "spark://10.0.0.1:7077")
    monkeypatch.setenv("CDP_LAKEHOUSE", "s3a://lake/cdp")
    monkeypatch.setenv("CDP_LANDING", "s3a://lake/landing")
    cluster = load_settings("cluster", conf)
    assert cluster.spark.master == "spark://10.0.0.1:7077"
    assert cluster.lakehouse.root == "s3a://lake/cdp"
