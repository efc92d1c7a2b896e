"""The pinned runtime: jar cache checks, Delta MERGE + time travel, connected components."""

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdp_lib.errors import JarCacheError
from cdp_lib.identity.components import connected_components
from cdp_lib.runtime import cdp_jar_name, expected_jars, jar_paths, pom_jars


def test_pom_declares_the_runtime():
    names = expected_jars()
    assert "delta-spark_4.2_2.13-4.4.0.jar" in names
    assert "hadoop-aws-3.5.0.jar" in names
    assert any(n.startswith("postgresql-") for n in names)


def test_the_projects_own_java_is_a_jar_named_by_its_sources(spark, tmp_path):
    import zipfile

    from cdp_lib.jvm.build import build

    assert expected_jars() == (*pom_jars(), cdp_jar_name())
    assert jar_paths()[-1].endswith(cdp_jar_name())
    # Built again into an empty directory: the same name, the classes, loaded by this session.
    built = build(tmp_path)
    assert built.name == cdp_jar_name()
    with zipfile.ZipFile(built) as jar:
        assert "io/cdp/bronze/JsonLinesScan.class" in jar.namelist()
    scan = spark._jvm.io.cdp.bronze.JsonLinesScan
    assert scan.scan(spark._jsc, spark._jsc.hadoopConfiguration(), "", "", 1024) == ""
    with pytest.raises(Exception, match="pieceBytes must be positive"):
        scan.scan(spark._jsc, spark._jsc.hadoopConfiguration(), "", "", 0)
    # Built once: a second call finds it; another build's jar is left alone.
    (tmp_path / "cdp-jvm-000000000000.jar").write_bytes(b"PK")
    mtime = built.stat().st_mtime_ns
    assert build(tmp_path) == built and built.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.glob("*.jar")) == sorted([cdp_jar_name(), "cdp-jvm-000000000000.jar"])


def test_the_jar_name_follows_the_sources_and_pyspark(monkeypatch, tmp_path):
    import pyspark

    import cdp_lib.runtime as runtime

    name = cdp_jar_name()
    monkeypatch.setattr(pyspark, "__version__", "0.0.1")
    runtime.cdp_jar_name.cache_clear()
    try:
        assert cdp_jar_name() != name
        monkeypatch.undo()
        runtime.cdp_jar_name.cache_clear()
        assert cdp_jar_name() == name
        src = tmp_path / "src"
        (src / "a").mkdir(parents=True)
        (src / "a" / "A.java").write_text("class A {}")
        monkeypatch.setattr(runtime, "JAVA_SRC", src)
        runtime.cdp_jar_name.cache_clear()
        assert cdp_jar_name() != name
    finally:
        monkeypatch.undo()
        runtime.cdp_jar_name.cache_clear()


def test_incomplete_jar_cache_names_the_fix(tmp_path, monkeypatch):
    (tmp_path / expected_jars()[0]).write_bytes(b"PK")
    monkeypatch.setenv("CDP_JAR_DIR", str(tmp_path))
    with pytest.raises(JarCacheError) as err:
        jar_paths()
    assert "make jars" in str(err.value) and f"missing {len(expected_jars()) - 1} of" in str(err.value)


def test_hadoop_aws_matches_bundled_hadoop(spark):
    bundled = spark._jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    assert f"hadoop-aws-{bundled}.jar" in expected_jars()


def test_delta_merge_and_time_travel(spark, fresh_dir):
    path = str(fresh_dir / "t")
    spark.createDataFrame([(1, "a"), (2, "b")], "id long, v string").write.format("delta").save(path)
    from delta.tables import DeltaTable

    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(spark.createDataFrame([(2, "B"), (3, "c")], "id long, v string").alias("s"), "t.id = s.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )
    expected = spark.createDataFrame([(1, "a"), (2, "B"), (3, "c")], "id long, v string")
    assert_df_equality(spark.read.format("delta").load(path), expected, ignore_row_order=True)
    v0 = spark.read.format("delta").option("versionAsOf", 0).load(path)
    assert_df_equality(v0, spark.createDataFrame([(1, "a"), (2, "b")], "id long, v string"), ignore_row_order=True)


@pytest.mark.parametrize("local_max_edges", [0, 1000], ids=["distributed", "driver"])
def test_connected_components_known_graph(spark, local_max_edges):
    # Two chains, a cycle, a long path (diameter 30), a self loop, an isolated vertex, and
    # negative ids (vertex ids are xxhash64 values: half of them are negative).
    edges = [(1, 2), (2, 3), (3, 1), (10, 11), (11, 12), (5, 5), (-2**62, 7), (7, -3)]
    edges += [(100 + i, 101 + i) for i in range(30)]
    edges += [(300, 200), (200, 250)]  # edge order and direction must not matter
    e = spark.createDataFrame(edges, "src long, dst long")
    ids = sorted({v for pair in edges for v in pair} | {42})
    v = spark.createDataFrame([(i,) for i in ids], "id long")
    actual = connected_components(v, e, local_max_edges=local_max_edges)

    def comp(i: int) -> int:
        if i in (-2**62, 7, -3):
            return -2**62
        if i in (1, 2, 3):
            return 1
        if i in (10, 11, 12):
            return 10
        if 100 <= i <= 130:
            return 100
        if i in (200, 250, 300):
            return 200
        return i

    expected = spark.createDataFrame([(i, comp(i)) for i in ids], "id long, component long")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_connected_components_matches_union_find_on_random_graph(spark):
    import random

    rng = random.Random(7)
    n = 400
    edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(300)]
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    expected = {i: find(i) for i in range(n)}
    v = spark.range(n).select(F.col("id"))
    e = spark.createDataFrame(edges, "src long, dst long")
    distributed = connected_components(v, e).collect()
    # union-find with min-root gives the minimum id of each component, as the contract says
    assert {r.id: r.component for r in distributed} == expected
    on_driver = connected_components(v, e, local_max_edges=300).collect()
    assert {r.id: r.component for r in on_driver} == expected
    # one edge over the bound: the distributed rounds run and agree
    assert {r.id: r.component for r in connected_components(v, e, local_max_edges=5).collect()} == expected
