"""spark-submit entry point: `cdp export`."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
