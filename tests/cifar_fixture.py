"""Small CIFAR-10 files in CIFAR-10's own on-disk format, so that the real loader runs in tests.

`cifar-10-batches-py/` with `data_batch_1..5`, `test_batch` and `batches.meta`: pickles with the
real keys (`data`: uint8 rows of 3072 values, the red plane then green then blue; `labels`;
`batch_label`; `filenames`; the meta's `label_names`), as torchvision's CIFAR10 reads them. The
images are simple synthetic patterns (a coloured square per class on a noisy background), so a
model can learn them. Their checksums differ from the published ones: `write` returns them, and
the test suite hands them to helpers.datafiles through DGM_CHECKSUMS.

`python tests/cifar_fixture.py DIR` (what `make test` runs) writes DIR/cifar-10-batches-py,
DIR/checksums.json and a link DIR/MNIST to the real MNIST: a data folder for the notebook tests.
"""

import hashlib
import io
import json
import os
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np

FOLDER, ARCHIVE = "cifar-10-batches-py", "cifar-10-python.tar.gz"
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
COLOURS = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [0, 0, 128]])


def images(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """n images (n, 3072) uint8 in CIFAR's row layout, and their labels (0-9)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    pictures = rng.integers(0, 60, (n, 32, 32, 3))  # a dark, noisy background
    for i, (label, (top, left)) in enumerate(zip(labels, rng.integers(2, 18, (n, 2)),
                                                  strict=True)):
        pictures[i, top:top + 12, left:left + 12] = COLOURS[label]  # the class's square
    planes = pictures.astype(np.uint8).transpose(0, 3, 1, 2).reshape(n, 3072)  # R, G, B planes
    return planes, labels.tolist()


def _batch(n: int, seed: int, label: str) -> bytes:
    data, labels = images(n, seed)
    return pickle.dumps({"batch_label": label, "labels": labels, "data": data,
                         "filenames": [f"fixture_{seed}_{i}.png" for i in range(n)]})


def files(per_batch: int = 256) -> dict[str, bytes]:
    """{file name: content} of the whole folder: five training batches and one test batch."""
    out = {f"data_batch_{i}": _batch(per_batch, i, f"training batch {i} of 5")
           for i in range(1, 6)}
    out["test_batch"] = _batch(per_batch, 0, "testing batch 1 of 1")
    out["batches.meta"] = pickle.dumps({"num_cases_per_batch": per_batch, "num_vis": 3072,
                                        "label_names": NAMES})
    return out


def write(root: Path, per_batch: int = 256, folder: bool = True,
          tarball: bool = False) -> dict[str, str]:
    """Write the folder (and/or the official archive's layout) under root; return the checksums
    {path under root: md5} that DGM_CHECKSUMS takes."""
    content = files(per_batch)
    checksums = {f"{FOLDER}/{name}": hashlib.md5(blob).hexdigest()
                 for name, blob in content.items()}
    if folder:
        (root / FOLDER).mkdir(parents=True, exist_ok=True)
        for name, blob in content.items():
            (root / FOLDER / name).write_bytes(blob)
    if tarball:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, blob in content.items():
                info = tarfile.TarInfo(f"{FOLDER}/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
        root.mkdir(parents=True, exist_ok=True)
        (root / ARCHIVE).write_bytes(buffer.getvalue())
        checksums[ARCHIVE] = hashlib.md5(buffer.getvalue()).hexdigest()
    return checksums


def main(target: str) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from helpers import data  # the student's data folder, as the notebooks find it

    root = data.from_repo(target)
    checksums = write(root)
    (root / "checksums.json").write_text(json.dumps(checksums, indent=1))
    mnist = root / "MNIST"
    if not mnist.exists() and (data.data_root() / "MNIST").is_dir():
        os.symlink(data.data_root() / "MNIST", mnist)
    print(f"cifar fixture: {len(checksums)} files in {root / FOLDER} (CIFAR-10's format)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
