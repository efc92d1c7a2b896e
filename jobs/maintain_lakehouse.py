"""spark-submit entry point: `cdp maintain` (retention, compaction, VACUUM of every lakehouse table)."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["maintain", *sys.argv[1:]]))
