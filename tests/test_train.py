"""The training loop learns and fails loudly; the checkpoint cache loads, retrains, splits modes."""

import itertools
import json
import linecache
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import runtime, train


def _regression():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    return nn.Linear(3, 1), itertools.repeat((x, y))


def _mse(model, batch):
    x, y = batch
    loss = (model(x).squeeze(1) - y).pow(2).mean()
    return loss, {"half": loss / 2}


def test_fit_learns_and_logs_every_term():
    model, batches = _regression()
    history = train.fit(model, _mse, batches, num_steps=300, lr=0.05, log_every=10)
    assert history["step"][-1] == 300 and len(history["loss"]) == 30 == len(history["half"])
    assert history["seconds"] == sorted(history["seconds"]) and history["seconds"][0] > 0
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    assert not model.training


def test_fit_calls_back_after_every_step_with_the_updated_weights():
    model, batches = _regression()
    seen = []
    train.fit(model, _mse, batches, num_steps=4, lr=0.05,
              callback=lambda: seen.append(model.bias.item()))
    assert len(seen) == 4 and len(set(seen)) == 4  # each call sees weights after a new step


def test_fit_warms_the_learning_rate_up_linearly():
    model, batches = _regression()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rates = []
    train.fit(model, _mse, batches, num_steps=6, optimizer=opt, warmup_steps=4,
              callback=lambda: rates.append(opt.param_groups[0]["lr"]))
    assert rates == pytest.approx([0.05, 0.075, 0.1, 0.1, 0.1, 0.1])  # after steps 1..6


def test_fit_stops_on_a_non_finite_loss():
    model, batches = _regression()
    with pytest.raises(FloatingPointError, match="learning rate"):
        train.fit(model, lambda m, b: m(b[0]).sum() * float("nan"), batches, num_steps=5)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    monkeypatch.delenv("DGM_RETRAIN", raising=False)
    calls = []

    def run(model, config):
        def train_fn():
            calls.append(1)
            return train.fit(model, _mse, _regression()[1], num_steps=20, lr=0.05)
        return train.train_or_load("test", "linear", model, config, train_fn)
    return run, calls


def test_cache_trains_once_then_loads_the_same_weights(cache, monkeypatch):
    run, calls = cache
    first = nn.Linear(3, 1)
    history = run(first, {"lr": 0.05})
    second = nn.Linear(3, 1)
    assert run(second, {"lr": 0.05}) == history and len(calls) == 1
    assert torch.equal(first.weight, second.weight)
    run(nn.Linear(3, 1), {"lr": 0.1})  # another config is another checkpoint
    monkeypatch.setenv("DGM_RETRAIN", "1")
    run(nn.Linear(3, 1), {"lr": 0.05})
    assert len(calls) == 3


def test_cache_key_holds_the_mode(monkeypatch):
    monkeypatch.setenv("DGM_QUICK", "1")
    runtime.setup(verbose=False)
    quick = train.checkpoint_name("nb", "m", {"a": 1})
    monkeypatch.setenv("DGM_QUICK", "0")
    runtime.setup(verbose=False)
    full = train.checkpoint_name("nb", "m", {"a": 1})
    assert quick != full and quick.startswith("nb-m-")


def test_damaged_checkpoint_is_retrained_with_a_warning(cache):
    run, calls = cache
    run(nn.Linear(3, 1), {"lr": 0.05})
    (path,) = train.checkpoint_dirs()[0].glob("test-linear-*.pt")
    saved = torch.load(path, weights_only=True)  # plain state_dict and values only
    assert set(saved) == {"model", "config", "code", "history"}
    path.write_bytes(b"not a checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(nn.Linear(3, 1), {"lr": 0.05})
    assert len(calls) == 2 and "training again" in str(caught[0].message)
    assert "weights_only" not in str(caught[0].message)  # no advice to load it unsafely
    assert not list(path.parent.glob(".*.tmp")), "no temporary file is left behind"


def test_a_save_removes_what_a_killed_save_left_behind(tmp_path):
    path = tmp_path / "m.pt"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process id that no longer runs
    abandoned = tmp_path / f".m.pt.{gone.pid}.tmp"
    in_progress = tmp_path / f".m.pt.{os.getppid()}.tmp"  # a live process: left alone
    abandoned.write_bytes(b"half a checkpoint")
    in_progress.write_bytes(b"being written")
    assert train.store("m.pt", {"model": nn.Linear(2, 2).state_dict()}, [tmp_path]) == path
    assert path.is_file() and not abandoned.exists() and in_progress.exists()


def test_a_class_shares_one_cache_and_each_student_retrains_into_their_own(cache, tmp_path,
                                                                           monkeypatch, capsys):
    run, calls = cache
    shared, personal = tmp_path / "shared", tmp_path / "home" / "dgm"
    monkeypatch.setenv("DGM_CHECKPOINTS", str(shared))  # the instructor fills the shared folder
    taught = nn.Linear(3, 1)
    run(taught, {"lr": 0.05})
    (filename,) = [p.name for p in shared.glob("test-linear-*.pt")]
    original = (shared / filename).read_bytes()
    monkeypatch.setenv("DGM_CHECKPOINTS", f"{personal}{os.pathsep}{shared}")  # a student
    student = nn.Linear(3, 1)
    run(student, {"lr": 0.05})
    assert len(calls) == 1 and torch.equal(student.weight, taught.weight)  # loaded, not trained
    assert str(shared / filename) in capsys.readouterr().out
    monkeypatch.setenv("DGM_RETRAIN", "1")
    run(nn.Linear(3, 1), {"lr": 0.05})  # a retrain goes to the student's own folder
    assert len(calls) == 2 and (personal / filename).is_file()
    assert (shared / filename).read_bytes() == original


def test_a_save_goes_to_the_first_folder_that_can_be_written(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("in the way")  # a folder path that cannot be created
    writable = tmp_path / "ok"
    monkeypatch.setenv("DGM_CHECKPOINTS", f"{blocked / 'sub'}{os.pathsep}{writable}")
    assert train.store("m.pt", {"x": 1}) == writable / "m.pt"
    monkeypatch.setenv("DGM_CHECKPOINTS", str(blocked / "sub"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert train.store("m.pt", {"x": 1}) is None
    assert "kept in memory" in str(caught[0].message) and str(blocked / "sub") in str(
        caught[0].message)
    assert not list(tmp_path.rglob(".*.tmp")), "no temporary file is left behind"


def _cell(source: str, namespace: dict) -> None:
    """Run `source` as IPython runs a notebook cell: compiled under a file name whose lines
    linecache holds, so that inspect.getsource finds the functions it defines."""
    filename = f"<cell {len(linecache.cache)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


LOSS = "def loss(model, batch):\n    x, y = batch\n    return (model(x) - y).pow(2).mean()\n"
TRAIN = ("def fit_linear(model):\n    return train.train_or_load('test', 'linear', model, {'lr': "
         "0.05}, lambda: train.fit(model, loss, batches, num_steps=20, lr=0.05))\n")


@pytest.mark.parametrize("edit,retrains", [
    (lambda src: src.replace("- y", "+ y"), True),  # one character of the loss's body
    (lambda src: src.replace("mean()", "mean()  # a comment"), False),
    (lambda src: src.replace("    x, y = batch", "    x,  y = batch"), False),
])
def test_changed_student_code_trains_again_and_unchanged_code_loads(edit, retrains, cache,
                                                                     capsys):
    def notebook(loss_source):  # a fresh kernel running the two cells
        namespace = {"__name__": "notebook", "train": train, "batches": _regression()[1]}
        _cell(loss_source, namespace)
        _cell(TRAIN, namespace)
        capsys.readouterr()
        namespace["fit_linear"](nn.Linear(3, 1))
        return capsys.readouterr().out

    assert "loaded" not in notebook(LOSS)
    loaded = notebook(LOSS)
    assert "loaded linear" in loaded and "trained with your current `fit_linear`, `loss`;" in loaded
    again = notebook(edit(LOSS))
    assert ("loaded" not in again) == retrains, again
    if retrains:
        assert "training linear again: `loss` changed since the saved model" in again


def test_later_cells_draw_the_same_numbers_whether_the_model_was_trained_or_loaded(cache):
    run, calls = cache
    run(nn.Linear(3, 1), {"lr": 0.05})  # trains: many random draws
    after_training = torch.rand(4)
    run(nn.Linear(3, 1), {"lr": 0.05})  # loads: none
    assert len(calls) == 1 and torch.equal(torch.rand(4), after_training)


USER_RUN = """
import json, os, sys, warnings
import torch
from helpers import train
from tests.test_train import _mse, _regression
os.setgid(65534)  # from here on: a student's account, not root
os.setuid(65534)
model = torch.nn.Linear(3, 1)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    history = train.train_or_load("test", "linear", model, {"lr": 0.05}, lambda: train.fit(
        model, _mse, _regression()[1], num_steps=20, lr=0.05))
print(json.dumps({"warnings": [str(w.message) for w in caught], "steps": history["step"][-1]}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="it drops root's privileges to be a normal user")
def test_a_normal_user_with_a_read_only_folder_keeps_the_trained_model():
    shared = Path(tempfile.mkdtemp(prefix="dgm-shared-"))  # root's: others may only read it
    shared.chmod(0o755)
    try:
        done = subprocess.run([sys.executable, "-c", USER_RUN], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent.parent,
                              env={**os.environ, "DGM_CHECKPOINTS": str(shared)})
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout.splitlines()[-1])
        (message,) = report["warnings"]
        assert str(shared) in message and "kept in memory" in message
        assert report["steps"] == 20 and not list(shared.iterdir())
    finally:
        shutil.rmtree(shared)
