#!/usr/bin/env bash
# Train zoo cells one after another on one core: scripts/train_zoo.sh ppo:Hopper trpo:Ant:300000 …
# An optional third field caps the steps of this pass (default: the cell's budget in hyperparams.py); a
# later pass with a larger cap resumes the run. A cell whose card already records that many steps is
# skipped (an interim card with fewer is not); an interrupted cell resumes from $RUN_DIR.
#   RUN_DIR  checkpoint folder, outside the work tree so a fresh checkout keeps it (default /work/runs)
#   CORE     pin the jobs to this core with taskset (two queues side by side: CORE=0 and CORE=1)
#   ZOO      where agents are exported (default: this checkout's drlbench/zoo). Run the queue from a
#            copy of the repo and point ZOO at the working checkout, so hours-long jobs never import
#            code that is being edited.
set -u
cd "$(dirname "$0")/.."
RUN_DIR=${RUN_DIR:-/work/runs}
ZOO=${ZOO:-drlbench/zoo}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# sbx (JAX): one XLA thread, else it spreads over every core and two queues fight
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
pin=()
if [ -n "${CORE:-}" ]; then pin=(taskset -c "$CORE"); fi
for cell in "$@"; do
  IFS=: read -r algo task cap <<< "$cell"
  id=$(echo "$algo-$task" | tr '[:upper:]' '[:lower:]')
  steps=()
  if [ -n "$cap" ]; then steps=(--steps "$cap"); fi
  if [ -f "$ZOO/$id/card.json" ] && python - "$ZOO/$id/card.json" "${cap:-}" <<'PY'
import json, sys
card = json.load(open(sys.argv[1]))
want = int(sys.argv[2] or card["hyperparams"]["steps"])
sys.exit(0 if card["training_steps"] >= want else 1)
PY
  then echo "skip $id (bundled with ${cap:-its budget of} steps)"; continue; fi
  echo "== $id ${cap:+to $cap steps }$(date -Is)"
  "${pin[@]}" python -m drlbench.cli train --algo "$algo" --task "$task" "${steps[@]}" --run-dir "$RUN_DIR" --out "$ZOO/$id" --no-progress || echo "!! $id failed"
done
