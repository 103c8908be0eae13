"""The dataset files on disk: where they live, the checksums they must have, and making them whole.

`fetch` (what `make data` runs) replaces every missing, truncated or corrupt file, from a mirror
in torchvision's layout (or holding the dataset's official archive), else by downloading through
torchvision, and names each file it replaced. `read` gives a verified split as uint8 tensors:
MNIST's IDX files directly, CIFAR-10 through torchvision's reader. torchvision is imported only
there (its import takes seconds), so a notebook on MNIST starts without it.
"""

import errno
import hashlib
import json
import os
import socket
import tarfile
from functools import lru_cache
from pathlib import Path

import torch

from . import config, places
from .errors import CourseError
from .places import CHECKOUT, data_root, from_repo

_IDX = {"train-images-idx3-ubyte": 16 + 60000 * 28 * 28, "train-labels-idx1-ubyte": 8 + 60000,
        "t10k-images-idx3-ubyte": 16 + 10000 * 28 * 28, "t10k-labels-idx1-ubyte": 8 + 10000}
DATASETS = {  # name: (torchvision class, folder under the root, {file: (size, md5)}, archive)
    # MNIST and Fashion-MNIST: the md5 of the uncompressed IDX files that torchvision reads (its
    # own list is of the .gz downloads, which it checks when it downloads them).
    "mnist": ("MNIST", "MNIST", {f"raw/{k}": (v, m) for (k, v), m in zip(
        _IDX.items(), ["6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
                       "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637"],
        strict=True)}, None),
    "fashion": ("FashionMNIST", "FashionMNIST", {f"raw/{k}": (v, m) for (k, v),
                m in zip(_IDX.items(), ["f4a8712d7a061bf5bd6d2ca38dc4d50a",
                                        "9018921c3c673c538a1fc5bad174d6f9",
                                        "8181f5470baa50b63fa0f6fddb340f0a",
                                        "15d484375f8d13e6eb1aabb0c3f46965"], strict=True)}, None),
    # CIFAR-10: the md5 of every batch file and of the archive, as torchvision publishes them
    # (tests/test_data.py compares this table with torchvision's).
    "cifar10": ("CIFAR10", "cifar-10-batches-py", {f: (None, m) for f, m in [
        ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        ("data_batch_4", "634d18415352ddfa80567beed471001a"),
        ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ("test_batch", "40351d587109b95175f43aff81a1287e"),
        ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888")]},
        ("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")),
}


class DataError(CourseError):
    """A dataset is missing or damaged; the message names the file and says what to run."""


def _expected_md5(relative: str, published: str | None) -> str | None:
    """The md5 a file must have: the published one, unless $DGM_CHECKSUMS (a JSON file of
    {path under the data folder: md5}) names another: a course's own copy, or the test suite's
    small CIFAR-10 files in the real format."""
    table = config.current().checksums
    return json.loads(from_repo(table).read_text()).get(relative, published) if table \
        else published


@lru_cache(maxsize=64)
def _md5(path: Path, size: int, mtime_ns: int) -> str:  # keyed by size and time: a change rehashes
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_problem(path: Path, relative: str, size: int | None, md5: str | None) -> str | None:
    """None if the file is whole, else what is wrong with it, naming it."""
    if path.is_dir():
        return f"{path} is a folder where the data file should be (remove that folder)"
    if not path.is_file():
        return f"{path} is missing"
    if not os.access(path, os.R_OK):
        return (f"{path} cannot be read (permission denied: ask whoever set up the data folder, "
                "or point DGM_DATA at a copy of your own)")
    stat = path.stat()
    if size is not None and stat.st_size != size:
        return f"{path} is truncated or damaged ({stat.st_size:,} bytes, expected {size:,})"
    md5 = _expected_md5(relative, md5)
    if md5 and _md5(path, stat.st_size, stat.st_mtime_ns) != md5:
        return f"{path} is corrupt (its md5 checksum differs from the published one)"
    return None


def problems(name: str, root: Path | None = None) -> dict[str, str]:
    """{file under the dataset folder: what is wrong} for every file not whole."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    _, folder, files, _ = DATASETS[name]
    root = root or data_root()
    found = {rel: _file_problem(root / folder / rel, f"{folder}/{rel}", size, md5)
             for rel, (size, md5) in files.items()}
    return {rel: problem for rel, problem in found.items() if problem}


def how_to_get(name: str) -> str:
    folder = DATASETS[name][1]
    if not CHECKOUT:  # a hosted Jupyter or a hub: no make, maybe no internet
        return ("Run this cell again with internet access (on Kaggle: Settings → Internet on), or "
                f"set DGM_DATA to a folder that holds {folder}/ (DGM_MIRROR: one to copy from).")
    if name == "cifar10":
        return ("Run `make data DATASETS=cifar10` on a machine with internet, or `make data "
                f"DATASETS=cifar10 MIRROR=DIR` with DIR holding {folder}/ or "
                f"{DATASETS[name][3][0]}. The MNIST parts of the notebooks run without it.")
    return ("Run `make data` on a machine with internet, or `make data MIRROR=DIR` to copy it "
            f"from a local mirror in torchvision's layout (DIR/{folder}/raw/...). "
            "Set DGM_DATA to use another data folder.")


def _copy_from(mirror: Path, name: str, bad: dict[str, str]) -> None:
    """Replace the `bad` files from a mirror folder (or from the dataset's archive in it)."""
    _, folder, files, archive = DATASETS[name]
    if archive and not (mirror / folder).is_dir() and (mirror / archive[0]).is_file():
        problem = _file_problem(mirror / archive[0], archive[0], None, archive[1])
        if problem:
            raise DataError(f"The mirror's archive: {problem}. {how_to_get(name)}")
        with tarfile.open(mirror / archive[0]) as tar:
            for rel in bad:
                member = tar.extractfile(f"{folder}/{rel}")
                _write_whole(member.read(), data_root() / folder / rel)
        return
    for rel in bad:
        src = mirror / folder / rel
        problem = _file_problem(src, f"{folder}/{rel}", *files[rel])
        if problem:
            raise DataError(f"The mirror cannot repair it: {problem}. {how_to_get(name)}")
        _write_whole(src.read_bytes(), data_root() / folder / rel)


def _write_whole(content: bytes, path: Path) -> None:
    try:  # no half-copied file is ever left under the real name
        places.write_atomic(path, lambda tmp: tmp.write_bytes(content))
    except OSError as err:
        raise DataError(f"{path} could not be written ({os_reason(err)}).") from None


def os_reason(err: OSError) -> str:
    """An OSError in words: a full disk and a missing permission named as such."""
    if err.errno == errno.ENOSPC:
        return "no space left on the device: free some, then try again"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied: this folder cannot be written; set DGM_DATA to one that can"
    return err.strerror or str(err)


def fetch(name: str, mirror: str | Path | None = None) -> None:
    """Make dataset `name` whole under data_root(): every missing, truncated or corrupt file is
    replaced, from `mirror` (default $DGM_MIRROR: an offline hub's copy) when there is one, else
    by downloading through torchvision."""
    cls, folder, _, _ = DATASETS[name]
    mirror = mirror or config.current().mirror
    bad = problems(name)
    stuck = [problem for problem in bad.values() if "folder where" in problem or "be read" in
             problem]
    if stuck:  # fetching cannot mend these: say so before downloading anything
        raise DataError(f"{name}: {stuck[0]}.")
    if not bad:
        print(f"data: {name} is in place ({data_root() / folder}; sizes and checksums verified)")
        return
    if mirror:
        _copy_from(from_repo(mirror), name, bad)
    else:
        for rel in bad:  # torchvision downloads only what is absent
            (data_root() / folder / rel).unlink(missing_ok=True)
        old_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30)  # an offline machine answers quickly instead of hanging
        try:
            import torchvision

            for train in (True, False):
                getattr(torchvision.datasets, cls)(str(data_root()), train=train, download=True)
        except Exception as err:  # torchvision raises many kinds: URLError, RuntimeError, ...
            reason = [line for line in str(err).splitlines() if line.strip()] or [repr(err)]
            raise DataError(f"{name}: {next(iter(bad.values()))}, and it could not be downloaded "
                            f"({reason[-1].strip('<>')}).\n{how_to_get(name)}") from None
        finally:
            socket.setdefaulttimeout(old_timeout)
    for rel, problem in bad.items():
        if "missing" not in problem:
            was = problem.split(" is ", 1)[1]
            print(f"data: replaced {data_root() / folder / rel} (it was {was})")
    still = problems(name)
    if still:
        raise DataError(f"{name}: {next(iter(still.values()))}. {how_to_get(name)}")
    print(f"data: {name} ready in {data_root() / folder} (sizes and checksums verified)")


def read(name: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, C, H, W) uint8, labels int64) of a split whose files `problems` has verified."""
    folder = data_root() / DATASETS[name][1]
    if name == "cifar10":
        import torchvision

        class Verified(torchvision.datasets.CIFAR10):  # the files are verified above, against
            meta = {**torchvision.datasets.CIFAR10.meta, "md5": None}  # the published or the
                                                                       # DGM_CHECKSUMS md5s
            def _check_integrity(self) -> bool:
                return True

        ds = Verified(str(data_root()), train=train, download=False)
        return torch.as_tensor(ds.data).permute(0, 3, 1, 2).contiguous(), torch.as_tensor(
            ds.targets, dtype=torch.long)
    prefix = "train" if train else "t10k"
    images = _idx(folder / f"raw/{prefix}-images-idx3-ubyte", 2051)
    return images.unsqueeze(1), _idx(folder / f"raw/{prefix}-labels-idx1-ubyte", 2049).long()


def _idx(path: Path, magic: int) -> torch.Tensor:
    """An IDX file of unsigned bytes (MNIST's format): a big-endian header, then the array."""
    raw = path.read_bytes()
    found, dims = int.from_bytes(raw[:4], "big"), raw[3]
    if found != magic:
        raise ValueError(f"{path} is not an IDX file of type {magic} (its header says {found})")
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return torch.frombuffer(bytearray(raw[4 + 4 * dims:]), dtype=torch.uint8).view(shape)
