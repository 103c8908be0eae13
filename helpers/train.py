"""A generic training loop with a progress bar and a meter, its optimiser and schedule, and the
checkpoint cache's keys: load if saved, else train (the files are helpers.checkpoints).

The loss being taught is written in the notebook and passed in as a function; this module only
runs the steps, keeps the history and stores the weights.
"""

import contextlib
import copy
import math
import time
import warnings
import zlib
from collections.abc import Callable, Iterator

import torch
from tqdm.auto import tqdm

from . import config, places, runtime, sources
from .checkpoints import checkpoint_dirs, find, load, store
from .places import REPO


def adam(params, lr: float, **settings) -> torch.optim.Adam:
    """Adam, in PyTorch's fused form where the device has one (the CPU and CUDA): one kernel
    updates every tensor, where the default form runs a few per tensor. On the 2-core CPU the
    course's small models step 1.1-1.4x faster with it (02's MADE: 13,500 -> 16,900 images/s)."""
    params = list(params)
    device = (params[0]["params"][0] if isinstance(params[0], dict) else params[0]).device
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"), **settings)


def fit(model: torch.nn.Module, loss_fn: Callable, batches: Iterator, num_steps: int,
        lr: float = 1e-3, optimizer: torch.optim.Optimizer | None = None, scheduler=None,
        desc: str = "training", log_every: int = 10, warmup_steps: int = 0,
        callback: Callable[[], None] | None = None,
        compile: bool = False, autocast: bool = True) -> dict[str, list[float]]:
    """Run `num_steps` optimiser steps of `loss_fn(model, batch)` and return the loss history.

    `loss_fn` returns a scalar loss, or (loss, {name: value}) to log more terms (e.g. the
    reconstruction and KL terms of an ELBO). The history holds `step` and every term every
    `log_every` steps.
    `scheduler`, if given, is stepped after every optimiser step; `warmup_steps` > 0 instead
    raises the learning rate linearly over the first steps. Then `callback()` is called
    (06_diffusion updates an exponential moving average of the weights there).
    `compile=True` compiles the loss and its gradient into CUDA graphs in gpu mode on a CUDA GPU
    (`runtime.compiled`; elsewhere it changes nothing): for long runs of small models, whose
    steps are launch-bound, not for short ones, which would not earn back the compile time. If the
    compiler fails in its first calls (compiling, then recording the CUDA graphs), training goes
    on uncompiled, with a warning. `autocast=False` trains in
    float32 on every device (the reference classifier, which must not depend on the machine's).
    """
    opt = optimizer or adam(model.parameters(), lr=lr)
    if warmup_steps and scheduler is None:
        ramp = lambda i: min(1.0, (i + 1) / warmup_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, ramp)
    device = next(model.parameters()).device
    history: dict[str, list[float]] = {}
    model.train()

    dtype = runtime.autocast_dtype(device) if autocast else None  # bf16 where native
    # (decided here, not in the step: a compiled step would break its graph at that call)

    def eager(batch):
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            out = loss_fn(model, batch)
        return out if isinstance(out, tuple) else (out, {})

    def gradients(forward, batch):
        loss, terms = forward(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        return loss, terms

    mode = runtime.run_mode(config.current(), device)
    forward = runtime.compiled(eager, device, mode) if compile else eager
    bar = tqdm(range(1, num_steps + 1), desc=desc, mininterval=0.5)
    for step in bar:
        batch = next(batches)
        started, compiled_calls = time.perf_counter(), getattr(forward, "calls", None)
        try:
            loss, terms = gradients(forward, batch)
        except Exception as err:  # a compiler that fails on this machine: train uncompiled
            if compiled_calls is None or compiled_calls >= 3:  # compiling, and recording the
                raise  # CUDA graphs, happen in the first compiled calls
            reason = " ".join(str(err).split())[:160]
            warnings.warn(f"the compiled training step failed ({type(err).__name__}: {reason}); "
                          "training without compiling", stacklevel=2)
            forward = eager
            loss, terms = gradients(forward, batch)
        if compiled_calls == 0 and forward is not eager and forward.calls == 1:  # said once
            runtime.synchronize(device)
            print(f"compiled the training step in {time.perf_counter() - started:.0f} s")
        opt.step()
        if scheduler is not None:
            scheduler.step()
        if callback is not None:
            callback()
        if step % log_every == 0 or step == num_steps:  # the only host-device syncs
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss.item()} by step {step}: lower the "
                                         "learning rate or look for a log of zero in the loss")
            log(history, step=step, loss=loss, **terms)
            bar.set_postfix(loss=f"{history['loss'][-1]:.4g}", refresh=False)
    model.eval()
    return history


def log(history: dict, **terms) -> None:
    """Append each term to its list in `history` (tensors are read back: a host-device sync)."""
    for name, value in terms.items():
        history.setdefault(name, []).append(float(torch.as_tensor(value).detach()))


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """The learning rate rises linearly over `warmup_steps`, then falls along a cosine to 0 at
    `total_steps`: large steps while far from a minimum, small ones to settle in it. Step it once
    per optimiser step (`fit`'s `scheduler`)."""
    def factor(i):
        if i < warmup_steps:
            return (i + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (i - warmup_steps)
                                                 / max(1, total_steps - warmup_steps))))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class EMA(torch.nn.Module):
    """A model being trained (`model`) with an exponential moving average of its weights
    (`average`), which samples better than the weights of the last step (taught in 06_diffusion,
    reused by 07_text_to_image). Pass `update` as `fit`'s callback: after each optimiser step it
    sets average = decay * average + (1 - decay) * weights in one fused operation on the device,
    without reading anything back to the host (torch's AveragedModel tests a step counter on the
    host at every update). Buffers (batch norm's running statistics) are copied, not averaged:
    they were gathered with the model's weights, so a model with batch norm measures them again
    for the average (05_gan: `torch.optim.swa_utils.update_bn`). Cache the EMA itself with
    `train_or_load`: both sets of weights."""

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__()
        self.model = model
        self.average = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay

    def extra_repr(self) -> str:
        return f"decay={self.decay}"  # part of the model's structure, so of its checkpoint's name

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(list(self.average.parameters()), list(self.model.parameters()),
                             1 - self.decay)
        for mine, theirs in zip(self.average.buffers(), self.model.buffers(), strict=True):
            mine.copy_(theirs)


def checkpoint_name(rt: runtime.Runtime, notebook: str, name: str, fingerprint: dict,
                    structure: str = "") -> str:
    """<notebook>-<name>-<hash of mode and model structure>-<hash of the fingerprint>.pt"""
    setting = places.digest({"mode": rt.mode, "model": structure})
    return f"{notebook}-{name}-{setting[:10]}-{places.digest(fingerprint)[:8]}.pt"


def _changed(filename: str, fingerprint: dict) -> str:
    """What differs from the newest model saved with the same mode and structure: the names of
    functions, values, data or other models ('' when there is no such model)."""
    setting = filename.rsplit("-", 1)[0]
    for path in sorted((p for d in checkpoint_dirs() for p in d.glob(f"{setting}-*.pt")),
                       key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            before = load(path).get("fingerprint", {})
        except Exception:  # damaged: another file may tell
            continue
        changed = {n: d for n, d in fingerprint.items() if before.get(n) != d}
        only_buffers = set(changed) == {"buffers:model"}
        return sources.shown(changed) or ("the model's buffers" if only_buffers else
                                          "the training call")  # a lambda's arguments
    return ""


def train_or_load(rt: runtime.Runtime, notebook: str, name: str, model: torch.nn.Module,
                  train: Callable[[], dict]) -> dict:
    """Load `model`'s weights and history from the cache if present, else call `train()` and save.

    The key is built from the mode, the model's structure and the fingerprint of everything
    `train` and the model reach (helpers.sources): the code of the notebook's functions and of the
    course's helpers they use, the values they use (learning rate, batch size, steps, ...), the
    optimizer's settings and the data. Quick runs never
    reuse full-mode weights; a changed loss, setting or exercise answer trains again, and unchanged
    ones load. DGM_RETRAIN=1 trains again. The model's convolution weights are first put in the
    device's fastest layout (`runtime.memory_format`; the state dict's keys and values are the
    same in any layout). Either way the random generators are then seeded from
    `rt.seed` and the model's name, so the cells that follow draw the same numbers whether the
    model was trained (which draws many) or loaded. Returns the history that `train()` returned.
    """
    model.to(memory_format=runtime.memory_format(next(model.parameters()).device))  # fast layout
    fingerprint = sources.fingerprint(train, model)
    filename = checkpoint_name(rt, notebook, name, fingerprint, str(model))
    names = sources.shown(fingerprint, kinds=("code",), course=False)
    yours = f" with your current {names}" if names else ""
    path = find(filename)
    if path is not None and not rt.settings.retrain:
        problem = None
        try:
            saved = load(path)
        except Exception:  # truncated, overwritten, or not a checkpoint at all
            problem = "the file is damaged or is not a checkpoint"
        else:
            try:  # trusted by content, not by name: a file copied over another model's name
                if saved.get("fingerprint") != fingerprint:
                    raise RuntimeError("its stored fingerprint is not the one asked for")
                model.load_state_dict(saved["model"])  # copies CPU tensors onto the model's device
            except (KeyError, RuntimeError, AttributeError) as err:
                problem = f"it holds another model: {str(err).splitlines()[0][:120]}"
        if problem is None:
            model.eval()
            where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            print(f"loaded {name} from {where} (trained{yours}; DGM_RETRAIN=1 trains it again)")
            _reseed(rt, filename)
            return saved["history"]
        warnings.warn(f"could not load the saved {name} from {path} ({problem}); training again, "
                      "and a new file will be saved", stacklevel=2)
    elif path is None and (changed := _changed(filename, fingerprint)):
        print(f"training {name} again: {changed} changed since the saved model")
    history = train()
    store(filename, {"model": model.state_dict(), "fingerprint": fingerprint, "history": history})
    _reseed(rt, filename)
    return history


def _reseed(rt: runtime.Runtime, filename: str) -> None:
    runtime.set_seed(rt.seed + zlib.crc32(filename.rsplit("-", 1)[0].encode()))
