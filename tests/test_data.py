"""Datasets as tensors, binarisation, batching, and the clear errors for missing or damaged data."""

import json
import shutil
import socket
from pathlib import Path

import cifar_fixture
import pytest
import torch

from helpers import data, datafiles, places, runtime
from tools.fetch_data import main as fetch_command

REPO = places.REPO
MNIST_RAW = data.data_root() / "MNIST" / "raw"


def test_mnist_is_float_images_in_unit_range_with_labels():
    x, y = data.load("mnist", "train")
    assert x.shape == (60000, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == 0 and x.max() == 1 and y.dtype == torch.int64
    assert torch.equal(torch.bincount(y).gt(5000), torch.ones(10, dtype=torch.bool))
    xt, _ = data.load("mnist", "test", n=100)
    assert xt.shape == (100, 1, 28, 28)


@pytest.mark.xdist_group("torchvision")  # one worker pays for its import (seconds)
def test_the_own_readers_agree_with_torchvision():
    """MNIST is read from its IDX files without torchvision (whose import takes seconds in every
    kernel): the same tensors as torchvision's reader, and the same CIFAR-10 checksums."""
    import torchvision

    x, y = data.load("mnist", "test")
    theirs = torchvision.datasets.MNIST(str(data.data_root()), train=False)
    assert torch.equal((x * 255).round().to(torch.uint8).squeeze(1), theirs.data)
    assert torch.equal(y, theirs.targets)
    cifar = torchvision.datasets.CIFAR10
    published = {f: m for f, m in [*cifar.train_list, *cifar.test_list,
                                   (cifar.meta["filename"], cifar.meta["md5"])]}
    _, folder, files, archive = datafiles.DATASETS["cifar10"]
    assert (folder, {f: m for f, (_, m) in files.items()}) == (cifar.base_folder, published)
    assert archive == (cifar.filename, cifar.tgz_md5)


def test_binarisation_is_dynamic_for_training_and_fixed_for_the_test_set():
    x, _ = data.load("mnist", "test", n=500)
    a, b = data.binarize(x), data.binarize(x)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)
    assert (a.mean() - x.mean()).abs() < 0.01  # E[binarised pixel] = intensity
    t1, y1 = data.binarized_test_set(n=500)
    t2, y2 = data.binarized_test_set(n=500)
    assert torch.equal(t1, t2) and torch.equal(y1, y2)


def test_batches_are_random_index_batches_covering_each_epoch():
    x = torch.arange(100).float()
    y = -torch.arange(100)
    it = data.batches(x, y, batch_size=10)
    seen = torch.cat([next(it)[0] for _ in range(10)])
    assert torch.equal(seen.sort().values, x)  # one epoch: every example once
    xb, yb = next(it)
    assert torch.equal(yb, -xb.long())  # tensors stay aligned
    assert len(next(data.batches(x[:3], batch_size=10))) == 3  # fewer examples than one batch


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_missing_data_without_network_names_make_data_and_the_mirror(tmp_path, monkeypatch,
                                                                     offline):
    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    data._load_cpu.cache_clear()
    with pytest.raises(data.DataError) as info:
        data.load("mnist", "train")
    message = str(info.value)
    assert "make data" in message and "MIRROR" in message and "DGM_DATA" in message
    data._load_cpu.cache_clear()


def test_cifar10_absent_fails_clearly(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    with pytest.raises(data.DataError, match=r"make data DATASETS=cifar10 MIRROR=DIR"):
        data.load("cifar10", "train")


@pytest.fixture
def mnist_mirror(tmp_path, monkeypatch):
    """An empty data folder, and the real MNIST as a mirror in torchvision's layout."""
    monkeypatch.setenv("DGM_DATA", str(tmp_path / "root"))
    data._load_cpu.cache_clear()
    yield REPO / "data"
    data._load_cpu.cache_clear()


def test_make_data_copies_from_a_mirror_and_repairs_a_truncated_or_corrupt_file(
        mnist_mirror, tmp_path, capsys):
    assert fetch_command(["fetch", "mnist", "--mirror", str(tmp_path / "nowhere")]) == 1
    assert "nowhere/MNIST/raw/train-images-idx3-ubyte is missing" in capsys.readouterr().err
    assert fetch_command(["fetch", "mnist", "--mirror", str(mnist_mirror)]) == 0
    assert data.load("mnist", "test", n=10)[0].shape == (10, 1, 28, 28)
    raw = tmp_path / "root" / "MNIST" / "raw"
    truncated, corrupt = raw / "t10k-images-idx3-ubyte", raw / "train-labels-idx1-ubyte"
    truncated.write_bytes(truncated.read_bytes()[:1000])  # a broken download
    corrupt.write_bytes(bytes(corrupt.stat().st_size))  # the right size, the wrong bytes
    for split, path, what in [("test", truncated, "truncated"), ("train", corrupt, "corrupt")]:
        data._load_cpu.cache_clear()
        with pytest.raises(data.DataError, match=rf"{path} is {what}.*`make data`"):
            data.load("mnist", split)
    capsys.readouterr()
    assert fetch_command(["fetch", "mnist", "--mirror", str(mnist_mirror)]) == 0
    out = capsys.readouterr().out
    assert f"replaced {truncated} (it was truncated" in out and f"replaced {corrupt}" in out
    data._load_cpu.cache_clear()
    assert data.load("mnist", "train")[1].shape == (60000,)


def test_a_damaged_mirror_is_named_and_not_copied(mnist_mirror, tmp_path, capsys):
    mirror = tmp_path / "mirror" / "MNIST" / "raw"
    mirror.mkdir(parents=True)
    for path in (mnist_mirror / "MNIST" / "raw").iterdir():
        (mirror / path.name).write_bytes(path.read_bytes())
    (mirror / "t10k-labels-idx1-ubyte").write_bytes(bytes(10008))
    assert fetch_command(["fetch", "mnist", "--mirror", str(tmp_path / "mirror")]) == 1
    assert f"{mirror / 't10k-labels-idx1-ubyte'} is corrupt" in capsys.readouterr().err


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    """The CIFAR-10 fixture's checksums in effect (as in the notebook tests), DGM_CIFAR10=1."""
    monkeypatch.setenv("DGM_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("DGM_CIFAR10", "1")
    checksums = cifar_fixture.write(tmp_path / "mirror", per_batch=64, tarball=True)
    (tmp_path / "checksums.json").write_text(json.dumps(checksums))
    monkeypatch.setenv("DGM_CHECKSUMS", str(tmp_path / "checksums.json"))
    data._load_cpu.cache_clear()
    yield tmp_path / "mirror"
    data._load_cpu.cache_clear()


@pytest.mark.xdist_group("torchvision")
def test_cifar10_reads_through_torchvision_from_files_in_its_own_format(cifar, tmp_path):
    shutil.copytree(cifar / cifar_fixture.FOLDER, tmp_path / "root" / cifar_fixture.FOLDER)
    x, x_test = data.optional_cifar10("train"), data.optional_cifar10("test")
    assert x.shape == (5 * 64, 3, 32, 32) and x_test.shape == (64, 3, 32, 32)
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    _, labels = data.load("cifar10", "test")
    planes, want = cifar_fixture.images(64, seed=0)  # the test batch, in CIFAR's row layout
    assert labels.tolist() == want
    assert torch.equal((x_test * 255).round().to(torch.uint8).flatten(1),
                       torch.from_numpy(planes))  # red, green and blue planes in place


def test_make_data_cifar10_from_a_mirror_folder_or_the_official_archive(cifar, tmp_path, capsys):
    assert fetch_command(["fetch", "cifar10", "--mirror", str(cifar)]) == 0
    assert data.load("cifar10", "train")[0].shape == (320, 3, 32, 32)
    shutil.rmtree(tmp_path / "root")
    shutil.rmtree(cifar / cifar_fixture.FOLDER)  # the mirror holds only cifar-10-python.tar.gz
    data._load_cpu.cache_clear()
    assert fetch_command(["fetch", "cifar10", "--mirror", str(cifar)]) == 0
    assert data.load("cifar10", "test")[0].shape == (64, 3, 32, 32)
    batch = tmp_path / "root" / cifar_fixture.FOLDER / "data_batch_3"
    blob = bytearray(batch.read_bytes())
    blob[-100:] = bytes(100)  # damaged in place: the same size
    batch.write_bytes(bytes(blob))
    data._load_cpu.cache_clear()
    with pytest.raises(data.DataError, match=rf"{batch} is corrupt"):
        data.load("cifar10", "train")
    capsys.readouterr()
    assert fetch_command(["fetch", "cifar10", "--mirror", str(cifar)]) == 0
    assert f"replaced {batch} (it was corrupt" in capsys.readouterr().out
    data._load_cpu.cache_clear()
    assert data.load("cifar10", "train")[0].shape == (320, 3, 32, 32)


def test_without_its_checksums_the_fixture_is_not_cifar10(cifar, tmp_path, monkeypatch):
    shutil.copytree(cifar / cifar_fixture.FOLDER, tmp_path / "root" / cifar_fixture.FOLDER)
    monkeypatch.delenv("DGM_CHECKSUMS")  # a student's machine: the published checksums apply
    with pytest.raises(data.DataError, match="data_batch_1 is corrupt"):
        data.optional_cifar10()


def test_the_cifar10_option_is_off_unless_asked_for(monkeypatch, capsys):
    monkeypatch.delenv("DGM_CIFAR10", raising=False)
    assert data.optional_cifar10() is None
    assert "DGM_CIFAR10=1" in capsys.readouterr().out


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="split"):
        data.load("mnist", "validation")


def test_a_relative_data_folder_counts_from_the_repository(monkeypatch):
    monkeypatch.setenv("DGM_DATA", "some/folder")
    monkeypatch.chdir(REPO / "notebooks")  # where a notebook's kernel runs
    assert data.data_root() == REPO / "some" / "folder"
    monkeypatch.setenv("DGM_DATA", "/abs/folder")
    assert data.data_root() == Path("/abs/folder")


def test_the_hint_names_the_dataset_s_own_folder():
    assert "DIR/FashionMNIST/raw" in datafiles.how_to_get("fashion")
    assert "DIR/MNIST/raw" in datafiles.how_to_get("mnist")


def test_a_folder_where_a_data_file_should_be_is_named_and_leaves_nothing(mnist_mirror, tmp_path,
                                                                          capsys):
    raw = tmp_path / "root" / "MNIST" / "raw"
    (raw / "t10k-labels-idx1-ubyte").mkdir(parents=True)
    with pytest.raises(data.DataError) as info:
        data.load("mnist", "test")
    assert "is a folder where the data file should be" in str(info.value)
    assert info.value._render_traceback_()[0].startswith("\x1b[31mDataError")
    assert fetch_command(["fetch", "mnist", "--mirror", str(mnist_mirror)]) == 1
    assert "t10k-labels-idx1-ubyte is a folder where" in capsys.readouterr().err
    assert not list(raw.glob(".*.part")), "no half-written file is left behind"


def test_an_unreadable_data_file_is_named_with_what_to_do(mnist_mirror, monkeypatch):
    assert fetch_command(["fetch", "mnist", "--mirror", str(mnist_mirror)]) == 0
    readable, os = datafiles.os.access, datafiles.os  # root reads every file: say it cannot
    monkeypatch.setattr(os, "access", lambda path, mode: False if mode == os.R_OK and str(
        path).endswith("t10k-images-idx3-ubyte") else readable(path, mode))
    data._load_cpu.cache_clear()
    with pytest.raises(data.DataError, match="cannot be read.*DGM_DATA"):
        data.load("mnist", "test")


def test_dgm_data_set_to_a_file_names_the_variable(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DGM_DATA", str(tmp_path / "a-file"))
    data._load_cpu.cache_clear()
    with pytest.raises(runtime.ConfigError, match="DGM_DATA=.*is a file, not a folder"):
        data.load("mnist", "test")
    data._load_cpu.cache_clear()


def test_a_full_disk_is_said_in_words(tmp_path, monkeypatch):
    from helpers import checkpoints

    def cut_short(obj, path):  # what torch.save raises when the disk fills up under it
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 3392 vs "
                           "3286")
    monkeypatch.setattr(checkpoints.torch, "save", cut_short)
    with pytest.warns(UserWarning, match="no space left on the device"):
        assert checkpoints.store("m.pt", {"model": {}}, [tmp_path]) is None
    def no_space(self, content):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(datafiles.Path, "write_bytes", no_space)
    with pytest.raises(data.DataError, match="no space left"):
        datafiles._write_whole(b"x", tmp_path / "f")
