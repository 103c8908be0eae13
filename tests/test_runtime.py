"""Device choice, modes, per-mode sizes and seeding."""

import pytest
import torch

from helpers import runtime


@pytest.mark.parametrize("quick,expected", [("1", "quick"), ("0", "cpu"), ("", "cpu")])
def test_mode_follows_dgm_quick_and_the_device(monkeypatch, quick, expected):
    monkeypatch.setenv("DGM_QUICK", quick)
    assert runtime.run_mode(torch.device("cpu")) == expected
    if quick != "1":
        assert runtime.run_mode(torch.device("cuda")) == "gpu"


def test_pick_returns_the_value_of_the_mode():
    for mode in runtime.MODES:
        rt = runtime.Runtime(torch.device("cpu"), mode, 0)
        assert rt.pick(quick=1, cpu=2, gpu=3) == {"quick": 1, "cpu": 2, "gpu": 3}[mode]


def test_dgm_device_overrides_and_a_bad_one_is_explained(monkeypatch):
    monkeypatch.setenv("DGM_DEVICE", "cpu")
    assert runtime.pick_device() == torch.device("cpu")
    monkeypatch.setenv("DGM_DEVICE", "tpu-of-dreams")
    with pytest.raises(RuntimeError, match="DGM_DEVICE"):
        runtime.pick_device()


def test_setup_seeds_everything(capsys):
    runtime.setup(seed=5)
    a = torch.rand(3)
    runtime.setup(seed=5)
    assert torch.equal(a, torch.rand(3))
    assert "mode" in capsys.readouterr().out
    assert runtime.elapsed() >= 0
