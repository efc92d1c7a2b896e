"""spark-submit entry point: run every stage of conf/pipeline.yaml in one session, then the checks."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
