"""One pytest session's drlbench state: the agents the options name, resolved and checked before
anything is collected or built; their cells; one CellMeasurer per agent; the verdicts for the summary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from drlbench.errors import DrlbenchError
from drlbench.pytest_plugin.options import SPEC_HELP, PluginOptions

DEFAULT_BUDGETS = Path(str(resources.files("drlbench").joinpath("data", "budgets.toml")))
# A gate's latency and energy blocks: longer than a sweep's 0.03 s, since a verdict must hold from run to run.
GATE_BLOCK_S = 0.3


@dataclass
class GatedAgent:
    label: str  # the `<agent>` part of test ids
    spec: str  # as given on the command line
    agent: object  # drlbench.zoo.Agent
    as_is: object = None  # drlbench.variants.Variant: a file measured as it is (not an actor drlbench can rebuild)


def _label(spec: str, taken: set[str]) -> str:
    base = Path(spec.rstrip("/\\")).name
    for suffix in (".zip", ".onnx", ".pt", ".pt2", ".cleanrl_model", ".safetensors"):
        base = base.removesuffix(suffix)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("_") or "agent"
    label, n = base, 1
    while label in taken:
        n += 1
        label = f"{base}{n}"
    return label


def resolve_agent(spec: str, options: PluginOptions, what: str = "--drlbench-agent"):
    """A bundled id, an agent folder or a policy file -> Agent; DrlbenchError (a usage error) otherwise."""
    from drlbench.zoo import bundled_ids, load_agent, load_agent_dir

    path = Path(spec)
    if spec.lower() in bundled_ids() and not path.exists():
        agent = load_agent(spec)
    elif path.is_dir():
        agent = load_agent_dir(path)
    elif path.is_file():
        if not options.task:
            raise DrlbenchError(f"{what} {spec}: a policy file needs --drlbench-task ENV_ID (the Gymnasium env it "
                                "acts in, e.g. Walker2d-v5)")
        from drlbench.importers import load_external

        agent = load_external(path, options.task, trust_pickle=options.trust_pickle,
                              vecnormalize=options.vecnormalize, obs_stats=options.obs_stats)
    else:
        raise DrlbenchError(f"{what} {spec!r}: no such bundled agent, folder or file; accepted: {SPEC_HELP} "
                            f"(bundled: {', '.join(bundled_ids())})")
    if options.task and agent.env_id != options.task and not path.is_file():
        raise DrlbenchError(f"{what} {spec} acts in {agent.env_id}, but --drlbench-task says {options.task}")
    return agent


def _is_onnx(spec: str) -> bool:
    path = Path(spec)
    if not path.is_file():
        return False
    from drlbench.importers import detect_format

    try:
        return detect_format(path) == "onnx"
    except DrlbenchError:
        return False


def _as_is(label: str, spec: str, ref, why: DrlbenchError) -> GatedAgent:
    """An ONNX policy that is not a plain actor (an int8 QDQ graph from the user's own pipeline): its only
    variant is the file itself, run by ONNX Runtime; the reference's actor supplies the rollout states."""
    import hashlib

    import numpy as np
    import onnxruntime as ort

    from drlbench.variants import AS_IS_KIND, Recipe, Variant
    from drlbench.zoo import Agent

    raw = Path(spec).read_bytes()
    try:
        session = ort.InferenceSession(raw, providers=["CPUExecutionProvider"])
        inputs, outputs = session.get_inputs(), session.get_outputs()
        obs = np.zeros((1, ref.actor.obs_dim), dtype=np.float32)
        act = session.run(None, {inputs[0].name: obs})[0]
    except Exception as exc:  # ORT raises its own types for every malformed graph
        raise DrlbenchError(f"--drlbench-agent {spec}: not importable as an actor ({why}) and ONNX Runtime cannot "
                            f"run it on a {ref.actor.obs_dim}-feature observation either: "
                            f"{str(exc).splitlines()[0]}") from None
    if len(inputs) != 1 or np.asarray(act).reshape(1, -1).shape[1] != ref.actor.act_dim:
        raise DrlbenchError(f"--drlbench-agent {spec}: takes {len(inputs)} input(s) and gives "
                            f"{np.asarray(act).size} action value(s) on its first of {len(outputs)} output(s); the "
                            f"reference acts with {ref.actor.act_dim} (one observation input expected)")
    digest = hashlib.sha256(raw).hexdigest()
    card = dict(ref.card) | {"id": f"asis-{digest[:8]}", "source": str(Path(spec).resolve()), "format": "onnx (as is)",
                             "sha256": digest, "as_is_reason": str(why)}
    variant = Variant(card["id"], Recipe(AS_IS_KIND, AS_IS_KIND), raw, n_params=0,
                      build={"runtime_config": "the file as given", "obs_dim": ref.actor.obs_dim})
    return GatedAgent(label, spec, Agent(card["id"], ref.actor, card), as_is=variant)


def _spaces(agent) -> tuple[int, int]:
    return agent.actor.obs_dim, agent.actor.act_dim


@dataclass
class DrlbenchSession:
    options: PluginOptions
    agents: list[GatedAgent] = field(default_factory=list)
    reference: GatedAgent | None = None
    recipes: list = field(default_factory=list)  # drlbench.variants.Recipe
    budgets: object = None  # drlbench.budgets.Budgets
    verdicts: list = field(default_factory=list)  # (agent label, variant name, gates.Verdict)
    _measurers: dict = field(default_factory=dict)

    @classmethod
    def create(cls, options: PluginOptions) -> "DrlbenchSession":
        """Every check a user's mistake can fail, in the order a user reads the options; raises DrlbenchError."""
        from drlbench.budgets import load_budgets
        from drlbench.grid import SMOKE_VARIANTS, split
        from drlbench.names import CALIBRATION_STATES
        from drlbench.tasks import check_episodes_and_seed
        from drlbench.variants import VARIANTS, parse_variant, select

        check_episodes_and_seed(options.episodes, options.seed, names=("--drlbench-episodes", "--drlbench-seed"))
        if not 1 <= options.latency_batch <= CALIBRATION_STATES:
            raise DrlbenchError(f"latency batch must be in 1 … {CALIBRATION_STATES}, got {options.latency_batch}")
        from drlbench.runtimes import backend

        backend(options.runtime)  # a runtime whose extra is missing says how to install it, before any work
        budgets = load_budgets(options.budgets or DEFAULT_BUDGETS)
        if options.return_rule:
            budgets.values["return_rule"] = options.return_rule
        patterns = split(options.variants)
        names = select(patterns, list(VARIANTS), "variant") if patterns else list(SMOKE_VARIANTS)
        session = cls(options, recipes=[parse_variant(n) for n in names], budgets=budgets)
        ref = resolve_agent(options.reference, options, "--drlbench-reference") if options.reference else None
        if ref is not None:
            session.reference = GatedAgent("reference", options.reference, ref)
        taken: set[str] = set()
        for spec in options.agents:
            label = _label(spec, taken)
            taken.add(label)
            try:
                session.agents.append(GatedAgent(label, spec, resolve_agent(spec, options)))
            except DrlbenchError as exc:
                if ref is None or not _is_onnx(spec):
                    raise
                if options.runtime != "onnxruntime":
                    raise DrlbenchError(f"{spec} is measured as it is on onnxruntime only (it is not rebuilt for "
                                        f"--drlbench-runtime {options.runtime}); drop it or the runtime") from None
                # a policy compressed by the user's own pipeline (int8 QDQ, …): measured as it is
                session.agents.append(_as_is(label, spec, ref, exc))
        if ref is not None:
            for g in session.agents:
                if _spaces(g.agent) != _spaces(ref) or g.agent.env_id != ref.env_id:
                    raise DrlbenchError(
                        f"--drlbench-reference {options.reference} ({ref.env_id}, observations {_spaces(ref)[0]}, "
                        f"actions {_spaces(ref)[1]}) does not match --drlbench-agent {g.spec} ({g.agent.env_id}, "
                        f"observations {_spaces(g.agent)[0]}, actions {_spaces(g.agent)[1]}): a reference must act "
                        "in the same env with the same spaces")
        return session

    def cells(self, torch_only: bool = False) -> list[tuple[str, object]]:
        """(agent label, Recipe) for every agent × variant (a file measured as it is: its one cell);
        `torch_only`: variants with a torch form. Variants the run's runtime cannot run are left out."""
        runtime = self.options.runtime
        return [(g.label, r) for g in self.agents for r in ([g.as_is.recipe] if g.as_is else self.recipes)
                if (not torch_only or "torch" in r.runtimes) and (g.as_is or runtime in r.runtimes)]

    def agent(self, label: str) -> GatedAgent:
        return next(g for g in self.agents if g.label == label)

    def measurer(self, label: str):
        """label -> CellMeasurer, created on first use; every artifact is built once per session. With a
        reference, its fp32 is the baseline of every ratio and of the return rule."""
        if label not in self._measurers:
            import torch

            from drlbench.cells import CellMeasurer, MeasureConfig

            torch.set_num_threads(1)
            cfg = MeasureConfig(episodes=self.options.episodes, seed=self.options.seed, runtime=self.options.runtime,
                                ratio_block_s=GATE_BLOCK_S)
            reference = None
            if self.reference is not None:
                if "reference" not in self._measurers:
                    self._measurers["reference"] = CellMeasurer(self.reference.agent, cfg)
                reference = self._measurers["reference"]
            gated = self.agent(label)
            m = CellMeasurer(gated.agent, cfg, reference=reference)
            if gated.as_is is not None:
                m.builder.add(gated.as_is)
            self._measurers[label] = m
        return self._measurers[label]
