"""The ``cdp`` command line. Each sub-command is also a thin job in jobs/.

Arguments carry run-time values only (``--env``, ``--conf-dir``, a run date, a size);
everything else is YAML under conf/. Sub-commands register themselves with
:func:`command`, so adding one is one decorated function.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cdp_lib.config import Settings, load_settings
from cdp_lib.errors import CdpError

__all__ = ["Context", "command", "main"]

log = logging.getLogger("cdp")


@dataclass
class Context:
    """What every command gets: validated settings and, on first use, a session."""

    settings: Settings
    extra_conf: dict[str, str] = field(default_factory=dict)

    @cached_property
    def spark(self):
        from cdp_lib.session import build_session

        return build_session(self.settings, self.extra_conf)

    @cached_property
    def lakehouse(self):
        from cdp_lib.lakehouse import Lakehouse

        lh = Lakehouse(self.spark, self.settings)
        lh.register_all()
        return lh


Handler = Callable[[Context, argparse.Namespace], object]
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register ``fn(ctx, args)`` as ``cdp <name>``; its return value is printed as JSON."""

    def register(fn: Handler) -> Handler:
        _COMMANDS[name] = (help, arguments, fn)
        return fn

    return register


@command("smoke", "write/MERGE/time-travel a Delta table and cluster a small graph")
def _smoke(ctx: Context, args: argparse.Namespace):
    from cdp_lib.smoke import run_smoke

    return run_smoke(ctx.spark, ctx.lakehouse)


def _load_commands() -> None:
    # Importing a module registers its commands; keep Spark imports lazy inside them.
    import importlib

    # One module per area registers that area's commands (areas own their CLI surface).
    for module in (
        "cdp_lib.generate.cli",
        "cdp_lib.bronze.cli",
        "cdp_lib.silver.cli",
        "cdp_lib.identity.cli",
        "cdp_lib.gold.cli",
        "cdp_lib.activation.cli",
        "cdp_lib.pipeline.cli",
        "cdp_lib.streaming.cli",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise


def build_parser() -> argparse.ArgumentParser:
    _load_commands()
    def common(defaults: bool) -> argparse.ArgumentParser:
        # Accepted before or after the command (jobs/ pass them after it).
        p = argparse.ArgumentParser(add_help=False)
        d = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
        p.add_argument("--env", default=d(None), help="environment in conf/env/ (default: $CDP_ENV or local)")
        p.add_argument("--conf-dir", type=Path, default=d(None), help="config directory (default: ./conf)")
        p.add_argument("-v", "--verbose", action="store_true", default=d(False), help="debug logging")
        p.add_argument("--run-id", default=d(None), help="run id to record in ops.run_log (default: a new one)")
        return p

    parser = argparse.ArgumentParser(
        prog="cdp", description="Customer data platform on Spark + Delta", parents=[common(True)]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, arguments, _) in sorted(_COMMANDS.items()):
        arguments(sub.add_parser(name, help=help_text, description=help_text, parents=[common(False)]))
    return parser


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        ctx = Context(load_settings(args.env, args.conf_dir))
        result = _COMMANDS[args.command][2](ctx, args)
    except CdpError as exc:
        log.error("%s", exc)
        print(f"cdp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    # `python -m cdp_lib.cli`: run the imported module's main, where the areas register their commands.
    from cdp_lib.cli import main as _main

    sys.exit(_main())
