#!/bin/bash
# `roost kb add` of the same folder by two checkouts at once (so both meet the same load),
# each into a fresh home: wall and CPU seconds, and the report line.
#   benchmarks/kb_ingest_before_after.sh /tmp/main-checkout/src ./src docs
# (make the "before" checkout with `git worktree add --detach /tmp/main-checkout main`).
set -euo pipefail
before_src=$1 after_src=$2 folder=$(realpath "$3")
python=${PYTHON:-.venv/bin/python}
out=$(mktemp -d /tmp/kb-ingest-XXXX)
run() {
  local side=$1 src=$2
  ROOST_HOME=$out/home-$side PYTHONPATH=$src /usr/bin/time -f "$side: wall %e s, user %U s, sys %S s" \
    "$python" -m roost.cli.main kb add "$folder" -c bench >"$out/$side.log" 2>&1
  echo "$(tail -1 "$out/$side.log"); $(grep 'chunks embedded' "$out/$side.log" | tail -1)"
}
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg); $(lscpu | grep 'Model name')"
run before "$before_src" & run after "$after_src" & wait
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$out"
