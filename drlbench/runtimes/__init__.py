"""Policy runners, one module per runtime, all of the same shape (runtimes/base.py):

    torch        pytorch.py     eager PyTorch: the reference every artifact is verified against
    onnxruntime  ort.py         ONNX Runtime, CPU provider, C-level IO binding (the default; the paper's)
    litert       litert.py      LiteRT (TFLite) with the XNNPACK delegate         extra: drlbench[litert]
    executorch   executorch.py  ExecuTorch with the XNNPACK backend               extra: drlbench[executorch]

Threads are pinned (default 1) and options explicit, so a latency says what it measured. The edge runtimes
are optional extras: `backend(name)` imports one, or says how to install it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from drlbench.errors import DrlbenchError, unknown
from drlbench.names import RUNTIMES
from drlbench.runtimes.base import Checked, Runner, check_obs
from drlbench.runtimes.ort import Runner as OrtRunner
from drlbench.runtimes.pytorch import Runner as TorchRunner

__all__ = ["RUNTIMES", "Checked", "OrtRunner", "Runner", "TorchRunner", "available", "backend", "check_obs",
           "install_hint"]

_MODULES = {"torch": "pytorch", "onnxruntime": "ort", "litert": "litert", "executorch": "executorch"}
_EXTRAS = {"litert": "litert", "executorch": "executorch"}


def install_hint(name: str) -> str:
    extra = _EXTRAS.get(name)
    return f'pip install -c constraints.txt "drlbench[{extra}]"' if extra else ""


def backend(name: str) -> ModuleType:
    """The runtime module `name` (its build, Runner, ARTIFACT …); a clear error when its extra is missing."""
    if name not in RUNTIMES:
        raise unknown("runtime", name, RUNTIMES)
    try:
        return importlib.import_module(f"drlbench.runtimes.{_MODULES[name]}")
    except ImportError as e:
        raise DrlbenchError(f"runtime {name!r} is not installed ({e.msg}); install it with: "
                            f"{install_hint(name)}") from None


def available(name: str) -> bool:
    try:
        backend(name)
    except DrlbenchError:
        return False
    return True
