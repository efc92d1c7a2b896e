"""spark-submit entry point: ingest new landing files and JDBC rows into bronze (``cdp ingest``)."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
