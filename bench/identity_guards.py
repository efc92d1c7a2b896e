"""The effect of each identity guard and of the probabilistic tier, scored against the truth.

    .venv/bin/python bench/identity_guards.py <lakehouse root> <truth dir> [--conf-dir conf]

Needs a lakehouse whose silver tables are built (``cdp ingest`` + ``cdp silver``, or a demo
run) from generated data, and the generator's truth. For each variant of conf/identity.yaml
it builds the graph, clusters it and assigns ids exactly as ``cdp resolve`` does (nothing is
written), then scores the identity map with the pairwise and B-cubed metrics of
:mod:`cdp_lib.scoring`:

- ``shipped``: conf/identity.yaml as is;
- ``no blocklist``: blocklisted values and patterns link like any other identifier;
- ``no shared-identifier guard``: identifiers shared by many strong ids are not junk;
- ``no cluster limits``: no ``max_per_cluster`` repair (e.g. two birth dates in one cluster);
- ``no probabilistic tier``: deterministic edges only;
- ``no guards``: the first three together (the probabilistic tier stays as shipped).

The giant-component alarm is switched off in the variants so that their clusters can be
scored; the largest cluster is printed instead. Prints figures only, never identifier values.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdp_lib.config import load_settings  # noqa: E402
from cdp_lib.identity.config import Blocklist, IdentityConfig, load_identity_config  # noqa: E402
from cdp_lib.identity.resolve import _read_tables, build_graph, resolve_frames  # noqa: E402
from cdp_lib.lakehouse import Lakehouse  # noqa: E402
from cdp_lib.scoring import score_identity_map  # noqa: E402
from cdp_lib.session import build_session  # noqa: E402


def variants(cfg: IdentityConfig) -> dict[str, IdentityConfig]:
    off_alarm = cfg.giant_component.model_copy(update={"max_size": 10**9, "max_share": 1.0})
    base = cfg.model_copy(update={"giant_component": off_alarm})
    no_shared = cfg.shared_identifier.model_copy(update={"max_links": 10**9, "max_linked_values": {}})
    no_household = cfg.shared_identifier.model_copy(update={"max_linked_values": {}})
    return {
        "shipped": cfg,
        "no blocklist": base.model_copy(update={"blocklist": Blocklist()}),
        "no shared-identifier guard (neither part)": base.model_copy(update={"shared_identifier": no_shared}),
        "no household guard (max_linked_values)": base.model_copy(update={"shared_identifier": no_household}),
        "no cluster limits": base.model_copy(update={"max_per_cluster": {}}),
        "no probabilistic tier": base.model_copy(update={"probabilistic": None}),
        "no guards": base.model_copy(update={"blocklist": Blocklist(), "shared_identifier": no_shared,
                                             "max_per_cluster": {}}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("truth")
    ap.add_argument("--conf-dir", default=str(Path(__file__).resolve().parent.parent / "conf"))
    args = ap.parse_args()
    settings = load_settings("local", Path(args.conf_dir))
    settings = settings.model_copy(update={"lakehouse": settings.lakehouse.model_copy(update={"root": args.root})})
    spark = build_session(settings, {"spark.ui.enabled": "false"})
    spark.sparkContext.setCheckpointDir(str(Path(args.root) / "_checkpoints" / "identity_guards"))
    lh = Lakehouse(spark, settings)
    truth = spark.read.parquet(f"{args.truth}/identifiers")
    cfg = load_identity_config(Path(args.conf_dir))
    tables = {k: v.localCheckpoint() for k, v in _read_tables(lh, cfg).items()}
    out = {}
    for name, variant in variants(cfg).items():
        started = time.time()
        graph = build_graph(tables, variant)
        result, imap, _, _, figures = resolve_frames(graph, variant, None, "bench", datetime(2026, 1, 1))
        imap = imap.localCheckpoint()
        scores = score_identity_map(truth, imap)
        sizes = imap.groupBy("customer_id").count()
        edges = {r.status: r["count"] for r in result.edges.groupBy("status").count().collect()}
        out[name] = {
            **{k: round(v, 4) for k, v in scores.as_dict().items() if k.startswith(("pair", "bcubed"))},
            "customers": sizes.count(),
            "largest_cluster": sizes.agg(F.max("count")).first()[0],
            "edges": edges,
            "seconds": round(time.time() - started, 1),
        }
        print(name, json.dumps(out[name]), flush=True)
        spark.catalog.clearCache()
    print(json.dumps(out, indent=2))
    spark.stop()


if __name__ == "__main__":
    main()
