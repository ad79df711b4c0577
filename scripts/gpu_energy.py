"""Measured (not estimated) energy and CUDA latency of policies run by torch on an NVIDIA GPU.

    python scripts/gpu_energy.py --agents trpo-hopper,ppo-halfcheetah --variants fp32,prune_l2_30 --out gpu.json

NVML counts the whole board, idle power included, so the script also measures the board's idle
power over the same kind of interval and reports energy above idle next to the gross figure.
Inputs are seeded Gaussian observations: the fp32 and pruned torch kernels' time does not depend on
the values (no simulator is needed on the GPU machine).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    from drlbench.meters.energy import NvmlMeter, measure_energy
    from drlbench.meters.latency import measure_latency
    from drlbench.runtimes import TorchRunner
    from drlbench.builder import VariantBuilder
    from drlbench.zoo import load_agent

    p = argparse.ArgumentParser()
    p.add_argument("--agents", required=True)
    p.add_argument("--variants", default="fp32,prune_l2_30,prune_l2_50")
    p.add_argument("--seconds", type=float, default=3.0, help="energy interval per measurement")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    rows = []
    meter = NvmlMeter(0)
    meter.start()
    time.sleep(a.seconds)
    idle_w = meter.stop() / a.seconds
    gpu = torch.cuda.get_device_name(0)
    for agent_id in a.agents.split(","):
        builder = VariantBuilder(load_agent(agent_id))
        obs = np.random.default_rng(0).normal(size=(4096, builder.actor.obs_dim)).astype(np.float32)
        for name in a.variants.split(","):
            v = builder.get(name)
            runner = TorchRunner(v.module, builder.actor.obs_dim, device="cuda")
            lat1 = measure_latency(runner, obs, min_time_s=1.0)
            lat256 = measure_latency(runner, obs, batch=256, min_iterations=200, min_time_s=1.0)
            e = measure_energy(runner, obs, NvmlMeter(0), n_actions=2000, min_time_s=a.seconds)
            net = e.joules - idle_w * e.wall_s
            rows.append({"agent": agent_id, "variant": name, "n_params": v.n_params, "device": gpu,
                         "latency_us_p50_batch1": lat1.p50_us, "latency_us_p90_batch1": lat1.p90_us,
                         "latency_us_p99_batch1": lat1.p99_us, "latency_us_p50_batch256": lat256.p50_us,
                         "energy_source": e.source, "joules_per_1k_actions_gross": e.joules_per_1k_actions,
                         "joules_per_1k_actions_above_idle": net / e.n_actions * 1e3, "idle_watts": idle_w,
                         "n_actions": e.n_actions, "wall_s": e.wall_s})
            print(json.dumps(rows[-1]), flush=True)
    with open(a.out, "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
