"""The names the CLI and the bench options accept, in one light module (no torch import), so
`drlbench --help` and pytest's option parsing stay fast and every module spells them alike."""

ALGOS = ("trpo", "ppo", "ddpg", "td3", "sac")
RUNTIMES = ("torch", "onnxruntime", "litert", "executorch")
GRIDS = ("smoke", "paper")
EXECUTORS = ("local", "dask")  # where `drlbench sweep` runs its cells (drlbench/executors.py)
# The 90 %-of-baseline rules: our default, and the paper's.
RULES = {"normalized": "random-normalized score (R_v - R_rand) / (R_base - R_rand)",
         "raw": "raw ratio R_v / R_base (the paper's rule)"}
# fp32 rollout states a variant builder collects: PTSQ calibration and the meters' inputs
CALIBRATION_STATES = 2048
# The paper's threshold: a variant "keeps" its baseline when its score (by the rule above) is >= 90 %.
KEEP_THRESHOLD = 0.9
# an int8 cell 'collapses' below half of fp32's score: far below the keep line, not noise
COLLAPSE = 0.5
