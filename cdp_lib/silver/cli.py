"""``cdp silver``: build the silver entities from bronze (incrementally by default)."""

from __future__ import annotations

import argparse

from cdp_lib.cli import Context, command

__all__: list[str] = []


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--entity", action="append", default=None,
                   help="entity in conf/silver.yaml to build (repeatable; default: all)")
    p.add_argument("--full-rebuild", action="store_true",
                   help="ignore watermarks: rebuild the entities from every bronze row")


@command("silver", "build silver entities from bronze: normalise, validate, de-duplicate (MERGE)", _arguments)
def _silver(ctx: Context, args: argparse.Namespace):
    from cdp_lib.silver.build import build_silver
    from cdp_lib.silver.spec import load_silver_config

    cfg = load_silver_config(ctx.settings.conf_dir)
    return build_silver(ctx.spark, ctx.lakehouse, cfg, entities=args.entity, full_rebuild=args.full_rebuild,
                        run_id=getattr(args, "run_id", None))
