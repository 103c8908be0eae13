"""A generic training loop with a progress bar, and a checkpoint cache: load if saved, else train.

The loss being taught is written in the notebook and passed in as a function; this module only
runs the steps, keeps the history and stores the weights.
"""

import copy
import hashlib
import json
import os
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.utils._pytree import tree_map
from tqdm.auto import tqdm

from . import data, runtime, sources
from .datafiles import REPO


def fit(model: torch.nn.Module, loss_fn: Callable, batches: Iterator, num_steps: int,
        lr: float = 1e-3, optimizer: torch.optim.Optimizer | None = None, scheduler=None,
        desc: str = "training", log_every: int = 10, warmup_steps: int = 0,
        callback: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Run `num_steps` optimiser steps of `loss_fn(model, batch)` and return the loss history.

    `loss_fn` returns a scalar loss, or (loss, {name: value}) to log more terms (e.g. the
    reconstruction and KL terms of an ELBO). The history holds every term, every `log_every` steps,
    and "seconds" since the start (for throughput).
    `scheduler`, if given, is stepped after every optimiser step; `warmup_steps` > 0 instead
    raises the learning rate linearly over the first steps. Then `callback()` is called
    (06_diffusion updates an exponential moving average of the weights there).
    """
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    if warmup_steps and scheduler is None:
        ramp = lambda i: min(1.0, (i + 1) / warmup_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, ramp)
    device = next(model.parameters()).device
    history: dict[str, list[float]] = {"step": []}
    model.train()
    bar = tqdm(range(1, num_steps + 1), desc=desc, mininterval=0.5)
    start = time.perf_counter()
    for step in bar:
        with runtime.autocast(device):  # bf16 where the device does it natively
            out = loss_fn(model, next(batches))
        loss, terms = out if isinstance(out, tuple) else (out, {})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
        if callback is not None:
            callback()
        if step % log_every == 0 or step == num_steps:  # the only host-device syncs
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss.item()} by step {step}: lower the "
                                         "learning rate or look for a log of zero in the loss")
            history["step"].append(step)
            history.setdefault("seconds", []).append(time.perf_counter() - start)
            for name, value in {"loss": loss, **terms}.items():
                history.setdefault(name, []).append(float(torch.as_tensor(value).detach()))
            bar.set_postfix(loss=f"{history['loss'][-1]:.4g}", refresh=False)
    model.eval()
    return history


class EMA(torch.nn.Module):
    """A model being trained (`model`) with an exponential moving average of its weights
    (`average`), which samples better than the weights of the last step (taught in 06_diffusion,
    reused by 07_text_to_image). Pass `update` as `fit`'s callback: after each optimiser step it
    sets average = decay * average + (1 - decay) * weights in one fused operation on the device,
    without reading anything back to the host (torch's AveragedModel tests a step counter on the
    host at every update). Cache the EMA itself with `train_or_load`: both sets of weights."""

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


def checkpoint_dirs() -> list[Path]:
    """The folders searched for trained models, in order: DGM_CHECKPOINTS (several, separated by
    ':'; relative ones count from the repository), else <data folder>/checkpoints. New models go
    to the first folder that can be written, so a class lists a personal folder first and a
    shared read-only one after it (the README's "Teaching a class")."""
    folders = [p for p in os.environ.get("DGM_CHECKPOINTS", "").split(os.pathsep) if p.strip()]
    return [data.from_repo(p) for p in folders] or [data.data_root() / "checkpoints"]


def _digest(value) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def checkpoint_name(rt: runtime.Runtime, notebook: str, name: str, fingerprint: dict,
                    structure: str = "") -> str:
    """<notebook>-<name>-<hash of mode and model structure>-<hash of the fingerprint>.pt"""
    setting = _digest({"mode": rt.label, "model": structure})
    return f"{notebook}-{name}-{setting[:10]}-{_digest(fingerprint)[:8]}.pt"


def find(filename: str) -> Path | None:
    """The first saved copy of a checkpoint in checkpoint_dirs(), or None."""
    return next((d / filename for d in checkpoint_dirs() if (d / filename).is_file()), None)


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
    `train` and the model reach in the notebook (helpers.sources): their code, the values they use
    (learning rate, batch size, steps, ...), the optimizer's settings and the data. Quick runs never
    reuse full-mode weights; a changed loss, setting or exercise answer trains again, and unchanged
    ones load. DGM_RETRAIN=1 trains again. Either way the random generators are then seeded from
    `rt.seed` and the model's name, so the cells that follow draw the same numbers whether the
    model was trained (which draws many) or loaded. Returns the history that `train()` returned.
    """
    fingerprint = sources.fingerprint(train, model)
    filename = checkpoint_name(rt, notebook, name, fingerprint, str(model))
    names = sources.shown(fingerprint, kinds=("code",))
    yours = f" with your current {names}" if names else ""
    path = find(filename)
    if path is not None and not runtime.flag("DGM_RETRAIN"):
        problem = None
        try:
            saved = load(path)
        except Exception:  # truncated, overwritten, or not a checkpoint at all
            problem = "the file is damaged or is not a checkpoint"
        else:
            try:
                model.load_state_dict(saved["model"])  # copies CPU tensors onto the model's device
            except (KeyError, RuntimeError) as err:
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


def load(path: Path) -> dict:
    """A checkpoint's contents on the CPU (weights only: tensors and plain values)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def store(filename: str, obj: dict, folders: list[Path] | None = None) -> Path | None:
    """Save `obj` as `filename` in the first of `folders` (default: checkpoint_dirs()) that can
    be written, and return the path. If none can (a read-only class folder, a full disk), warn
    once and return None: the trained model stays in memory for this session."""
    problems = []
    for folder in folders or checkpoint_dirs():
        try:
            _write(folder / filename, obj)
            return folder / filename
        except (OSError, RuntimeError) as err:
            problems.append(f"{folder}: {str(err).splitlines()[0][:160]}")
    warnings.warn(f"could not save {filename} ({'; '.join(problems)}); the trained model is kept "
                  "in memory for this session. Point DGM_CHECKPOINTS (or DGM_DATA) at a writable "
                  "folder to keep it.", stacklevel=2)
    return None


def _write(path: Path, obj: dict) -> None:
    """torch.save a CPU copy of `obj` to a temporary file, then rename: a crash never leaves half
    a checkpoint, and the file loads on any device."""
    on_cpu = lambda v: v.detach().cpu() if isinstance(v, torch.Tensor) else v
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(path)
        torch.save(tree_map(on_cpu, obj), tmp)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_file():
            tmp.unlink()
        raise


def _remove_abandoned(path: Path) -> None:
    """Delete the temporary files of earlier saves of `path` whose process is gone (killed while
    saving); a save in progress in another live process is left alone."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:-len(".tmp")]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True
