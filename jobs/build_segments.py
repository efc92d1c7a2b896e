"""spark-submit entry point: `cdp segments`."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["segments", *sys.argv[1:]]))
