"""Meters: latency statistics, isolated-process memory, energy counters (real, faked, estimated).

No timing thresholds: the machine is shared and noisy, so these tests assert behaviour only.
NVML and RAPL are absent here; their paths run against faked counters.
"""

from dataclasses import fields

import numpy as np
import pynvml
import pytest

from drlbench.actor import Actor
from drlbench.compress.onnx_export import export_onnx
from drlbench.errors import DrlbenchError
from drlbench.meters import _memory_probe
from drlbench.meters.energy import (
    WATTS_PER_CORE,
    CpuTimeEstimate,
    MeterUnavailable,
    NvmlMeter,
    RaplMeter,
    measure_energy,
    select_meter,
)
from drlbench.meters.latency import measure_latency
from drlbench.meters.memory import measure_memory
from drlbench.results import CellResult
from drlbench.runtimes import OrtRunner, TorchRunner
from drlbench.sweep import SweepArgs, measure_config
from drlbench.variants import Variant, parse_variant

CELL_FIELDS = {f.name for f in fields(CellResult)}
OBS_DIM = 17


class FakeRunner:
    """Records what it was called with; instant, so loops are cheap."""

    runtime, threads, obs_dim = "fake", 3, 4

    def __init__(self):
        self.calls = []

    def run(self, obs):
        self.calls.append(obs)
        return obs[:, :1]


@pytest.fixture(scope="module")
def small_actor():
    return Actor(OBS_DIM, 6, [64, 64])


@pytest.fixture(scope="module")
def observations():
    return np.random.default_rng(0).standard_normal((32, OBS_DIM)).astype(np.float32)


@pytest.fixture(scope="module", params=["onnxruntime", "torch"])
def runner(request, small_actor):
    if request.param == "onnxruntime":
        return OrtRunner(export_onnx(small_actor, OBS_DIM), OBS_DIM)
    return TorchRunner(small_actor, OBS_DIM)


# ---------------------------------------------------------------- latency


def test_latency_percentiles_are_ordered_and_runtime_recorded(runner, observations):
    stats = measure_latency(runner, observations, warmup=10, min_iterations=300, min_time_s=0)
    assert 0 < stats.min_us <= stats.p50_us <= stats.p90_us <= stats.p99_us <= stats.max_us
    assert stats.min_us <= stats.mean_us <= stats.max_us
    assert stats.n >= 300
    assert (stats.runtime, stats.threads, stats.batch) == (runner.runtime, 1, 1)


def test_latency_cycles_through_observation_rows_one_at_a_time():
    runner, obs = FakeRunner(), np.arange(12, dtype=np.float64).reshape(3, 4)
    stats = measure_latency(runner, obs, warmup=2, min_iterations=7, min_time_s=0)
    assert stats.n == 7
    timed = runner.calls[2:]
    assert [int(x[0, 0]) for x in timed] == [0, 4, 8, 0, 4, 8, 0]
    assert all(x.shape == (1, 4) and x.dtype == np.float32 and x.flags.c_contiguous for x in timed)
    assert (stats.runtime, stats.threads) == ("fake", 3)


def test_latency_batched_calls_take_consecutive_rows():
    runner = FakeRunner()
    stats = measure_latency(runner, np.zeros((5, 4)), batch=2, warmup=0, min_iterations=4, min_time_s=0)
    assert stats.batch == 2 and all(x.shape == (2, 4) for x in runner.calls)


def test_latency_keeps_timing_until_min_time_has_passed():
    stats = measure_latency(FakeRunner(), np.zeros((2, 4)), warmup=0, min_iterations=1, min_time_s=0.05)
    assert stats.n > 1


def test_latency_extra_info_uses_cell_result_names():
    info = measure_latency(FakeRunner(), np.zeros((2, 4)), warmup=0, min_iterations=5, min_time_s=0).to_extra_info()
    for key in ("latency_us_mean", "latency_us_p50", "latency_us_p90", "latency_us_p99", "threads", "runtime"):
        assert key in info and key in CELL_FIELDS


@pytest.mark.parametrize(
    "obs, kwargs",
    [
        (np.zeros((4, 3)), {}),  # wrong obs_dim
        (np.zeros(4), {}),  # not rows
        (np.full((4, 4), np.nan), {}),
        (np.zeros((4, 4)), {"min_iterations": 0}),
        (np.zeros((4, 4)), {"warmup": -1}),
        (np.zeros((4, 4)), {"batch": 5}),  # more than the rows given
    ],
)
def test_latency_rejects_bad_input(obs, kwargs):
    with pytest.raises(DrlbenchError):
        measure_latency(FakeRunner(), obs, **({"min_time_s": 0} | kwargs))


# ---------------------------------------------------------------- memory


def write_artifact(actor, runtime, folder):
    """The file a runtime's probe loads, as Variant.write_artifact writes it."""
    variant = Variant("test", parse_variant("fp32"), export_onnx(actor, actor.obs_dim), actor.n_params(), actor)
    return variant.write_artifact(folder, runtime)


@pytest.fixture(scope="module")
def memory(small_actor, tmp_path_factory):
    """Probe results by (runtime, size), each probe run once for the module."""
    big = Actor(376, 17, [1024, 1024])
    cache = {}

    def get(runtime, size):
        if (runtime, size) not in cache:
            folder = tmp_path_factory.mktemp(f"{runtime}-{size}")
            path = write_artifact(small_actor if size == "small" else big, runtime, folder)
            cache[runtime, size] = measure_memory(path, runtime, steps=100)
        return cache[runtime, size]

    return get


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_memory_probe_reports_each_stage(memory, runtime):
    stats = memory(runtime, "small")
    assert stats.runtime == runtime and stats.steps == 100 and stats.artifact_bytes > 0
    # peaks only grow; importing the runtime costs memory of its own
    assert 0 < stats.rss_python_mib < stats.rss_runtime_mib <= stats.rss_loaded_mib <= stats.rss_running_mib
    assert stats.weights_mib == pytest.approx(stats.rss_loaded_mib - stats.rss_runtime_mib)
    assert stats.inference_mib == pytest.approx(stats.rss_running_mib - stats.rss_loaded_mib)
    assert {"rss_runtime_mib", "rss_loaded_mib", "rss_running_mib"} <= set(stats.to_extra_info()) & CELL_FIELDS


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_memory_bigger_model_loads_more(memory, runtime):
    small, big = memory(runtime, "small"), memory(runtime, "big")
    assert big.artifact_bytes > small.artifact_bytes
    assert big.weights_mib > small.weights_mib


def test_memory_of_a_saved_variants_model_file(small_actor, tmp_path):
    onnx = export_onnx(small_actor, OBS_DIM)
    variant = Variant("test", parse_variant("fp32"), onnx, small_actor.n_params(), small_actor)
    folder = variant.save(tmp_path / "v")
    stats = measure_memory(folder / "model.onnx", "onnxruntime", steps=10)
    assert stats.artifact_bytes == variant.artifact_bytes


def test_a_variant_without_torch_module_writes_no_torch_artifact_and_names_the_runtimes(small_actor, tmp_path):
    variant = Variant("test", parse_variant("ptdq"), export_onnx(small_actor, OBS_DIM), small_actor.n_params())
    with pytest.raises(DrlbenchError, match="no 'torch' runtime; accepted: onnxruntime"):
        variant.write_artifact(tmp_path, "torch")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name, runtime, match",
    [
        ("missing.onnx", "onnxruntime", "not found"),
        (".", "onnxruntime", "not found"),  # a folder is no artifact file
        ("model.onnx", "torch", "safetensors"),
        ("model.onnx", "tensorflow", "accepted"),
    ],
)
def test_memory_bad_artifact_path_or_runtime(tmp_path, name, runtime, match):
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(DrlbenchError, match=match):
        measure_memory(tmp_path / name, runtime)


def test_memory_bad_steps_and_model_type(small_actor, tmp_path):
    with pytest.raises(DrlbenchError, match="steps"):
        measure_memory(tmp_path / "actor.safetensors", "torch", steps=0)
    with pytest.raises(DrlbenchError, match="takes the path of an artifact file"):
        measure_memory(small_actor, "torch")


@pytest.mark.parametrize(
    "runtime, name, says",
    [("onnxruntime", "model.onnx", "INVALID_PROTOBUF"), ("torch", "actor.safetensors", "corrupt weight file")],
)
def test_memory_corrupt_artifact_reports_the_probe_stderr(tmp_path, runtime, name, says):
    (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(DrlbenchError, match="memory probe could not load") as err:
        measure_memory(tmp_path / name, runtime)
    assert says in str(err.value)


def test_memory_probe_session_options_match_ort_runner(small_actor):
    import onnxruntime as ort

    ours = _memory_probe.session_options(ort)
    theirs = OrtRunner(export_onnx(small_actor, OBS_DIM), OBS_DIM).session.get_session_options()
    for attr in ("intra_op_num_threads", "inter_op_num_threads", "execution_mode", "graph_optimization_level"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr


# ---------------------------------------------------------------- energy


@pytest.fixture
def fake_nvml(monkeypatch):
    """NVML with a GPU whose energy counter (millijoules) returns the values pushed to the list."""
    readings = []
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: f"gpu{i}")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption", lambda h: readings.pop(0))
    return readings


@pytest.fixture
def no_nvml(monkeypatch):
    def missing():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", missing)


def rapl_zone(root, zone, name, energy_uj, max_uj=2**32):
    d = root / zone
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")


def set_energy(root, zone, energy_uj):
    (root / zone / "energy_uj").write_text(f"{energy_uj}\n")


def test_nvml_meter_converts_millijoules(fake_nvml):
    fake_nvml += [1_000, 5_000, 17_500]  # first read is the support check at construction
    meter = NvmlMeter(0)
    meter.start()
    assert meter.stop() == pytest.approx(12.5)
    assert (meter.source, meter.is_estimate) == ("nvml", False)


def test_nvml_meter_unavailable_without_driver_or_support(no_nvml, monkeypatch):
    with pytest.raises(MeterUnavailable, match="NVML"):
        NvmlMeter()
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: "gpu")

    def unsupported(handle):
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption", unsupported)
    with pytest.raises(MeterUnavailable, match="Volta"):
        NvmlMeter()


def test_rapl_meter_sums_packages_and_skips_subzones_and_psys(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    rapl_zone(tmp_path, "intel-rapl:0:0", "core", 0)
    rapl_zone(tmp_path, "intel-rapl:1", "package-1", 3_000_000)
    rapl_zone(tmp_path, "intel-rapl:2", "psys", 0)
    meter = RaplMeter(tmp_path)
    meter.start()
    set_energy(tmp_path, "intel-rapl:0", 3_500_000)  # +2.5 J
    set_energy(tmp_path, "intel-rapl:0:0", 9_000_000)  # inside package-0: not counted twice
    set_energy(tmp_path, "intel-rapl:1", 4_000_000)  # +1.0 J
    set_energy(tmp_path, "intel-rapl:2", 9_000_000)  # platform: would double count
    assert meter.stop() == pytest.approx(3.5)
    assert (meter.source, meter.is_estimate) == ("rapl", False)


def test_rapl_meter_handles_counter_wrap_around(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 999_000, max_uj=1_000_000)
    meter = RaplMeter(tmp_path)
    meter.start()
    set_energy(tmp_path, "intel-rapl:0", 500)  # wrapped: 1,000 µJ to the top, then 500
    assert meter.stop() == pytest.approx(1_500e-6)


def test_rapl_meter_unavailable_without_readable_package_zones(tmp_path):
    with pytest.raises(MeterUnavailable, match="^no RAPL package zones"):
        RaplMeter(tmp_path / "absent")
    rapl_zone(tmp_path, "intel-rapl:0", "psys", 0)
    with pytest.raises(MeterUnavailable, match="^no RAPL package zones"):
        RaplMeter(tmp_path)
    rapl_zone(tmp_path, "intel-rapl:1", "package-0", 0)
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("permission denied")
    with pytest.raises(MeterUnavailable, match="^RAPL counters .* not readable"):
        RaplMeter(tmp_path)


def test_cpu_time_estimate_is_labelled_as_estimate():
    clock = iter([10.0, 12.5])
    meter = CpuTimeEstimate(watts_per_core=4.0, clock=lambda: next(clock))
    meter.start()
    assert meter.stop() == pytest.approx(10.0)  # 2.5 CPU-s × 4 W
    assert (meter.source, meter.is_estimate) == ("estimate-cpu-time", True)
    assert CpuTimeEstimate().watts_per_core == WATTS_PER_CORE > 0
    with pytest.raises(DrlbenchError, match="watts_per_core"):
        CpuTimeEstimate(watts_per_core=0)


def test_meter_stop_before_start_is_an_error():
    with pytest.raises(DrlbenchError, match="before start"):
        CpuTimeEstimate().stop()


def test_select_meter_falls_back_to_the_estimate_on_this_kind_of_machine(no_nvml, tmp_path):
    for device in ("cpu", "cuda"):
        meter = select_meter(device, rapl_root=tmp_path / "absent")
        assert (meter.source, meter.is_estimate) == ("estimate-cpu-time", True)


def test_select_meter_prefers_rapl_over_the_estimate(no_nvml, tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    assert select_meter("cpu", rapl_root=tmp_path).source == "rapl"
    assert select_meter("cuda", rapl_root=tmp_path).source == "rapl"  # NVML missing


def test_select_meter_skips_rapl_when_other_workers_share_the_package(no_nvml, tmp_path):
    # RAPL counts the whole package: beside another sweep worker it would charge this cell for both.
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    assert select_meter("cpu", rapl_root=tmp_path, exclusive=False).source == "estimate-cpu-time"
    assert measure_config(SweepArgs(workers=2)).exclusive_cpu is False
    assert measure_config(SweepArgs(workers=1)).exclusive_cpu is True


def test_select_meter_uses_nvml_only_for_cuda(fake_nvml, tmp_path):
    fake_nvml += [0, 0]
    assert select_meter("cuda", rapl_root=tmp_path).source == "nvml"
    assert select_meter("cpu", rapl_root=tmp_path).source == "estimate-cpu-time"


def test_select_meter_passes_the_wattage_and_rejects_unknown_devices(no_nvml, tmp_path):
    assert select_meter("cpu", rapl_root=tmp_path, watts_per_core=7.0).watts_per_core == 7.0
    with pytest.raises(DrlbenchError, match="accepted: cpu, cuda"):
        select_meter("tpu")


def test_measure_energy_with_the_estimate_on_a_real_runner(runner, observations):
    stats = measure_energy(runner, observations, CpuTimeEstimate(), n_actions=300, min_time_s=0, warmup=5)
    assert (stats.source, stats.is_estimate, stats.n_actions) == ("estimate-cpu-time", True, 300)
    assert stats.joules > 0 and stats.cpu_s > 0 and stats.wall_s > 0
    assert stats.joules_per_1k_actions == pytest.approx(stats.joules / 300 * 1e3)
    assert (stats.runtime, stats.threads) == (runner.runtime, 1)
    info = stats.to_extra_info()
    assert {"energy_j_per_1k_actions", "energy_source"} <= set(info) & CELL_FIELDS
    assert info["energy_is_estimate"] is True


class FixedMeter:
    source, is_estimate = "fixed", False

    def start(self):
        pass

    def stop(self):
        return 2.0


def test_measure_energy_divides_joules_by_the_actions_run():
    runner = FakeRunner()
    stats = measure_energy(runner, np.zeros((3, 4)), FixedMeter(), n_actions=1000, min_time_s=0, warmup=7)
    assert stats.n_actions == 1000 and len(runner.calls) == 1007
    assert stats.joules_per_1k_actions == pytest.approx(2.0)
    assert all(x.shape == (1, 4) for x in runner.calls)


def test_measure_energy_runs_at_least_min_time():
    stats = measure_energy(FakeRunner(), np.zeros((3, 4)), FixedMeter(), n_actions=1, min_time_s=0.05, warmup=0)
    assert stats.n_actions > 1 and stats.wall_s >= 0.05


def test_measure_energy_rejects_bad_input():
    with pytest.raises(DrlbenchError, match="n_actions"):
        measure_energy(FakeRunner(), np.zeros((3, 4)), FixedMeter(), n_actions=0)
    with pytest.raises(DrlbenchError, match="shape"):
        measure_energy(FakeRunner(), np.zeros((3, 5)), FixedMeter(), n_actions=10)

