"""spark-submit entry point: write sample landing data and its ground truth (cdp generate)."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
