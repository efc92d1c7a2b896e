#!/usr/bin/env bash
# Submit jobs/<job>.py to the master of an environment, shipping cdp_lib and the pinned jars.
#
#   ./spark-submit.sh <job> [--env ENV] [--conf-dir DIR] [job args...]
#
# The master, jars and Spark settings come from conf/ (conf/env/<ENV>.yaml); --env and
# --conf-dir are passed on to the job too. CDP_PYTHON picks the driver/executor Python
# (default: the project's .venv), which must exist at the same path on every worker.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -lt 1 ] || [ "${1:0:1}" = "-" ]; then
  echo "usage: $0 <job> [--env ENV] [job args...]; jobs: $(cd "$here/jobs" && ls *.py | sed 's/\.py$//' | tr '\n' ' ')" >&2
  exit 2
fi
job=$1; shift
script="$here/jobs/$job.py"
[ -f "$script" ] || { echo "spark-submit.sh: no such job: $script" >&2; exit 2; }

env_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --env|--conf-dir) env_args+=("${args[$i]}" "${args[$((i + 1))]:-}") ;;
    --env=*|--conf-dir=*) env_args+=("${args[$i]}") ;;
  esac
done

py=${CDP_PYTHON:-$here/.venv/bin/python}
[ -x "$py" ] || { echo "spark-submit.sh: $py not found; run: make setup" >&2; exit 2; }
submit="$(dirname "$py")/spark-submit"

# cdp_lib travels to the executors as a zip on --py-files.
mkdir -p "$here/.stamps"
zip="$here/.stamps/cdp_lib.zip"
(cd "$here" && "$py" - "$zip" <<'PY'
import sys, zipfile, pathlib
with zipfile.ZipFile(sys.argv[1] + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
    for p in sorted(pathlib.Path("cdp_lib").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            z.write(p)
PY
) && mv "$zip.tmp" "$zip"

mapfile -t conf < <(cd "$here" && "$py" -m cdp_lib.submit "${env_args[@]}")
[ ${#conf[@]} -gt 0 ] || exit 2

export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$py}
export PYSPARK_DRIVER_PYTHON=${PYSPARK_DRIVER_PYTHON:-$py}
cd "$here"
exec "$submit" "${conf[@]}" --py-files "$zip" "$script" "$@"
