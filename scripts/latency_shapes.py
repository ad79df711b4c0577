"""Batch-1 latency of fp32 / int8 actors of a given shape, side by side, one thread (a stand-in).

    python scripts/latency_shapes.py --shape 348,256,256,17 --shape 17,256,256,6

An untrained actor with Gaussian inputs: the kernels' time does not depend on training, so this
answers "does int8 pay at this width?" before a trained agent of that shape exists. Each runtime is
timed in alternating blocks; the medians of the block p50/p90 are printed (microseconds).
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch


def main() -> None:
    from drlbench.actor import Actor
    from drlbench.compress import onnx_export, ptq
    from drlbench.meters.latency import measure_latency
    from drlbench.runtimes import OrtRunner, TorchRunner

    p = argparse.ArgumentParser()
    p.add_argument("--shape", action="append", required=True, help="obs,hidden…,act")
    p.add_argument("--blocks", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(1)
    for spec in a.shape:
        dims = [int(x) for x in spec.split(",")]
        torch.manual_seed(0)
        actor = Actor(dims[0], dims[-1], dims[1:-1])
        obs = np.random.default_rng(0).normal(size=(2048, dims[0])).astype(np.float32)
        fp32 = onnx_export.export_onnx(actor, dims[0])
        runners = {"torch fp32": TorchRunner(actor, dims[0]), "ort fp32": OrtRunner(fp32, dims[0]),
                   "ort ptdq": OrtRunner(ptq.ptdq(fp32), dims[0]),
                   "ort ptsq": OrtRunner(ptq.ptsq(fp32, obs[:512]), dims[0])}
        stats = {k: [] for k in runners}
        for _ in range(a.blocks):
            for name, r in runners.items():
                stats[name].append(measure_latency(r, obs, min_time_s=0.3))
        row = {"shape": spec}
        for name, s in stats.items():
            row[f"{name} p50"] = round(statistics.median(x.p50_us for x in s), 2)
            row[f"{name} p90"] = round(statistics.median(x.p90_us for x in s), 2)
        row["ptdq / ort fp32 (p50)"] = round(row["ort ptdq p50"] / row["ort fp32 p50"], 3)
        row["ptsq / ort fp32 (p50)"] = round(row["ort ptsq p50"] / row["ort fp32 p50"], 3)
        row["ort fp32 / torch fp32 (p50)"] = round(row["ort fp32 p50"] / row["torch fp32 p50"], 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
