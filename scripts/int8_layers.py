"""Which layer's int8 costs the return? PTDQ with one layer kept in float, and the input-equalized recipes.

    python scripts/int8_layers.py ddpg-halfcheetah --json docs/measurements/int8_first_layer_ddpg_halfcheetah.json

Each row: 10 paired-seed episodes (seeds 0-9) of one ONNX model on ONNX Runtime, one thread.
"""

from __future__ import annotations

import argparse
import json
import logging

import onnx

from drlbench.compress import ptq
from drlbench.evaluate import evaluate
from drlbench.provenance import machine_info
from drlbench.runtimes import OrtRunner
from drlbench.builder import VariantBuilder
from drlbench.zoo import load_agent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("agent")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--json", required=True)
    a = p.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # ORT's quantizer warns on every call
    agent = load_agent(a.agent)
    builder = VariantBuilder(agent)
    fp32 = builder.get("fp32").onnx
    gemms = [n.name for n in onnx.load_from_string(fp32).graph.node if n.op_type == "Gemm"]
    obs_dim = agent.actor.obs_dim
    models = {"fp32": fp32, "ptdq": builder.get("ptdq").onnx}
    models |= {f"ptdq, {g} in float": ptq.ptdq(fp32, [g]) for g in gemms}
    models |= {name: builder.get(name).onnx for name in ("ptdq_eq", "ptsq", "ptsq_eq", "qat", "qat_eq")}
    rows = {}
    for label, model in models.items():
        r = evaluate(OrtRunner(model, obs_dim, 1).run, agent.env_id, a.episodes, 0)
        rows[label] = {"mean": round(r.mean, 1), "std": round(r.std, 1), "n": r.n}
        print(f"{label:45s} {r.mean:10.1f} ± {r.std:8.1f}", flush=True)
    result = {"agent": a.agent, "env_id": agent.env_id, "episodes_seeds": f"{a.episodes} from seed 0",
              "runtime": "onnxruntime, 1 thread", "input_equalization": builder.get("ptdq_eq").build.get(
                  "input_equalization"), "returns": rows, "machine": machine_info()}
    with open(a.json, "w") as fh:
        json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
