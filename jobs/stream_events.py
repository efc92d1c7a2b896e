"""spark-submit entry point: stream landed events into bronze and fire real-time triggers."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["stream", *sys.argv[1:]]))
