"""The harness attaches to a kernel from outside (tools/kernel_hooks.py): it measures every
training run, turns a smoke run's counts down while remembering the gpu ones, tells which counts a
cell reads, and audits the steps of `fit` on the emulated device."""

import fake_device
import pytest
import torch
from fake_device import DeviceRuleError
from torch import nn

from helpers import data, runtime, train
from tools import kernel_hooks


@pytest.fixture
def hooks(monkeypatch):
    """kernel_hooks' patches of helpers, undone after the test."""
    for module, name in ((train, "fit"), (train, "train_or_load"), (data, "batches"),
                         (runtime.Runtime, "count")):
        monkeypatch.setattr(module, name, getattr(module, name))
    monkeypatch.setattr(kernel_hooks, "training", {})
    return kernel_hooks


def test_training_is_measured_images_steps_and_the_flops_of_forward_and_backward(hooks, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv("DGM_CHECKPOINTS", str(tmp_path))
    hooks.measure_training()
    rt = runtime.Runtime(torch.device("cpu"), "quick", 0)
    x = torch.randn(1024, 3)
    model = nn.Linear(3, 1)
    fit = lambda: train.fit(model, lambda m, b: m(b).pow(2).mean(),
                            data.batches(x, batch_size=256), 20)
    train.train_or_load(rt, "00_tiny", "tiny", model, fit)
    t = hooks.training["tiny"]
    per_step = 2 * 256 * 3 + 2 * 256 * 3  # forward x @ W^T, backward dL/dW = dy^T x: 2 FLOPs a MAC
    assert t["steps"] == 20 and t["images"] == 20 * 256
    assert t["gflop_per_image"] == pytest.approx(per_step / 256 / 1e9, rel=1e-2)
    assert t["images_per_s"] == pytest.approx(t["images"] / t["seconds"], rel=0.1)
    hooks.training.clear()
    train.train_or_load(rt, "00_tiny", "tiny", model, fit)  # loaded: nothing trained
    assert hooks.training == {}


def test_a_hand_written_loop_over_data_batches_is_measured_too(hooks, tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_CHECKPOINTS", str(tmp_path))
    hooks.measure_training()
    rt = runtime.Runtime(torch.device("cpu"), "quick", 0)
    model = nn.Linear(3, 1)

    def run():  # like 05's two-player loop: no fit
        batches, opt = data.batches(torch.randn(64, 3), batch_size=16), torch.optim.SGD(
            model.parameters(), lr=0.1)
        for _ in range(7):
            model(next(batches)).sum().backward()
            opt.step()
        return {"loss": [0.0]}

    train.train_or_load(rt, "00_tiny", "gan", model, run)
    assert hooks.training["gan"]["steps"] == 7 and hooks.training["gan"]["images"] == 7 * 16


def test_a_smoke_run_keeps_gpu_sizes_and_does_quick_counts_that_remember_the_gpu_ones(hooks):
    hooks.smoke_counts()
    rt = runtime.Runtime(torch.device("cpu"), "gpu", 0)
    assert rt.pick(quick=16, cpu=32, gpu=64) == 64  # a size: the gpu one
    steps = rt.count(quick=50, cpu=3000, gpu=20000)  # work: the quick amount, the gpu one kept
    assert steps == 50 and steps.full == 20000 and list(range(steps))[-1] == 49
    assert rt.count(quick=[4, 8], cpu=[4, 8, 16], gpu=[4, 8, 16, 28]) == [4, 8]
    t4 = runtime.Runtime(torch.device("cpu"), "cpu", 0)  # a T4's default: the cpu recipes
    assert t4.pick(quick=16, cpu=32, gpu=64) == 32 and t4.count(quick=50, cpu=3000,
                                                                 gpu=20000).full == 3000


def test_the_counts_a_cell_reads_are_found_also_through_the_notebooks_functions():
    Count = kernel_hooks.Count
    namespace = {"n_eval": Count(10, 1000), "steps": Count(5, 50), "unused": Count(2, 200)}
    exec("def draw(n):\n    return sample(n, steps)\n", namespace)
    namespace["draw"].__module__ = "__main__"  # defined in the notebook
    found = kernel_hooks._counts_used("images = draw(n_eval)\nsteps_seen = 1", namespace)
    assert found == {"n_eval": 100.0, "steps": 10.0}
    assert kernel_hooks._counts_used("n_eval = 3", namespace) == {}  # assigned, not read
    assert kernel_hooks._counts_used("%pip install x", namespace) == {}


@pytest.fixture
def device(monkeypatch):
    monkeypatch.setenv("DGM_FAKE_CAPABILITY", "9.0")
    fake_device.install("cuda")
    yield torch.device(fake_device.NAME, 0)
    fake_device.uninstall()


def test_the_audit_catches_a_step_that_reads_a_value_back(device, hooks):
    hooks.audit_training_steps()
    model = nn.Linear(3, 1).to(device)
    batch = torch.randn(8, 3, device=device)
    chatty = lambda m, b: m(b).pow(2).mean() * (1 + 0 * m(b).sum().item())  # .item() every step
    with pytest.raises(DeviceRuleError, match="steps that do not log"):
        train.fit(model, chatty, iter(lambda: batch, None), 30, log_every=10)
    quiet = lambda m, b: m(b).pow(2).mean()
    train.fit(model, quiet, iter(lambda: batch, None), 30, log_every=10)


def test_a_loop_without_fit_is_scaled_by_the_counts_its_cell_reads(device, hooks, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("DGM_CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(hooks, "smoke", {"fits": [], "cells": []})
    hooks.track_own_loops()
    hooks.measure_training()  # outside it, as install() does
    steps = hooks.Count(7, 70)
    monkeypatch.setattr(hooks, "_cell", {"source": "train_gan(steps)",
                                         "namespace": {"steps": steps}})
    rt = runtime.Runtime(device, "gpu", 0)
    model = nn.Linear(3, 1).to(device)

    def run():
        batches = data.batches(torch.randn(64, 3, device=device), batch_size=16)
        for _ in range(steps):
            model(next(batches)).sum().backward()
        return {"loss": [0.0]}

    train.train_or_load(rt, "00_tiny", "gan", model, run)
    (fit,) = hooks.smoke["fits"]
    assert (fit["desc"], fit["steps"], fit["full_steps"]) == ("gan", 7, 70) and fit["ops"] > 0
