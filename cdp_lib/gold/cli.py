"""``cdp gold``: build or incrementally maintain gold.customer_profile."""

from __future__ import annotations

import argparse
from datetime import datetime

from cdp_lib.cli import Context, command


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", type=datetime.fromisoformat, default=None,
                   help="compute traits as of this UTC time (default: now)")
    p.add_argument("--full", action="store_true", help="rebuild every profile instead of only touched customers")


def run_gold(ctx: Context, run_id: str, as_of: datetime | None = None, full: bool = False) -> dict:
    from cdp_lib.gold.build import build_gold
    from cdp_lib.gold.config import load_gold_config, load_traits_config
    from cdp_lib.runlog import stage_run

    conf = ctx.settings.conf_dir
    cfg = load_gold_config(conf)
    traits = load_traits_config(cfg.inputs, conf)
    with stage_run(ctx.spark, ctx.lakehouse.path("ops", "run_log"), run_id, "gold", "customer_profile") as run:
        summary = build_gold(ctx.spark, ctx.lakehouse, cfg, traits, run_id, as_of=as_of, full=full)
        run.rows_out = summary["rows_out"]
        run.details = summary
    return summary


@command("gold", "build gold.customer_profile (survivorship, traits, consent, enrichment)", _args)
def _gold(ctx: Context, args: argparse.Namespace):
    from cdp_lib.runlog import new_run_id

    return run_gold(ctx, args.run_id or new_run_id(), args.as_of, args.full)
