#!/usr/bin/env bash
# Sweep newly bundled (or retrained) agents into docs/report and regenerate it: scripts/sweep_agent.sh td3-ant …
# Runs every cell set docs/report holds for the other agents — the paper grid, the input-equalized and the
# mixed-precision (first layer in fp32) int8 recipes, int8 on LiteRT and ExecuTorch, the low-bit / input /
# combined variants — so the report grows agent by agent. Cells already in the store are reused; a retrained
# agent's old cells are replaced.
# It sweeps from a throw-away worktree of HEAD (commit the agent first), so edits in this checkout
# during the sweep change nothing measured.
#   WORKERS  sweep processes (default 2)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 AGENT_ID …" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
store=$repo/docs/report/results.db
agents=$(IFS=,; echo "$*")
for a in "$@"; do
  git -C "$repo" ls-files --error-unmatch "drlbench/zoo/$a/card.json" >/dev/null 2>&1 \
    || { echo "$a: drlbench/zoo/$a/card.json is not committed; commit the agent first" >&2; exit 2; }
done
wt=$(mktemp -d /tmp/sweep-agent.XXXXXX)
git -C "$repo" worktree add --detach "$wt" HEAD >/dev/null
trap 'git -C "$repo" worktree remove --force "$wt"' EXIT
sweep() { (cd "$wt" && PYTHONPATH="$wt" python -m drlbench.cli sweep --agents "$agents" --out "$store" \
  --workers "${WORKERS:-2}" --remeasure-retrained --no-progress "$@"); }
sweep                                                   # the paper's 32 variants
sweep --variants ptdq_eq,ptsq_eq,qat_eq,ptdq_mixed,ptsq_mixed
for rt in litert executorch; do sweep --runtime "$rt" --variants fp32,ptdq,ptsq,qat; done
sweep --variants qat_w4a8,qat_w3a8,qat_w2a8,fp16,input_i8,input_i6,input_i4,prune_l1_30+ptdq
# the report measures nothing: written by this checkout, naming its store by the relative path
(cd "$repo" && python -m drlbench.cli report docs/report/results.db --out docs/report)
