"""Arguments for ``spark-submit`` derived from config (called by spark-submit.sh).

Prints one argument per line so the shell can read them into an array untouched.
"""

from __future__ import annotations

import argparse
import sys

from cdp_lib.config import load_settings
from cdp_lib.errors import CdpError
from cdp_lib.runtime import jar_paths
from cdp_lib.session import session_conf


def submit_args(env: str | None, conf_dir: str | None) -> list[str]:
    settings = load_settings(env, conf_dir)
    args = ["--master", settings.spark.master, "--name", settings.spark.app_name, "--jars", ",".join(jar_paths())]
    if settings.spark.driver_memory:
        args += ["--driver-memory", settings.spark.driver_memory]
    for key, value in session_conf(settings, include_jars=False).items():
        if key not in ("spark.app.name", "spark.driver.memory"):
            args += ["--conf", f"{key}={value}"]
    return args


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default=None)
    parser.add_argument("--conf-dir", default=None)
    ns = parser.parse_args()
    try:
        print("\n".join(submit_args(ns.env, ns.conf_dir)))
    except CdpError as exc:
        print(f"spark-submit.sh: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
