"""Why is this identifier this customer? Shortest chains of edges inside one cluster.

Clusters are small, so the cluster's kept edges are collected and searched breadth-first on
the driver; ``max_cluster`` guards against collecting a huge one.
"""

from __future__ import annotations

from collections import deque

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_lib.errors import CdpError
from cdp_lib.identity.clustering import STATUS_KEPT

__all__ = ["IdentifierNotFound", "explain_identifier", "shortest_chain"]


class IdentifierNotFound(CdpError):
    """The identifier asked about is not in gold.identity_map."""


def shortest_chain(edges: list[dict], start: tuple[str, str], goal: tuple[str, str]) -> list[dict] | None:
    """BFS over undirected edges (dicts with id_type_a/id_value_a/id_type_b/id_value_b); None if unreachable."""
    adj: dict[tuple, list] = {}
    for e in sorted(edges, key=lambda e: (-e["priority"], e["rule"], e["source"], str(e["evidence"]))):
        a, b = (e["id_type_a"], e["id_value_a"]), (e["id_type_b"], e["id_value_b"])
        adj.setdefault(a, []).append((b, e))
        adj.setdefault(b, []).append((a, e))
    prev: dict[tuple, tuple] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for nxt, e in adj.get(node, []):
            if nxt not in prev:
                prev[nxt] = (node, e)
                queue.append(nxt)
    if goal not in prev:
        return None
    chain = []
    node = goal
    while prev[node] is not None:
        before, e = prev[node]
        chain.append({
            "from": {"id_type": before[0], "id_value": before[1]},
            "to": {"id_type": node[0], "id_value": node[1]},
            "rule": e["rule"], "source": e["source"], "evidence": e["evidence"],
            "seen_at": e["seen_at"], "score": e["score"],
        })
        node = before
    return list(reversed(chain))


def explain_identifier(
    identity_map: DataFrame,
    edges: DataFrame,
    id_type: str,
    id_value: str,
    to: tuple[str, str] | None = None,
    max_cluster: int = 5000,
) -> dict:
    """Customer id, all identifiers of the customer, and the chain(s) of edges linking them.

    Args:
        identity_map: gold.identity_map.
        edges: silver.identity_edges (only ``kept`` edges are used).
        to: one other identifier; by default a chain to every other identifier of the cluster.

    Returns:
        ``{"customer_id", "identifiers": [...], "chains": [{"to": ..., "edges": [...]}]}``.
    """
    hit = identity_map.where((F.col("id_type") == id_type) & (F.col("id_value") == id_value)).select(
        "customer_id"
    ).first()
    if hit is None:
        raise IdentifierNotFound(f"no {id_type} identifier with that value in gold.identity_map")
    cid = hit.customer_id
    members = identity_map.where(F.col("customer_id") == cid).select("id_type", "id_value")
    members = members.limit(max_cluster + 1).collect()
    if len(members) > max_cluster:
        raise CdpError(f"customer {cid} has more than {max_cluster} identifiers (explain_max_cluster)")
    members_df = identity_map.where(F.col("customer_id") == cid).select(
        F.col("id_type").alias("id_type_a"), F.col("id_value").alias("id_value_a")
    )
    cluster_edges = [
        r.asDict()
        for r in edges.where(F.col("status") == STATUS_KEPT).join(members_df, ["id_type_a", "id_value_a"]).collect()
    ]
    ids = sorted((r.id_type, r.id_value) for r in members)
    start = (id_type, id_value)
    goals = [to] if to else [x for x in ids if x != start]
    chains = []
    for goal in goals:
        chain = shortest_chain(cluster_edges, start, goal)
        chains.append({"to": {"id_type": goal[0], "id_value": goal[1]}, "edges": chain})
    return {
        "customer_id": cid,
        "identifiers": [{"id_type": t, "id_value": v} for t, v in ids],
        "chains": chains,
    }
