"""Device choice, modes, per-mode sizes and seeding."""

import ast
import os
from pathlib import Path

import pytest
import torch

from helpers import config, runtime

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("quick,expected", [("1", "quick"), ("0", "cpu"), ("", "cpu"),
                                            ("true", "quick"), ("off", "cpu"), ("false", "cpu")])
def test_mode_follows_dgm_quick_and_the_device(quick, expected):
    settings = config.read({"DGM_QUICK": quick})
    assert runtime.run_mode(settings, torch.device("cpu")) == expected


def test_pick_returns_the_value_of_the_mode():
    for mode in config.MODES:
        rt = runtime.Runtime(torch.device("cpu"), mode, 0)
        assert rt.pick(quick=1, cpu=2, gpu=3) == {"quick": 1, "cpu": 2, "gpu": 3}[mode]
        assert rt.count(quick=1, cpu=2, gpu=3) == rt.pick(quick=1, cpu=2, gpu=3)


def test_dgm_device_overrides_and_a_bad_one_is_explained():
    assert runtime.pick_device(config.read({"DGM_DEVICE": "cpu"}).device) == torch.device("cpu")
    with pytest.raises(RuntimeError, match="DGM_DEVICE"):
        runtime.pick_device("tpu-of-dreams")


def test_setup_seeds_everything(capsys):
    runtime.setup(seed=5)
    a = torch.rand(3)
    runtime.setup(seed=5)
    assert torch.equal(a, torch.rand(3))
    assert "mode" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["maybe", "2", "quick"])
def test_a_switch_that_is_neither_on_nor_off_is_explained(value):
    with pytest.raises(ValueError, match="DGM_QUICK"):
        config.read({"DGM_QUICK": value})


def test_dgm_mode_forces_a_mode_and_a_wrong_one_is_explained():
    assert runtime.run_mode(config.read({"DGM_MODE": "gpu"}), torch.device("cpu")) == "gpu"
    assert config.read({"DGM_MODE": "gpu", "DGM_QUICK": "1"}).mode == "quick"  # quick wins
    with pytest.raises(ValueError, match="DGM_MODE"):
        config.read({"DGM_MODE": "fast"})


@pytest.mark.parametrize("value,on", [("1", True), ("true", True), ("Yes", True), ("on", True),
                                      ("0", False), ("false", False), ("no", False),
                                      ("OFF", False), ("", False)])
def test_switches_read_the_usual_words_for_on_and_off(value, on):
    assert config.read({"DGM_RETRAIN": value}).retrain is on


def test_settings_are_read_once_by_setup_and_the_changed_ones_printed(monkeypatch, capsys):
    for name in ("DGM_QUICK", "DGM_MODE", "DGM_RETRAIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DGM_DEVICE", "cpu")
    monkeypatch.setenv("DGM_CHECKPOINTS", os.pathsep.join(["a", "b"]))
    rt = runtime.setup()
    assert rt.settings == config.current() and rt.settings.checkpoints == ("a", "b")
    assert f"settings: DGM_DEVICE=cpu · DGM_CHECKPOINTS=a{os.pathsep}b" in capsys.readouterr().out
    monkeypatch.setenv("DGM_DEVICE", "mps")  # read once: a later change needs setup again
    assert config.current().device == "cpu"
    assert config.Config().changed() == ""


def test_no_helper_reads_the_environment_but_the_configuration():
    """Every DGM_* setting is read in helpers/config.py; any other os.environ / getenv read in
    helpers/ fails here, with its file and line."""
    found = []
    for path in sorted((REPO / "helpers").rglob("*.py")):
        if path.name == "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.attr if isinstance(node, ast.Attribute) else \
                node.id if isinstance(node, ast.Name) else None
            if name in ("environ", "getenv", "environb"):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, f"environment read outside helpers/config.py: {found}"


def test_an_absent_accelerator_is_explained_in_two_lines_at_most():
    with pytest.raises(RuntimeError) as info:
        runtime.pick_device("mps")  # this machine has none
    message = str(info.value)
    assert len(message.splitlines()) <= 2 and len(message) < 400 and "DGM_DEVICE" in message


def test_setting_errors_show_as_a_few_lines_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DGM_DEVICE", "tpu-of-dreams")
    with pytest.raises(runtime.ConfigError) as info:
        runtime.setup()
    (shown,) = info.value._render_traceback_()
    assert "DGM_DEVICE='tpu-of-dreams' cannot be used" in shown and "Unset DGM_DEVICE" in shown


def test_gpu_mode_on_a_cpu_warns_that_it_is_slow(monkeypatch):
    for name in ("DGM_QUICK", "DGM_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DGM_MODE", "gpu")
    with pytest.warns(UserWarning, match="gpu mode on a CPU.*Unset DGM_MODE"):
        rt = runtime.setup(verbose=False)
    assert rt.mode == "gpu" and rt.device.type == "cpu"
