"""The files of the checkpoint cache: where trained models are kept (DGM_CHECKPOINTS, else
<data folder>/checkpoints), and saving them so that a crash or a read-only folder loses nothing.
`train.train_or_load` decides what to load or train; this module only reads and writes.
"""

import shutil
import warnings
from pathlib import Path

import torch
from torch.utils._pytree import tree_map

from . import config, datafiles, places


def checkpoint_dirs() -> list[Path]:
    """The folders searched for trained models, in order: DGM_CHECKPOINTS (several, separated by
    ':'; relative ones count from the repository), else <data folder>/checkpoints (after the
    user's ~/dgm-course/checkpoints when the clone is read-only). New models go
    to the first folder that can be written, so a class lists a personal folder first and a
    shared read-only one after it (the README's "Teaching a class")."""
    folders = config.current().checkpoints
    if folders:
        return [places.from_repo(p) for p in folders]
    default = places.data_root() / "checkpoints"
    if places.CHECKOUT and places.home() != places.REPO:  # a read-only clone: its models
        return [places.home() / "checkpoints", default]  # load, new ones go to the user's
    return [default]


def find(filename: str) -> Path | None:
    """The first saved copy of a checkpoint in checkpoint_dirs(), or None."""
    return next((d / filename for d in checkpoint_dirs() if (d / filename).is_file()), None)


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
            problems.append(f"{folder}: {_reason(err, folder)}")
    warnings.warn(f"could not save {filename} ({'; '.join(problems)}); the trained model is kept "
                  "in memory for this session. Point DGM_CHECKPOINTS (or DGM_DATA) at a writable "
                  "folder to keep it.", stacklevel=2)
    return None


def _reason(err: Exception, folder: Path) -> str:
    """Why a save failed, in words: torch's "unexpected pos" is a write cut short by a full disk."""
    if isinstance(err, OSError):
        return datafiles.os_reason(err)
    try:
        full = shutil.disk_usage(folder).free < 64 << 20
    except OSError:
        full = False
    if full or "unexpected pos" in str(err):
        return "no space left on the device: free some, then run the cell again"
    return str(err).splitlines()[0][:160]


def _write(path: Path, obj: dict) -> None:
    """torch.save a CPU copy of `obj`, atomically: a crash never leaves half a checkpoint, and the
    file loads on any device."""
    on_cpu = lambda v: v.detach().cpu() if isinstance(v, torch.Tensor) else v
    places.write_atomic(path, lambda tmp: torch.save(tree_map(on_cpu, obj), tmp))
