"""spark-submit entry point: build gold.customer_profile."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["gold", *sys.argv[1:]]))
