"""spark-submit entry point: resolve identities (silver -> silver.identity_edges, gold.identity_map)."""

import sys

from cdp_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["resolve", *sys.argv[1:]]))
