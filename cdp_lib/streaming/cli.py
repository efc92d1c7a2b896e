"""``cdp stream``: the real-time event stream (bronze events, live stitching, triggers)."""

from __future__ import annotations

import argparse

from cdp_lib.cli import Context, command

__all__: list[str] = []


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--available-now", action="store_true",
                   help="process every file landed (and Kafka record published) so far, fire what is due, and stop")
    p.add_argument("--timeout", type=float, default=None, help="stop after this many seconds (default: run forever)")


@command("stream", "stream events (files, Kafka) into bronze, stitch identities live, fire conf/triggers.yaml", _args)
def _stream(ctx: Context, args: argparse.Namespace):
    from cdp_lib.bronze.sources import load_sources
    from cdp_lib.streaming.config import load_triggers
    from cdp_lib.streaming.job import EventStream

    sources = load_sources(ctx.settings.conf_dir)
    config = load_triggers(ctx.settings.conf_dir, sources)
    job = EventStream(ctx.spark, ctx.lakehouse, config, sources, run_id=args.run_id)
    if args.available_now:
        job.run_available_now()
    else:
        job.run(args.timeout)
    return {"run_id": job.run_id, "checkpoint": job.checkpoint}
