"""Datasets as tensors on the device (MNIST, Fashion-MNIST, CIFAR-10), binarisation and batching.

The whole split is one tensor on the device and a batch is a random index into it: no DataLoader,
no workers. The dataset root is $DGM_DATA, else `<repo>/data`. `python -m helpers.data fetch`
(what `make data` runs) downloads through torchvision or copies from a mirror in its layout.
"""

import argparse
import os
import shutil
import socket
import sys
from functools import lru_cache
from pathlib import Path

import torch
import torchvision

from . import runtime

REPO = Path(__file__).resolve().parent.parent
_IDX_SIZES = {  # uncompressed IDX files: 16-byte header + pixels, 8-byte header + labels
    "train-images-idx3-ubyte": 16 + 60000 * 28 * 28,
    "train-labels-idx1-ubyte": 8 + 60000,
    "t10k-images-idx3-ubyte": 16 + 10000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10000,
}
DATASETS = {  # name: (torchvision class, folder under the root, expected files and sizes)
    "mnist": (torchvision.datasets.MNIST, "MNIST", {f"raw/{k}": v for k, v in _IDX_SIZES.items()}),
    "fashion": (torchvision.datasets.FashionMNIST, "FashionMNIST",
                {f"raw/{k}": v for k, v in _IDX_SIZES.items()}),
    "cifar10": (torchvision.datasets.CIFAR10, "cifar-10-batches-py",
                {f"data_batch_{i}": None for i in range(1, 6)} | {"test_batch": None}),
}


class DataError(RuntimeError):
    """A dataset is missing or damaged; the message says what to run."""


def from_repo(path) -> Path:
    """A path from a setting: relative ones count from the repository, so that `make` (run in the
    repository) and a notebook's kernel (run in notebooks/) mean the same folder."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO / path


def data_root() -> Path:
    """$DGM_DATA, else <repo>/data."""
    return from_repo(os.environ.get("DGM_DATA") or REPO / "data")


def _check(name: str) -> str | None:
    """None if the dataset's files are all there with the right sizes, else what is wrong."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    _, folder, files = DATASETS[name]
    for rel, size in files.items():
        path = data_root() / folder / rel
        if not path.is_file():
            return f"missing: {path}"
        if size is not None and path.stat().st_size != size:
            return (f"damaged: {path} has {path.stat().st_size:,} bytes, expected {size:,} "
                    "(a truncated download or copy); delete it and fetch it again")
    return None


def _how_to_get(name: str) -> str:
    if name == "cifar10":
        return ("CIFAR-10 has no offline mirror: on a machine with internet run "
                "`make data DATASETS=cifar10`, or copy its `cifar-10-batches-py/` folder into "
                f"{data_root()}. The MNIST parts of the notebooks run without it.")
    return ("Run `make data` on a machine with internet, or `make data MIRROR=DIR` to copy it "
            f"from a local mirror in torchvision's layout (DIR/{DATASETS[name][1]}/raw/...). "
            "Set DGM_DATA to use another data folder.")


def fetch(name: str, mirror: str | Path | None = None) -> None:
    """Put dataset `name` under data_root(): copy from `mirror`, else download via torchvision."""
    cls, folder, files = DATASETS[name]
    if _check(name) is None:
        print(f"data: {name} is in place ({data_root() / folder})")
        return
    if mirror:
        for rel in files:
            src, dst = Path(mirror) / folder / rel, data_root() / folder / rel
            if not src.is_file():
                raise DataError(f"The mirror has no {src}. {_how_to_get(name)}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst.with_suffix(".part"))
            os.replace(dst.with_suffix(".part"), dst)  # no half-copied file is left behind
    else:
        old_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30)  # an offline machine answers quickly instead of hanging
        try:
            for train in (True, False):
                cls(str(data_root()), train=train, download=True)
        except Exception as err:  # torchvision raises many kinds: URLError, RuntimeError, ...
            reason = [line for line in str(err).splitlines() if line.strip()] or [repr(err)]
            raise DataError(f"{name} is not in {data_root()} and could not be downloaded "
                            f"({reason[-1].strip('<>')}).\n{_how_to_get(name)}") from None
        finally:
            socket.setdefaulttimeout(old_timeout)
    problem = _check(name)
    if problem:
        raise DataError(f"{name}: {problem}. {_how_to_get(name)}")
    print(f"data: {name} ready in {data_root() / folder}")


@lru_cache(maxsize=8)
def _load_cpu(name: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    problem = _check(name)
    if problem and problem.startswith("missing"):
        fetch(name)  # downloads on a machine with internet; a clear DataError otherwise
    elif problem:
        raise DataError(f"{name}: {problem}. {_how_to_get(name)}")
    cls = DATASETS[name][0]
    try:
        ds = cls(str(data_root()), train=train, download=False)
    except Exception as err:
        raise DataError(f"{name} could not be read from {data_root()} ({err}). "
                        f"Delete its folder and fetch it again. {_how_to_get(name)}") from None
    x = torch.as_tensor(ds.data)
    x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x.unsqueeze(1)  # (N, C, H, W) uint8
    return x.contiguous(), torch.as_tensor(ds.targets, dtype=torch.long)


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
    data is absent); with DGM_CIFAR10=standin, which only the test suite sets, 1,024 random images
    of its shape, so that the code runs (the numbers mean nothing and are never shown to a
    student); otherwise None, saying how to turn the option on."""
    if os.environ.get("DGM_CIFAR10", "").strip().lower() == "standin":
        return torch.rand(1024, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    if runtime.flag("DGM_CIFAR10"):
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Fetch the course datasets into the data folder.")
    parser.add_argument("command", choices=["fetch"])
    parser.add_argument("names", nargs="+", choices=sorted(DATASETS))
    parser.add_argument("--mirror", help="a local folder in torchvision's layout to copy from")
    args = parser.parse_args(argv)
    try:
        for name in args.names:
            fetch(name, args.mirror)
    except DataError as err:
        print(f"data: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
