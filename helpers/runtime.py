"""Device, seed, run mode and per-mode sizes: the first cell of every notebook calls `setup`."""

import contextlib
import os
import random
import time
from dataclasses import dataclass

import torch

MODES = ("quick", "cpu", "gpu")
_state = {"start": time.perf_counter()}


def pick_device() -> torch.device:
    """CUDA, then Apple MPS, then CPU; the environment variable DGM_DEVICE overrides."""
    wanted = os.environ.get("DGM_DEVICE", "").strip()
    if wanted:
        try:
            dev = torch.device(wanted)
            torch.empty(1, device=dev)  # fails here if that device is not usable
        except (RuntimeError, AssertionError) as err:
            raise RuntimeError(
                f"DGM_DEVICE={wanted!r} cannot be used on this machine ({err}). "
                "Unset DGM_DEVICE or set it to 'cpu', 'cuda' or 'mps'."
            ) from None
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def run_mode(device: torch.device | None = None) -> str:
    """'quick' when DGM_QUICK=1 (smoke sizes, the test suite), else 'gpu' or 'cpu' by device."""
    if os.environ.get("DGM_QUICK", "") not in ("", "0"):
        return "quick"
    device = device or pick_device()
    return "cpu" if device.type == "cpu" else "gpu"


def set_seed(seed: int) -> None:
    """Seed Python, torch and every CUDA device, so a notebook re-runs the same."""
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    mode: str
    seed: int

    def pick(self, *, quick, cpu, gpu):
        """The value for the current mode, e.g. `steps = rt.pick(quick=50, cpu=3000, gpu=20000)`."""
        return {"quick": quick, "cpu": cpu, "gpu": gpu}[self.mode]

    def autocast(self):
        """bf16 autocast on CUDA (tensor cores); a no-op elsewhere, where it rarely helps."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def setup(seed: int = 0, verbose: bool = True) -> Runtime:
    """Choose the device, seed everything, start the notebook's clock and say what was chosen."""
    device = pick_device()
    rt = Runtime(device=device, mode=run_mode(device), seed=seed)
    set_seed(seed)
    _state["start"] = time.perf_counter()
    _state["runtime"] = rt
    if verbose:
        threads = torch.get_num_threads()
        print(f"device {device} · mode {rt.mode} · seed {seed} · torch {torch.__version__} "
              f"· {threads} CPU thread{'s' * (threads > 1)}")
    return rt


def current() -> Runtime:
    """The Runtime from the last `setup` call (setting one up if the notebook has not)."""
    return _state.get("runtime") or setup(verbose=False)


def elapsed() -> float:
    """Seconds since `setup` was called: the notebook's wall time so far."""
    return time.perf_counter() - _state["start"]
