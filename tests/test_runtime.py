"""Device choice, modes, per-mode sizes and seeding."""

import pytest
import torch

from helpers import runtime


@pytest.mark.parametrize("quick,expected", [("1", "quick"), ("0", "cpu"), ("", "cpu"),
                                            ("true", "quick"), ("off", "cpu"), ("false", "cpu")])
def test_mode_follows_dgm_quick_and_the_device(monkeypatch, quick, expected):
    monkeypatch.setenv("DGM_QUICK", quick)
    assert runtime.run_mode(torch.device("cpu")) == expected
    if expected != "quick":
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


@pytest.mark.parametrize("value", ["maybe", "2", "quick"])
def test_a_flag_that_is_neither_on_nor_off_is_explained(monkeypatch, value):
    monkeypatch.setenv("DGM_QUICK", value)
    with pytest.raises(ValueError, match="DGM_QUICK"):
        runtime.run_mode(torch.device("cpu"))


def test_dgm_mode_forces_a_mode_and_a_wrong_one_is_explained(monkeypatch):
    monkeypatch.delenv("DGM_QUICK", raising=False)
    monkeypatch.setenv("DGM_MODE", "gpu")
    assert runtime.run_mode(torch.device("cpu")) == "gpu"
    monkeypatch.setenv("DGM_MODE", "fast")
    with pytest.raises(ValueError, match="DGM_MODE"):
        runtime.run_mode(torch.device("cpu"))


def test_a_smoke_run_keeps_gpu_sizes_and_does_quick_counts(monkeypatch):
    monkeypatch.delenv("DGM_QUICK", raising=False)
    monkeypatch.delenv("DGM_DEVICE", raising=False)
    monkeypatch.setenv("DGM_SMOKE", "1")
    rt = runtime.setup(verbose=False)
    assert (rt.mode, rt.smoke, rt.label) == ("gpu", True, "gpu-smoke")
    assert rt.pick(quick=16, cpu=32, gpu=64) == 64  # a size: the gpu one
    steps = rt.count(quick=50, cpu=3000, gpu=20000)  # work: the quick amount, the full one kept
    assert steps == 50 and steps.full == 20000 and list(range(steps))[-1] == 49
    assert rt.count(quick=[4, 8], cpu=[4, 8, 16], gpu=[4, 8, 16, 28]) == [4, 8]
    monkeypatch.delenv("DGM_SMOKE")
    rt = runtime.setup(verbose=False)
    assert rt.count(quick=50, cpu=3000, gpu=20000) == 3000 and rt.label == "cpu"


@pytest.mark.parametrize("value,on", [("1", True), ("true", True), ("Yes", True), ("on", True),
                                      ("0", False), ("false", False), ("no", False),
                                      ("OFF", False), ("", False)])
def test_flags_read_the_usual_words_for_on_and_off(monkeypatch, value, on):
    monkeypatch.setenv("DGM_RETRAIN", value)
    assert runtime.flag("DGM_RETRAIN") is on


def test_an_absent_accelerator_is_explained_in_two_lines_at_most(monkeypatch):
    monkeypatch.setenv("DGM_DEVICE", "mps")  # this machine has none
    with pytest.raises(RuntimeError) as info:
        runtime.pick_device()
    message = str(info.value)
    assert len(message.splitlines()) <= 2 and len(message) < 400 and "DGM_DEVICE" in message


def test_setting_errors_show_as_a_few_lines_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DGM_DEVICE", "tpu-of-dreams")
    with pytest.raises(runtime.ConfigError) as info:
        runtime.setup()
    (shown,) = info.value._render_traceback_()
    assert "DGM_DEVICE='tpu-of-dreams' cannot be used" in shown and "Unset DGM_DEVICE" in shown


def test_gpu_mode_on_a_cpu_warns_that_it_is_slow(monkeypatch):
    for name in ("DGM_QUICK", "DGM_SMOKE", "DGM_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DGM_MODE", "gpu")
    with pytest.warns(UserWarning, match="gpu mode on a CPU.*Unset DGM_MODE"):
        rt = runtime.setup(verbose=False)
    assert rt.mode == "gpu" and rt.device.type == "cpu"
