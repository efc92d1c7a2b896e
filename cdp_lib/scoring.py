"""Score an identity resolution against ground truth: pairwise and B-cubed precision/recall/F1.

Both metrics come from one small table of *cells*: how many items a predicted cluster
(``customer_id``) and a true cluster (``person_id``) share. With ``n`` = items in a cell,
``c`` = items of its customer and ``p`` = items of its person:

* pairwise: true positives = sum n(n-1)/2; predicted pairs = sum over customers c(c-1)/2;
  true pairs = sum over persons p(p-1)/2. No pair is ever materialised.
* B-cubed (Bagga & Baldwin 1998): precision = sum(n^2 / c) / N, recall = sum(n^2 / p) / N.

Items are identifiers (``id_type, id_value``) or records (``source, record_key``).
Excluded: truth rows with a null person_id (junk identifiers such as ``test@test.com``)
and keys owned by more than one person (a shared household phone): no answer is right
for them. A truth item the prediction does not map counts as a cluster of its own (it
was not linked to anything); predicted items absent from the truth are ignored and
counted. With no predicted pairs precision is 1.0; with no true pairs recall is 1.0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

__all__ = ["ClusterScores", "cluster_cells", "score_clusters", "score_identity_map", "score_records"]


@dataclass(frozen=True)
class ClusterScores:
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    items: int                 # truth items scored
    true_clusters: int
    predicted_clusters: int
    true_pairs: int
    predicted_pairs: int
    true_positive_pairs: int
    unmapped: int              # scored truth items missing from the prediction (singletons)
    excluded_junk: int         # truth keys with a null person_id
    excluded_ambiguous: int    # truth keys owned by several people
    unknown_predicted: int     # predicted keys not in the truth

    def as_dict(self) -> dict:
        return asdict(self)


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _truth_keys(truth: DataFrame, keys: list[str]) -> DataFrame:
    """One row per key: ``person`` (null when junk), ``owners`` (distinct non-null persons)."""
    return truth.groupBy(*keys).agg(
        F.min("person_id").alias("person"),
        F.countDistinct("person_id").alias("owners"),
        F.max(F.col("person_id").isNull().cast("int")).alias("junk"),
    )


def cluster_cells(truth: DataFrame, predicted: DataFrame, keys: list[str]) -> DataFrame:
    """``customer, person, n``: items shared by each predicted and true cluster.

    ``customer`` is the predicted ``customer_id`` as a string, or ``unmapped:<key>`` for a
    truth item the prediction does not contain.
    """
    t = _truth_keys(truth, keys).where((F.col("junk") == 0) & (F.col("owners") == 1)).select(*keys, "person")
    p = predicted.groupBy(*keys).agg(F.min(F.col("customer_id").cast("string")).alias("customer"))
    joined = t.join(p, keys, "left")
    customer = F.coalesce(F.col("customer"), F.concat(F.lit("unmapped:"), F.concat_ws("|", *keys)))
    return joined.groupBy(customer.alias("customer"), F.col("person")).agg(F.count(F.lit(1)).alias("n"))


def score_clusters(truth: DataFrame, predicted: DataFrame, keys: list[str]) -> ClusterScores:
    """Compare ``predicted`` (keys + ``customer_id``) with ``truth`` (keys + ``person_id``)."""
    cells = cluster_cells(truth, predicted, keys).cache()
    try:
        by_customer = cells.groupBy("customer").agg(F.sum("n").alias("c"))
        by_person = cells.groupBy("person").agg(F.sum("n").alias("p"))
        full = cells.join(by_customer, "customer").join(by_person, "person")
        pairs = lambda col: F.sum((F.col(col) * (F.col(col) - 1) / 2).cast("long"))  # noqa: E731
        cell_row = full.agg(
            F.sum("n").alias("items"),
            pairs("n").alias("tp"),
            F.sum(F.col("n") * F.col("n") / F.col("c")).alias("bp"),
            F.sum(F.col("n") * F.col("n") / F.col("p")).alias("br"),
            F.sum(F.col("customer").startswith("unmapped:").cast("long")).alias("unmapped"),
        ).first()
        cust_row = by_customer.agg(F.count(F.lit(1)).alias("k"), pairs("c").alias("pairs")).first()
        pers_row = by_person.agg(F.count(F.lit(1)).alias("k"), pairs("p").alias("pairs")).first()
    finally:
        cells.unpersist()
    tk = _truth_keys(truth, keys)
    excl = tk.agg(
        F.sum(F.col("junk")).alias("junk"),
        F.sum(((F.col("junk") == 0) & (F.col("owners") > 1)).cast("long")).alias("ambiguous"),
    ).first()
    unknown = predicted.select(*keys).distinct().join(tk.select(*keys), keys, "left_anti").count()

    items = int(cell_row["items"] or 0)
    tp = int(cell_row["tp"] or 0)
    pred_pairs, true_pairs = int(cust_row["pairs"] or 0), int(pers_row["pairs"] or 0)
    pp = 1.0 if pred_pairs == 0 else tp / pred_pairs
    pr = 1.0 if true_pairs == 0 else tp / true_pairs
    bp = 1.0 if items == 0 else float(cell_row["bp"]) / items
    br = 1.0 if items == 0 else float(cell_row["br"]) / items
    return ClusterScores(
        pairwise_precision=pp, pairwise_recall=pr, pairwise_f1=_f1(pp, pr),
        bcubed_precision=bp, bcubed_recall=br, bcubed_f1=_f1(bp, br),
        items=items, true_clusters=int(pers_row["k"]), predicted_clusters=int(cust_row["k"]),
        true_pairs=true_pairs, predicted_pairs=pred_pairs, true_positive_pairs=tp,
        unmapped=int(cell_row["unmapped"] or 0), excluded_junk=int(excl["junk"] or 0),
        excluded_ambiguous=int(excl["ambiguous"] or 0), unknown_predicted=int(unknown),
    )


def score_identity_map(truth_identifiers: DataFrame, identity_map: DataFrame) -> ClusterScores:
    """Score ``gold.identity_map`` (id_type, id_value, customer_id) against ``truth/identifiers``."""
    return score_clusters(truth_identifiers, identity_map.select("id_type", "id_value", "customer_id"),
                          ["id_type", "id_value"])


def score_records(truth_records: DataFrame, record_map: DataFrame) -> ClusterScores:
    """Score a (source, record_key, customer_id) mapping against ``truth/records``."""
    return score_clusters(truth_records, record_map.select("source", "record_key", "customer_id"),
                          ["source", "record_key"])
