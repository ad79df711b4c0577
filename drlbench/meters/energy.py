"""Energy per action: NVML on NVIDIA GPUs, RAPL where its counters are readable, else an estimate.

Every meter has one interface: `start()`, then `stop() -> joules` since start, plus `.source`
("nvml" | "rapl" | "estimate-cpu-time") and `.is_estimate`. The estimate converts this process's
CPU time to joules with a fixed wattage; it is always labelled as an estimate, never as measured.

NVML and RAPL count the whole board / CPU package, idle power and other processes included, so
their figures are attributable to the policy only on an otherwise quiet machine.
"""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import pynvml

from drlbench.errors import DrlbenchError
from drlbench.meters.latency import batches

if TYPE_CHECKING:  # the runner protocol, without importing torch here
    from drlbench.runtimes import Runner

log = logging.getLogger(__name__)

DEVICES = ("cpu", "cuda")
POWERCAP_ROOT = Path("/sys/class/powercap")
# Top-level RAPL zones are intel-rapl:N (AMD's Zen driver uses the same names); intel-rapl:N:M are
# sub-zones (core, uncore, dram) whose energy the package figure already holds or that we skip.
_RAPL_ZONE = re.compile(r"^intel-rapl:\d+$")

# Watts per busy core for the CPU-time estimate. Source: AMD EPYC 9654 (Zen 4 "Genoa", the
# AVX-512 VNNI EPYC generation these machines report): 360 W default TDP / 96 cores = 3.75 W.
# TDP is a sustained full-socket figure that includes the I/O die, so this is a rough share per
# core, not a measurement; a vCPU that is one SMT thread may draw less. Pass your own to override.
WATTS_PER_CORE = 360.0 / 96


class MeterUnavailable(DrlbenchError):
    """This machine cannot provide the requested energy counter (select_meter falls back)."""


class EnergyMeter(Protocol):
    source: str
    is_estimate: bool

    def start(self) -> None: ...

    def stop(self) -> float: ...


class _Meter(ABC):
    """start()/stop() over a counter: subclasses say how to read it and how to turn two readings
    into joules."""

    source: str
    is_estimate: bool
    _begin = None

    @abstractmethod
    def _read(self): ...

    @abstractmethod
    def _joules(self, begin, end) -> float: ...

    def start(self) -> None:
        self._begin = self._read()

    def stop(self) -> float:
        if self._begin is None:
            raise DrlbenchError(f"{type(self).__name__}.stop() called before start()")
        begin, self._begin = self._begin, None
        return float(self._joules(begin, self._read()))


class NvmlMeter(_Meter):
    """GPU board energy from `nvmlDeviceGetTotalEnergyConsumption` (millijoules since driver load;
    Volta or newer)."""

    source, is_estimate = "nvml", False

    def __init__(self, index: int = 0):
        try:
            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._read()  # older GPUs raise NotSupported here, not at init
        except pynvml.NVMLError as exc:
            raise MeterUnavailable(
                f"NVML energy counter unavailable on GPU {index} ({exc}); "
                "needs an NVIDIA driver and a Volta or newer GPU"
            ) from None

    def _read(self) -> int:
        return pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)

    def _joules(self, begin: int, end: int) -> float:
        return (end - begin) / 1e3


class RaplMeter(_Meter):
    """CPU package energy from the Linux powercap RAPL counters, summed over packages.

    Each `energy_uj` counts microjoules and wraps to 0 after `max_energy_range_uj`; an interval
    shorter than one wrap (minutes at full load) is recovered exactly.
    """

    source, is_estimate = "rapl", False

    def __init__(self, root: Path | str = POWERCAP_ROOT):
        root = Path(root)
        zones = sorted(z for z in root.glob("intel-rapl:*") if _RAPL_ZONE.match(z.name)) if root.is_dir() else []
        try:
            # Only package zones: a "psys" (platform) zone would count the packages a second time.
            self.zones = [z for z in zones if (z / "name").read_text().strip().startswith("package")]
            self.max_uj = [int((z / "max_energy_range_uj").read_text()) for z in self.zones]
            self._read()
        except (OSError, ValueError) as exc:
            # energy_uj is root-only since Linux 5.10 (CVE-2020-8694).
            raise MeterUnavailable(f"RAPL counters under {root} not readable ({exc}); needs read access") from None
        if not self.zones:
            raise MeterUnavailable(f"no RAPL package zones under {root} (intel-rapl:N whose name is package-*)")

    def _read(self) -> list[int]:
        return [int((z / "energy_uj").read_text()) for z in self.zones]

    def _joules(self, begin: list[int], end: list[int]) -> float:
        return sum(e - b if e >= b else e + m - b for b, e, m in zip(begin, end, self.max_uj)) / 1e6


class CpuTimeEstimate(_Meter):
    """Joules = this process's CPU time (all threads, user + system) × watts per busy core."""

    source, is_estimate = "estimate-cpu-time", True

    def __init__(self, watts_per_core: float = WATTS_PER_CORE, clock: Callable[[], float] = time.process_time):
        if not watts_per_core > 0:
            raise DrlbenchError(f"watts_per_core must be > 0, got {watts_per_core}")
        self.watts_per_core = float(watts_per_core)
        self._clock = clock

    def _read(self) -> float:
        return self._clock()

    def _joules(self, begin: float, end: float) -> float:
        return (end - begin) * self.watts_per_core


def select_meter(
    device: str = "cpu",
    *,
    gpu_index: int = 0,
    rapl_root: Path | str = POWERCAP_ROOT,
    watts_per_core: float = WATTS_PER_CORE,
    exclusive: bool = True,
) -> EnergyMeter:
    """The best meter this machine offers for a policy on `device`: NVML (cuda only), then RAPL,
    then the CPU-time estimate. `.source` says which was chosen; the reasons for skipping the
    others are logged. `exclusive=False` (other measuring processes share the CPU, as sweep
    workers do) skips RAPL: its package counter would charge this process for theirs."""
    if device not in DEVICES:
        raise DrlbenchError(f"unknown device {device!r}; accepted: {', '.join(DEVICES)}")
    candidates: list[Callable[[], EnergyMeter]] = [lambda: RaplMeter(rapl_root)] if exclusive else []
    if not exclusive:
        log.info("energy: RAPL skipped, the CPU package is shared with other workers")
    if device == "cuda":
        candidates.insert(0, lambda: NvmlMeter(gpu_index))
    for make in candidates:
        try:
            return make()
        except MeterUnavailable as exc:
            log.info("energy: %s; falling back", exc)
    return CpuTimeEstimate(watts_per_core)


@dataclass(frozen=True)
class EnergyStats:
    joules_per_1k_actions: float
    joules: float
    source: str
    is_estimate: bool
    n_actions: int  # batch-1 actions inside the measured interval
    wall_s: float
    cpu_s: float  # this process's CPU time over the interval
    runtime: str
    threads: int

    def to_extra_info(self) -> dict:
        """Flat dict for pytest-benchmark's `extra_info`; the first two keys match CellResult."""
        return {
            "energy_j_per_1k_actions": self.joules_per_1k_actions,
            "energy_source": self.source,
            "energy_is_estimate": self.is_estimate,
            "energy_j": self.joules,
            "energy_n_actions": self.n_actions,
            "energy_wall_s": self.wall_s,
            "energy_cpu_s": self.cpu_s,
            "runtime": self.runtime,
            "threads": self.threads,
        }


def measure_energy(
    runner: Runner,
    observations,
    meter: EnergyMeter,
    *,
    n_actions: int = 10_000,
    min_time_s: float = 1.0,
    warmup: int = 100,
) -> EnergyStats:
    """Energy of batch-1 `runner.run` calls, cycling through the rows of `observations`.

    Runs at least `n_actions` actions and at least `min_time_s` seconds: hardware counters update
    every ~1 ms (RAPL) to tens of ms (NVML), so a shorter interval would mostly measure their step.
    """
    if n_actions < 1 or min_time_s < 0 or warmup < 0:
        raise DrlbenchError(
            f"need n_actions >= 1, min_time_s >= 0, warmup >= 0; got {n_actions}, {min_time_s}, {warmup}"
        )
    inputs = batches(observations, runner.obs_dim, 1)
    k, run = len(inputs), runner.run
    for i in range(warmup):
        run(inputs[i % k])
    chunk = min(n_actions, 256)  # read the clock once per chunk, not once per action
    n = 0
    meter.start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while n < n_actions or time.perf_counter() - wall0 < min_time_s:
        step = min(chunk, n_actions - n) if n < n_actions else chunk
        for i in range(n, n + step):
            run(inputs[i % k])
        n += step
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    joules = meter.stop()
    return EnergyStats(
        joules_per_1k_actions=joules / n * 1e3,
        joules=joules,
        source=meter.source,
        is_estimate=meter.is_estimate,
        n_actions=n,
        wall_s=wall,
        cpu_s=cpu,
        runtime=str(runner.runtime),
        threads=int(runner.threads),
    )
