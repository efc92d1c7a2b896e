"""``cdp ingest [--source NAME]``: one bronze batch per source of conf/sources.yaml."""

from __future__ import annotations

import argparse

from cdp_lib.cli import Context, command


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", action="append", metavar="NAME",
                        help="ingest only this source (repeatable; default: every source)")


@command("ingest", "ingest new landing files / JDBC rows into bronze Delta tables", _arguments)
def _ingest(ctx: Context, args: argparse.Namespace):
    from cdp_lib.bronze.ingest import ingest_sources
    from cdp_lib.bronze.sources import load_sources

    config = load_sources(ctx.settings.conf_dir)
    if args.source:
        for name in args.source:
            config.get(name)  # an unknown name fails before Spark starts
    return ingest_sources(ctx.spark, ctx.lakehouse, config, args.source, getattr(args, "run_id", None))
