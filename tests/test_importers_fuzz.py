"""Fuzzing the readers: random bytes, truncations and byte mutations of valid SB3 zips, ONNX, TorchScript
and torch.export files either load or end in one one-line DrlbenchError: never another exception, never
a hang. (A mutation that only changes a weight can leave a valid file, which then loads: acceptance is
a correct outcome, the property is about how the readers fail.)

Budget: 345 examples in all (~30 s on a shared 2-core machine); the seed files are built once per module.
"""

import signal
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3 import PPO, SAC

from drlbench.errors import DrlbenchError
from drlbench.importers import load_external
from drlbench.zoo import Agent

from .test_importers_files import export_module, save_graph

ENV = "Pendulum-v1"
HANG_S = 60  # far beyond any honest read of these small files (~0.1-0.5 s)
FUZZ = settings(deadline=20_000, database=None, suppress_health_check=[HealthCheck.too_slow])


class Hang(BaseException):
    """Raised by the alarm; a BaseException, so no reader's `except Exception` can turn it into an answer."""


def _alarm(signum, frame):
    raise Hang(f"a read took more than {HANG_S} s")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """format -> (valid file bytes, path to write variants to): built once for the module."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fuzz")
    ppo = PPO("MlpPolicy", ENV, n_steps=64, batch_size=64, seed=0, device="cpu", policy_kwargs={"net_arch": [8]})
    ppo.save(root / "sb3.zip")
    sac = SAC("MlpPolicy", ENV, seed=0, device="cpu", policy_kwargs={"net_arch": [8, 8]})  # the guide's real graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind, name in (("onnx", "actor.onnx"), ("trace", "actor.pt"), ("export", "actor.pt2")):
            save_graph(export_module(sac), kind, root / name, 3)
    files = {"sb3": "sb3.zip", "onnx": "actor.onnx", "torchscript": "actor.pt", "torch_export": "actor.pt2"}
    out = {}
    for fmt, name in files.items():
        raw = (root / name).read_bytes()
        assert isinstance(load_external(root / name, ENV, trust_pickle=True), Agent)  # the seeds themselves load
        out[fmt] = (raw, root / f"fuzzed-{name}")
    return out


def _outcome(path, raw: bytes) -> None:
    """Load `raw` as `path`: an Agent, or a one-line DrlbenchError; anything else fails the test."""
    path.write_bytes(raw)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert isinstance(load_external(path, ENV, trust_pickle=True), Agent)
    except DrlbenchError as exc:
        assert "\n" not in str(exc), str(exc)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", ["actor.onnx", "model.zip", "actor.pt2"])
def test_random_bytes(seeds, name):
    path = next(iter(seeds.values()))[1].with_name(f"random-{name}")  # the name must not matter

    @settings(FUZZ, max_examples=15)
    @given(st.one_of(st.binary(max_size=2048), st.binary(max_size=64).map(lambda b: b"PK\x03\x04" + b)))
    def check(raw):
        _outcome(path, raw)

    check()


@pytest.mark.parametrize("fmt", ["sb3", "onnx", "torchscript", "torch_export"])
def test_truncated_files(seeds, fmt):
    raw, path = seeds[fmt]

    @settings(FUZZ, max_examples=15)
    @given(st.integers(0, len(raw) - 1))
    def check(n):
        _outcome(path, raw[:n])

    check()


@pytest.mark.parametrize("fmt", ["sb3", "onnx", "torchscript", "torch_export"])
def test_mutated_files(seeds, fmt):
    raw, path = seeds[fmt]
    edits = st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), min_size=1, max_size=6)

    @settings(FUZZ, max_examples=60)
    @given(edits)
    def check(changes):
        mutated = bytearray(raw)
        for at, value in changes:
            mutated[at] = value
        _outcome(path, bytes(mutated))

    check()
