"""``cdp generate``: write a sample landing zone and its ground truth."""

from __future__ import annotations

import argparse

from cdp_lib.cli import Context, command

__all__: list[str] = []


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--people", type=int, default=None, help="number of people (default: conf/generate.yaml)")
    p.add_argument("--seed", type=int, default=42, help="random seed; the same seed gives the same data")
    p.add_argument("--out", default=None, help="landing folder (default: lakehouse.landing from the environment)")
    p.add_argument("--days", type=int, default=None, help="incremental days after day 0 (default: conf/generate.yaml)")
    p.add_argument("--truth", default=None, help="ground-truth folder (default: truth/ next to --out)")
    p.add_argument("--overwrite", action="store_true", help="replace data generated earlier in --out and --truth")


@command("generate", "write sample multi-source customer data and its ground truth", _arguments)
def _generate(ctx: Context, args: argparse.Namespace):
    from cdp_lib.generate import generate_sample_data, load_generate_config
    from cdp_lib.runlog import new_run_id, stage_run

    cfg = load_generate_config(ctx.settings.conf_dir)
    update = {k: v for k, v in (("people", args.people), ("days", args.days)) if v is not None}
    if update:
        cfg = cfg.model_validate({**cfg.model_dump(), **update})
    out = args.out or ctx.settings.lakehouse.landing
    run_id = getattr(args, "run_id", None) or new_run_id()
    with stage_run(ctx.spark, ctx.lakehouse.path("ops", "run_log"), run_id, "generate") as run:
        result = generate_sample_data(ctx.spark, cfg, args.seed, out, args.truth, overwrite=args.overwrite)
        run.rows_in = cfg.people
        run.details = {"seed": args.seed, "days": cfg.days, "files": result.files,
                       "redelivered": len(result.redelivered)}
    return {"run_id": run_id, **result.as_dict()}
