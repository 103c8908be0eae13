"""Datasets as tensors on the device (MNIST, Fashion-MNIST, CIFAR-10), binarisation and batching.

The whole split is one tensor on the device and a batch is a random index into it: no DataLoader,
no workers. The dataset root is the data setting (DGM_DATA), else `<repo>/data`;
helpers.datafiles verifies the files (and `make data` fetches or repairs them).
"""

from functools import lru_cache

import torch

from . import config
from .datafiles import DATASETS, DataError, fetch, how_to_get, problems, read
from .places import CHECKOUT, data_root, from_repo

__all__ = ["DataError", "batches", "binarize", "binarized_test_set", "data_root", "from_repo",
           "load", "optional_cifar10"]

@lru_cache(maxsize=8)
def _load_cpu(name: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    bad = problems(name)
    if bad and (all("missing" in problem for problem in bad.values()) or not CHECKOUT):
        fetch(name)  # downloads (or repairs, outside a clone, which has no `make data`); a clear
                     # DataError without internet
    elif bad:
        which = "" if name == "mnist" else f" DATASETS={name}"
        raise DataError(f"{name}: {'; '.join(bad.values())}. `make data{which}` replaces "
                        f"{'it' if len(bad) == 1 else 'them'}, from a local mirror with "
                        f"`make data{which} MIRROR=DIR`.")
    try:
        return read(name, train)  # (N, C, H, W) uint8, int64 labels
    except Exception as err:
        raise DataError(f"{name} could not be read from {data_root() / DATASETS[name][1]} "
                        f"({err}). {how_to_get(name)}") from None


def load(name: str = "mnist", split: str = "train", device=None, n: int | None = None):
    """(images, labels) of one split: float32 in [0, 1] of shape (N, C, H, W), int64 labels.

    `n` keeps the first n examples (quick mode). The result lives on `device` as one tensor.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    x, y = _load_cpu(name, split == "train")
    x, y = x[:n], y[:n]
    return x.to(device).float().div_(255), y.to(device)


def optional_cifar10(split: str = "train", device=None) -> torch.Tensor | None:
    """The notebooks' CIFAR-10 option: the images when DGM_CIFAR10=1 (a clear DataError when the
    data is absent or damaged), otherwise None, saying how to turn the option on."""
    if config.current().cifar10:
        return load("cifar10", split, device=device)[0]  # (N, 3, 32, 32)
    print("CIFAR-10 part skipped: set DGM_CIFAR10=1 (and run `make data DATASETS=cifar10`).")
    return None


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarisation: each pixel is 1 with probability equal to its intensity."""
    return torch.bernoulli(x, generator=generator)


def binarized_test_set(name: str = "mnist", device=None, n: int | None = None, seed: int = 0):
    """The test split binarised once with a fixed seed, so every NLL is on the same images."""
    x, y = load(name, "test", device="cpu", n=n)
    x = binarize(x, torch.Generator().manual_seed(seed))
    return x.to(device), y.to(device)


def batches(*tensors: torch.Tensor, batch_size: int, seed: int = 0):
    """Endless random-index batches over tensors that share their first dimension.

    Each epoch's order is drawn on the CPU from a seeded generator (the same batches on every
    device) and copied to the tensors' device once; a step only slices it there, so the host
    never waits for the device between steps.
    """
    n = len(tensors[0])
    gen = torch.Generator(device="cpu").manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=gen).to(tensors[0].device)  # one copy per epoch
        for start in range(0, n - batch_size + 1, batch_size) or [0]:
            idx = order[start:start + batch_size]
            yield tensors[0][idx] if len(tensors) == 1 else tuple(t[idx] for t in tensors)
