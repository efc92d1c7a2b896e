"""spark-submit entry point: prove Delta (write, MERGE, time travel) and clustering work."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["smoke", *sys.argv[1:]]))
