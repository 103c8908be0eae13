"""Device, precision, seed, run mode and per-mode sizes: the first cell of every notebook calls
`setup`, which prints what it chose.

Code here and in the notebooks never tests `device.type == "cuda"`: it asks the device's own torch
module (`torch.get_device_module`), so that the same lines serve CUDA, Apple MPS and the emulated
device the test suite runs on.
"""

import contextlib
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

from . import config, datafiles, places
from .errors import ConfigError


def pick_device(device: str = "") -> torch.device:
    """`device` ('cpu', 'cuda', 'mps', ...: DGM_DEVICE) if given and usable; else CUDA, then
    Apple MPS, then the CPU."""
    if device:
        try:
            dev = torch.device(device)
            torch.empty(1, device=dev)  # fails here if that device is not usable
        except (RuntimeError, AssertionError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            raise ConfigError(f"DGM_DEVICE={device!r} cannot be used on this machine ({reason}). "
                              "Unset DGM_DEVICE or set it to 'cpu', 'cuda' or 'mps'.") from None
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def run_mode(settings: config.Config, device: torch.device) -> str:
    """The mode the settings ask for (DGM_QUICK, DGM_MODE), else by device: 'gpu' on a CUDA GPU
    with native bf16 (compute capability 8.0 or more: A100, H100, L4, RTX 30xx and later), 'cpu'
    everywhere else. gpu mode's models are sized for such a card's bf16 tensor cores; a T4 or
    V100 would run them in float32, an estimated 35 minutes for 02 and 93 for 06 on a T4
    (docs/gpu-budget.md), so it, and Apple MPS, run the cpu mode's recipes on the GPU, in
    minutes."""
    bf16_gpu = device.type not in ("cpu", "mps") and autocast_dtype(device) is not None
    return settings.mode or ("gpu" if bf16_gpu else "cpu")


def device_name(device: torch.device) -> str:
    """'CPU', the GPU's name (e.g. 'Tesla T4'), or 'Apple MPS'."""
    if device.type == "cpu":
        return "CPU"
    if device.type == "mps":
        return "Apple MPS"
    return torch.get_device_module(device).get_device_name(device)


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX, the bf16 matrix units of Intel Xeons since the 4th generation
    (Sapphire Rapids), which oneDNN uses for bf16 matmuls and convolutions."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # torch >= 2.2
    return bool(probe and probe())


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where the device computes it natively, None (float32) everywhere else.

    Native bf16 means a CUDA GPU of compute capability >= 8.0 (A100, H100, RTX 30xx and later),
    or a CPU with AMX: on a 2-core Xeon with AMX a 2048² bf16 matmul ran 6.6x faster than float32,
    and cpu mode's models trained 1.1-3.4x faster (PixelCNN 3.4x, MADE 2.1x, DCGAN 1.8x, U-Net
    1.7x, VAE 1.5x) with every cpu target still met. A T4 or V100 (7.x) has no bf16 convolutions
    in cuDNN and would fall back to a kernel many times slower than float32. CPUs without AMX get
    float32: the same Xeon held to AVX512-BF16 (ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16, as a Cooper
    Lake or an AMD Zen 4 computes bf16) stepped slower in bf16 than in float32 (a 3-layer conv
    net 174 against 126 ms, an MLP 37 against 22 ms; bf16 matmul 230 against 416 GFLOP/s), and
    without bf16 instructions 3-5x slower. Apple MPS gets float32 too.
    """
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_amx() else None
    if device.type == "mps":
        return None
    capability = getattr(torch.get_device_module(device), "get_device_capability", None)
    major_minor = capability(device) if capability else None
    return torch.bfloat16 if isinstance(major_minor, tuple) and major_minor >= (8, 0) else None


def precision(device: torch.device) -> str:
    """What the notebooks train in on `device`, as the first cell prints it."""
    if autocast_dtype(device) is not None:
        return "bf16 autocast" + (" (AMX)" if device.type == "cpu" else "")
    if device.type not in ("cpu", "mps"):
        return "float32 (this GPU has no native bf16)"
    return "float32"


def autocast(device: torch.device):
    """bf16 autocast where `autocast_dtype` says so; a no-op elsewhere."""
    dtype = autocast_dtype(device)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    """How convolution weights are laid out in memory: channels last (N, H, W, C) on the CPU and
    GPUs, whose convolution libraries (oneDNN, cuDNN) run fastest that way; a convolution with such
    weights returns its output in the same layout, so the inputs need no change. Timed alone on a
    2-core CPU, a training step of 02's PixelCNN ran 45-50 % faster, 06's U-Net 7-12 %, 05's
    DCGAN 2-3 %. Apple's MPS keeps the default layout (not measured on one)."""
    return torch.contiguous_format if device.type == "mps" else torch.channels_last


def compiled(step: Callable, device: torch.device, mode: str) -> Callable:
    """`step` compiled into CUDA graphs in gpu mode on a CUDA GPU with Triton, else `step` itself.
    There a small model's step is a few hundred kernel launches that the host queues one by one;
    torch.compile(mode="reduce-overhead") fuses them and replays them as one graph. Not on the
    CPU (05's DCGAN stepped 25 % slower compiled there after a 23 s compile; 06's U-Net as fast
    as eager after 45 s), on Apple MPS or on an emulated device, and not in quick or cpu mode:
    the compile time would not pay back. `train.fit` compiles the function that computes a
    batch's loss (the notebook's loss and the model it calls), so the model stays as it is: its
    state dict, and so its checkpoint, is the same either way."""
    from torch.utils._triton import has_triton
    if not (mode == "gpu" and device.type == "cuda" and has_triton()):
        return step
    print("compiling the training step (torch.compile, CUDA graphs): its first steps are slow")
    return CompiledStep(step, lambda f: torch.compile(f, mode="reduce-overhead"))


class CompiledStep:
    """`step` compiled by `compiler`, called as `step` is. A call made while a dispatch mode is
    active (a FLOP counter, a debugging mode) runs `step` itself: torch.compile would skip the
    frame there, and never compile it afterwards. `calls` counts the calls that ran compiled."""

    def __init__(self, step: Callable, compiler: Callable[[Callable], Callable]):
        self.step, self.graphed, self.calls = step, compiler(step), 0

    def __call__(self, *args):
        if _get_current_dispatch_mode() is not None:
            return self.step(*args)
        torch.compiler.cudagraph_mark_step_begin()  # the last step's outputs may be overwritten
        self.calls += 1
        return self.graphed(*args)


def synchronize(device: torch.device) -> None:
    """Wait until the device has finished its queued work (a no-op on the CPU)."""
    if device.type != "cpu":
        torch.get_device_module(device).synchronize()


def set_seed(seed: int) -> None:
    """Seed Python and torch: the CPU and every accelerator, so a notebook re-runs the same."""
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    mode: str
    seed: int
    settings: config.Config = field(default_factory=config.Config)  # helpers.config
    started: float = field(default_factory=time.perf_counter, compare=False)

    def pick(self, *, quick, cpu, gpu):
        """A size for the current mode (widths, batch sizes, learning rates), e.g.
        `width = rt.pick(quick=16, cpu=32, gpu=64)`."""
        return {"quick": quick, "cpu": cpu, "gpu": gpu}[self.mode]

    def count(self, *, quick, cpu, gpu):
        """How much work for the current mode (steps, samples, repeats), e.g.
        `steps = rt.count(quick=50, cpu=3000, gpu=20000)`: `pick` for amounts rather than sizes,
        so that a reader (and a run that only tests the code) can tell the two apart."""
        return self.pick(quick=quick, cpu=cpu, gpu=gpu)

    def autocast(self):
        """bf16 autocast where the device does bf16 natively (`autocast_dtype`), else a no-op."""
        return autocast(self.device)

    @property
    def precision(self) -> str:
        return precision(self.device)

    def elapsed(self) -> float:
        """Seconds since `setup`: the notebook's wall time so far."""
        return time.perf_counter() - self.started

    def timed(self, fn: Callable, *args):
        """(fn(*args), seconds), the device synchronised before and after: the true time of the
        work, not the time to queue it."""
        synchronize(self.device)
        start = time.perf_counter()
        out = fn(*args)
        synchronize(self.device)
        return out, time.perf_counter() - start


def setup(seed: int = 0, verbose: bool = True) -> Runtime:
    """Read the settings (helpers.config), choose the device and mode, seed everything, start the
    notebook's clock and say what was chosen, which settings differ from the defaults, and how the
    course was found (a clone, or a package installed on a host, which then fetches MNIST here if
    it lacks it). The notebook passes the Runtime it returns (`rt`) to the helpers that need it."""
    settings = config.use(config.read())
    device = pick_device(settings.device)
    rt = Runtime(device=device, mode=run_mode(settings, device), seed=seed,
                 settings=settings)
    set_seed(seed)
    plt.style.use(Path(__file__).with_name("course.mplstyle"))  # figures that fit the column
    if verbose:
        threads = torch.get_num_threads()
        print(f"device {device} ({device_name(device)}) · {rt.precision} · mode {rt.mode} · "
              f"seed {seed} · torch {torch.__version__} · {threads} CPU "
              f"thread{'s' * (threads > 1)}")
        if settings.changed():
            print(f"settings: {settings.changed()}")
        if device.type != "cpu" and rt.mode == "cpu" and not settings.mode:
            print("cpu mode's recipes on this GPU: gpu mode's larger models are sized for bf16 "
                  "tensor cores (CUDA compute capability 8.0+), which it lacks; DGM_MODE=gpu "
                  "runs them, for far longer")
        print(places.where())
    if rt.mode == "gpu" and device.type == "cpu":
        warnings.warn("gpu mode on a CPU: the full gpu sizes take many times the cpu mode's "
                      "5 minutes per notebook here. Unset DGM_MODE for cpu mode.", stacklevel=2)
    if not places.CHECKOUT and datafiles.problems("mnist"):
        datafiles.fetch("mnist")  # a hosted Jupyter or a hub: the data every notebook needs
    return rt
