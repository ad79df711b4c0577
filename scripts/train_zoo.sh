#!/usr/bin/env bash
# Train zoo cells one after another on one core: scripts/train_zoo.sh ppo:Hopper trpo:Ant …
# Cells already in drlbench/zoo/ are skipped; an interrupted cell resumes from runs/.
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for cell in "$@"; do
  algo=${cell%%:*}; task=${cell#*:}
  id=$(echo "$algo-$task" | tr '[:upper:]' '[:lower:]')
  if [ -f "drlbench/zoo/$id/card.json" ]; then echo "skip $id (bundled)"; continue; fi
  echo "== $id $(date -Is)"
  drlbench train --algo "$algo" --task "$task" --no-progress || echo "!! $id failed"
done
