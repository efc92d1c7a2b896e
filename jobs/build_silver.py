"""spark-submit entry point: build the silver entities (``cdp silver``)."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["silver", *sys.argv[1:]]))
