"""Datasets as tensors, binarisation, batching, and the clear errors for missing or damaged data."""

import socket
from pathlib import Path

import pytest
import torch

from helpers import data

MNIST_RAW = data.data_root() / "MNIST" / "raw"


def test_mnist_is_float_images_in_unit_range_with_labels():
    x, y = data.load("mnist", "train")
    assert x.shape == (60000, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == 0 and x.max() == 1 and y.dtype == torch.int64
    assert torch.equal(torch.bincount(y).gt(5000), torch.ones(10, dtype=torch.bool))
    xt, _ = data.load("mnist", "test", n=100)
    assert xt.shape == (100, 1, 28, 28)


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
    with pytest.raises(data.DataError, match="CIFAR-10 has no offline mirror"):
        data.load("cifar10", "train")


def test_mirror_copy_and_truncated_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_DATA", str(tmp_path / "root"))
    data._load_cpu.cache_clear()
    assert data.main(["fetch", "mnist", "--mirror", str(tmp_path / "nowhere")]) == 1
    assert data.main(["fetch", "mnist", "--mirror", str(data.REPO / "data")]) == 0
    x, _ = data.load("mnist", "test", n=10)
    assert x.shape == (10, 1, 28, 28)
    raw = tmp_path / "root" / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:1000])  # a truncated download
    data._load_cpu.cache_clear()
    with pytest.raises(data.DataError, match="damaged.*truncated"):
        data.load("mnist", "test")
    data._load_cpu.cache_clear()


def test_cifar10_option(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    monkeypatch.setenv("DGM_CIFAR10", "standin")  # what the test suite sets
    stand_in = data.optional_cifar10()
    assert stand_in.shape == (1024, 3, 32, 32) and 0 <= stand_in.min() and stand_in.max() <= 1
    monkeypatch.delenv("DGM_CIFAR10")
    monkeypatch.setenv("DGM_QUICK", "1")  # a student in quick mode sees no stand-in numbers
    assert data.optional_cifar10() is None
    monkeypatch.setenv("DGM_QUICK", "0")
    assert data.optional_cifar10() is None
    monkeypatch.setenv("DGM_CIFAR10", "1")  # asked for, but absent: the clear message
    with pytest.raises(data.DataError, match="CIFAR-10 has no offline mirror"):
        data.optional_cifar10()


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="split"):
        data.load("mnist", "validation")


def test_a_relative_data_folder_counts_from_the_repository(monkeypatch):
    monkeypatch.setenv("DGM_DATA", "some/folder")
    monkeypatch.chdir(data.REPO / "notebooks")  # where a notebook's kernel runs
    assert data.data_root() == data.REPO / "some" / "folder"
    monkeypatch.setenv("DGM_DATA", "/abs/folder")
    assert data.data_root() == Path("/abs/folder")


def test_the_hint_names_the_dataset_s_own_folder():
    assert "DIR/FashionMNIST/raw" in data._how_to_get("fashion")
    assert "DIR/MNIST/raw" in data._how_to_get("mnist")
