"""``cdp resolve`` and ``cdp explain``."""

from __future__ import annotations

import argparse

from cdp_lib.cli import Context, command

__all__: list[str] = []


def _resolve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--incremental", action="store_true",
                   help="re-cluster only the components touched by new edges (default: full recompute)")
    p.add_argument("--force", action="store_true",
                   help="resolve even when inputs, outputs, config and code are as after the last run")


@command("resolve", "resolve identities: edges, guards, clusters, stable customer ids", _resolve_args)
def _resolve(ctx: Context, args: argparse.Namespace):
    from cdp_lib.identity.config import load_identity_config
    from cdp_lib.identity.resolve import run_resolve

    cfg = load_identity_config(ctx.settings.conf_dir)
    return run_resolve(ctx.spark, ctx.lakehouse, cfg, incremental=args.incremental,
                       run_id=getattr(args, "run_id", None), force=args.force)


def _explain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id_type", help="identifier type, e.g. email")
    p.add_argument("value", help="identifier value (normalised form)")
    p.add_argument("--to", nargs=2, metavar=("ID_TYPE", "VALUE"), help="only the chain to this identifier")


@command("explain", "show a customer's identifiers and the chains of edges that joined them", _explain_args)
def _explain(ctx: Context, args: argparse.Namespace):
    from cdp_lib.identity.config import load_identity_config
    from cdp_lib.identity.explain import explain_identifier

    cfg = load_identity_config(ctx.settings.conf_dir)
    lh = ctx.lakehouse
    return explain_identifier(
        lh.read("gold", "identity_map"), lh.read("silver", "identity_edges"), args.id_type, args.value,
        to=tuple(args.to) if args.to else None, max_cluster=cfg.explain_max_cluster,
    )
