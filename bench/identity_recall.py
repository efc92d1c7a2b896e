"""Where identity recall goes: score gold.identity_map against the generator's truth, the ceiling
of the evidence graph (its components with the truth as an oracle guard), and the identifier
types of every fragment a person was split into.

    .venv/bin/python bench/identity_recall.py <lakehouse root> <truth dir>

For example on the lakehouse of `cdp demo` (./lakehouse, ./truth). Prints figures only (no
identifier values).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyspark.sql import Window
from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdp_lib.config import load_settings  # noqa: E402
from cdp_lib.identity.components import connected_components  # noqa: E402
from cdp_lib.identity.graph import vertex_id  # noqa: E402
from cdp_lib.scoring import score_identity_map  # noqa: E402
from cdp_lib.session import build_session  # noqa: E402


def _short(scores) -> dict:
    return {k: round(v, 4) for k, v in scores.as_dict().items() if k.startswith(("pair", "bcubed"))}


def main(root: str, truth_dir: str) -> None:
    spark = build_session(load_settings("local"), {"spark.ui.enabled": "false"})
    spark.sparkContext.setCheckpointDir(str(Path(root) / "_checkpoints" / "identity_recall"))
    read = lambda p: spark.read.format("delta").load(f"{root}/{p}")  # noqa: E731
    truth = spark.read.parquet(f"{truth_dir}/identifiers")
    imap, edges = read("gold/identity_map"), read("silver/identity_edges")
    print("resolved:", _short(score_identity_map(truth, imap)))

    owner = truth.where("person_id is not null").groupBy("id_type", "id_value").agg(
        F.min("person_id").alias("p"), F.countDistinct("person_id").alias("owners"))
    labelled = edges.join(owner.toDF("id_type_a", "id_value_a", "pa", "na"), ["id_type_a", "id_value_a"], "left") \
        .join(owner.toDF("id_type_b", "id_value_b", "pb", "nb"), ["id_type_b", "id_value_b"], "left")
    verdict = F.when(F.col("pa").isNull() | F.col("pb").isNull(), "unknown") \
        .when((F.col("pa") == F.col("pb")) & (F.col("na") == 1) & (F.col("nb") == 1), "same person") \
        .otherwise("different people")
    print("edges by truth and status:")
    labelled.groupBy(verdict.alias("truth"), "status", "rule").count().orderBy("truth", "rule").show(60, False)

    vertices = imap.select("id_type", "id_value").withColumn("id", vertex_id("id_type", "id_value"))

    def clusters(e):
        ee = e.select(vertex_id("id_type_a", "id_value_a").alias("src"),
                      vertex_id("id_type_b", "id_value_b").alias("dst"))
        comp = connected_components(vertices.select("id"), ee, local_max_edges=5_000_000)
        cid = F.col("component").cast("string").alias("customer_id")
        return vertices.join(comp, "id").select("id_type", "id_value", cid)

    print("every edge, no guards:          ", _short(score_identity_map(truth, clusters(edges))))
    pure = labelled.where(verdict == "same person")
    print("same-person edges only (ceiling):", _short(score_identity_map(truth, clusters(pure))))

    joined = truth.where("person_id is not null").join(imap, ["id_type", "id_value"])
    parts = joined.groupBy("person_id", "customer_id").agg(
        F.count("*").alias("n"), F.concat_ws(",", F.sort_array(F.collect_set("id_type"))).alias("types"))
    ranked = parts.withColumn("rank", F.row_number().over(
        Window.partitionBy("person_id").orderBy(F.desc("n"), "customer_id")))
    print("fragments a person was split into (all but its largest cluster), by identifier types:")
    ranked.where("rank > 1").groupBy("types").count().orderBy(F.desc("count")).show(30, False)
    spark.stop()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
