"""Pairwise and B-cubed scores on tiny clusterings computed by hand."""

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from cdp_lib.scoring import cluster_cells, score_clusters, score_identity_map, score_records

TRUTH = T.StructType([T.StructField("id_type", T.StringType()), T.StructField("id_value", T.StringType()),
                      T.StructField("person_id", T.LongType())])
MAP = T.StructType([T.StructField("id_type", T.StringType()), T.StructField("id_value", T.StringType()),
                    T.StructField("customer_id", T.StringType())])


def test_pairwise_and_bcubed_on_a_split_and_a_merge(spark):
    # truth {a,b,c}=1 {d,e}=2; predicted {a,b}=C1 {c,d,e}=C2
    truth = spark.createDataFrame([("email", v, p) for v, p in
                                   [("a", 1), ("b", 1), ("c", 1), ("d", 2), ("e", 2)]], TRUTH)
    pred = spark.createDataFrame([("email", v, c) for v, c in
                                  [("a", "C1"), ("b", "C1"), ("c", "C2"), ("d", "C2"), ("e", "C2")]], MAP)
    s = score_identity_map(truth, pred)
    # true pairs 3+1=4, predicted pairs 1+3=4, true positives ab + de = 2
    assert (s.true_pairs, s.predicted_pairs, s.true_positive_pairs) == (4, 4, 2)
    assert s.pairwise_precision == pytest.approx(0.5)
    assert s.pairwise_recall == pytest.approx(0.5)
    assert s.pairwise_f1 == pytest.approx(0.5)
    # B-cubed precision: a 1, b 1, c 1/3, d 2/3, e 2/3 -> 11/15; recall: 2/3, 2/3, 1/3, 1, 1 -> 11/15
    assert s.bcubed_precision == pytest.approx(11 / 15)
    assert s.bcubed_recall == pytest.approx(11 / 15)
    assert s.bcubed_f1 == pytest.approx(11 / 15)
    assert (s.items, s.true_clusters, s.predicted_clusters, s.unmapped) == (5, 2, 2, 0)


def test_junk_ambiguous_unmapped_and_unknown(spark):
    truth = spark.createDataFrame([
        ("email", "x", 1), ("email", "y", 1), ("email", "z", 1),
        ("email", "test@test.com", None),               # junk: excluded
        ("phone", "+447700900001", 1), ("phone", "+447700900001", 2),  # household phone: ambiguous
    ], TRUTH)
    pred = spark.createDataFrame([
        ("email", "x", "C1"), ("email", "y", "C1"), ("email", "test@test.com", "C1"),
        ("phone", "+447700900001", "C1"), ("email", "not-in-truth", "C9"),
    ], MAP)  # z is not mapped at all: a singleton
    s = score_identity_map(truth, pred)
    # pairs: truth xy xz yz = 3; predicted xy = 1; tp = 1
    assert (s.true_pairs, s.predicted_pairs, s.true_positive_pairs) == (3, 1, 1)
    assert s.pairwise_precision == pytest.approx(1.0)
    assert s.pairwise_recall == pytest.approx(1 / 3)
    assert s.pairwise_f1 == pytest.approx(0.5)
    # B-cubed recall: x 2/3, y 2/3, z 1/3 -> 5/9; precision 1
    assert s.bcubed_precision == pytest.approx(1.0)
    assert s.bcubed_recall == pytest.approx(5 / 9)
    assert s.bcubed_f1 == pytest.approx(10 / 14)
    assert (s.excluded_junk, s.excluded_ambiguous, s.unmapped, s.unknown_predicted) == (1, 1, 1, 1)


def test_cells_frame(spark):
    truth = spark.createDataFrame([("email", "a", 1), ("email", "b", 1), ("email", "c", 2), ("email", "j", None)],
                                  TRUTH)
    pred = spark.createDataFrame([("email", "a", "C1"), ("email", "b", "C1"), ("email", "j", "C1")], MAP)
    expected = spark.createDataFrame(
        [("C1", 1, 2), ("unmapped:email|c", 2, 1)],
        T.StructType([T.StructField("customer", T.StringType()), T.StructField("person", T.LongType()),
                      T.StructField("n", T.LongType(), False)]),
    )
    assert_df_equality(cluster_cells(truth, pred, ["id_type", "id_value"]), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_no_pairs_anywhere_is_perfect_and_records_work(spark):
    schema = T.StructType([T.StructField("source", T.StringType()), T.StructField("record_key", T.StringType()),
                           T.StructField("person_id", T.LongType())])
    pschema = T.StructType([T.StructField("source", T.StringType()), T.StructField("record_key", T.StringType()),
                            T.StructField("customer_id", T.LongType())])
    truth = spark.createDataFrame([("crm", "k1", 1), ("crm", "k2", 2)], schema)
    pred = spark.createDataFrame([("crm", "k1", 10), ("crm", "k2", 20)], pschema)
    s = score_records(truth, pred)
    assert (s.pairwise_precision, s.pairwise_recall, s.bcubed_f1) == (1.0, 1.0, 1.0)
    merged = score_clusters(truth, spark.createDataFrame([("crm", "k1", 10), ("crm", "k2", 10)], pschema),
                            ["source", "record_key"])
    assert (merged.pairwise_precision, merged.pairwise_recall) == (0.0, 1.0)
    assert merged.bcubed_precision == pytest.approx(0.5)
