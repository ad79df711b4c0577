"""The plugin's command-line options, prefixed `--drlbench-` so they cannot clash with a project's own.

Read into `PluginOptions` and checked in plain Python: nothing here imports torch, onnxruntime or
gymnasium, so a project that never passes these options pays only for parsing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drlbench.names import RUNTIMES

SPEC_HELP = ("a bundled agent id, an agent folder, an SB3 / sb3-contrib / sbx .zip, a CleanRL checkpoint, "
             "or an ONNX, TorchScript or torch.export (.pt2) actor")
OPTIMIZE = ("size", "latency")


def add_options(parser) -> None:
    g = parser.getgroup("drlbench", "drlbench: gate a (compressed) RL policy's return, latency, memory, energy")
    g.addoption("--drlbench-agent", action="append", default=[], metavar="SPEC",
                help=f"the policy to gate (repeatable): {SPEC_HELP}")
    g.addoption("--drlbench-task", metavar="ENV_ID", help="Gymnasium env id the policy acts in (required for files)")
    g.addoption("--drlbench-trust-pickle", action="store_true",
                help="allow pickle-based checkpoints (SB3 zips, CleanRL, vecnormalize.pkl): only files you trust")
    g.addoption("--drlbench-vecnormalize", metavar="PATH", help="VecNormalize .pkl whose statistics to bake in")
    g.addoption("--drlbench-obs-stats", metavar="PATH",
                help="observation statistics .npz (mean, var) to bake in; 'none': trained without")
    g.addoption("--drlbench-variants", action="append", default=[], metavar="LIST",
                help="variant names or globs, comma-separated (default: one of every kind)")
    g.addoption("--drlbench-runtime", choices=RUNTIMES, default="onnxruntime",
                help="runtime the cells run on (default onnxruntime); litert and executorch are extras: "
                     'pip install "drlbench[litert]" / "drlbench[executorch]"')
    g.addoption("--drlbench-episodes", type=int, default=10, metavar="N",
                help="evaluation episodes per cell, paired seeds (default 10)")
    g.addoption("--drlbench-seed", type=int, default=0, metavar="S", help="first evaluation seed (default 0)")
    g.addoption("--drlbench-budgets", metavar="FILE", help="budgets TOML (default: the budgets shipped with drlbench)")
    g.addoption("--drlbench-reference", metavar="SPEC",
                help="baseline of every ratio and of the return rule instead of the agent's own fp32 "
                     "(e.g. last release's policy)")
    g.addoption("--drlbench-optimize", choices=OPTIMIZE, default="size",
                help="what the recommended variant minimizes among those that keep the return (default size)")
    g.addoption("--drlbench-return-rule", choices=("normalized", "raw"), default=None,
                help="normalized: (R_v - R_rand) / (R_base - R_rand) (default); raw: R_v / R_base (the paper's)")
    g.addoption("--drlbench-no-builtin", action="store_true",
                help="do not collect the built-in gates; only your own tests use the drlbench fixtures")


def _split(values: list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@dataclass(frozen=True)
class PluginOptions:
    agents: list[str] = field(default_factory=list)
    task: str | None = None
    trust_pickle: bool = False
    vecnormalize: str | None = None
    obs_stats: str | None = None
    variants: list[str] = field(default_factory=list)
    episodes: int = 10
    seed: int = 0
    runtime: str = "onnxruntime"
    budgets: str | None = None
    reference: str | None = None
    optimize: str = "size"
    return_rule: str | None = None  # None: the budgets file's
    latency_batch: int = 64  # states per call in the batched latency gate
    builtin: bool = True  # collect the built-in gates for `agents`

    @classmethod
    def from_config(cls, config) -> "PluginOptions":
        get = config.getoption
        return cls(agents=list(get("drlbench_agent")), task=get("drlbench_task"),
                   trust_pickle=get("drlbench_trust_pickle"), vecnormalize=get("drlbench_vecnormalize"),
                   obs_stats=get("drlbench_obs_stats"), variants=_split(get("drlbench_variants")),
                   episodes=get("drlbench_episodes"), seed=get("drlbench_seed"), runtime=get("drlbench_runtime"), budgets=get("drlbench_budgets"),
                   reference=get("drlbench_reference"), optimize=get("drlbench_optimize"),
                   return_rule=get("drlbench_return_rule"), builtin=not get("drlbench_no_builtin"))

    @property
    def used(self) -> bool:
        """Any drlbench option given: only then does the plugin import the library or collect gates."""
        return bool(self.agents or self.reference or self.task or self.variants or self.vecnormalize
                    or self.obs_stats or self.budgets or self.trust_pickle or self.runtime != "onnxruntime")
