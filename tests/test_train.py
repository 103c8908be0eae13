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

import fake_device
import pytest
import torch
from torch import nn

from helpers import checkpoints, data, runtime, sources, train


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


def test_warmup_then_cosine_decay_to_zero_and_fused_adam_on_the_cpu():
    opt = train.adam(nn.Linear(2, 1).parameters(), lr=0.1)
    assert opt.defaults["fused"] is True  # one kernel for the whole update on a CPU
    sched = train.warmup_cosine(opt, warmup_steps=4, total_steps=12)
    rates = []
    for _ in range(14):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # linear warm-up
    assert rates[8] == pytest.approx(0.05)  # half-way through the decay: half the rate
    assert rates[12:] == pytest.approx([0.0, 0.0])  # 0 at the end, and after it


def test_fit_stops_on_a_non_finite_loss():
    model, batches = _regression()
    with pytest.raises(FloatingPointError, match="learning rate"):
        train.fit(model, lambda m, b: m(b[0]).sum() * float("nan"), batches, num_steps=5)


def test_the_training_step_is_compiled_only_on_a_cuda_gpu_in_gpu_mode():
    step = lambda batch: batch
    for device in ("cpu", "meta", fake_device.NAME):
        for mode in ("quick", "cpu", "gpu"):
            assert runtime.compiled(step, torch.device(device), mode) is step


def _fit_with(compiler, monkeypatch, batches=None):
    """A regression trained by `fit`, its step compiled by `compiler` (as `runtime.compiled`
    does on a CUDA GPU in gpu mode); returns the model, the history and the compiled step."""
    made = []
    monkeypatch.setattr(runtime, "compiled", lambda step, device, mode: made.append(
        runtime.CompiledStep(step, compiler)) or made[-1])
    torch.manual_seed(0)
    model, data_batches = _regression()
    history = train.fit(model, _mse, batches or data_batches, num_steps=30, lr=0.05,
                        log_every=5, compile=True)
    return model, history, made[0]


def test_a_compiled_step_trains_as_the_eager_one_and_keeps_the_checkpoint_keys(monkeypatch):
    compiled_model, compiled, _ = _fit_with(
        lambda step: torch.compile(step, backend="aot_eager"), monkeypatch)
    torch._dynamo.reset()
    eager_model, eager, _ = _fit_with(lambda step: step, monkeypatch)
    assert compiled["half"] == pytest.approx(eager["half"], rel=1e-4)  # the terms come through
    assert compiled_model.state_dict().keys() == eager_model.state_dict().keys()
    for a, b in zip(compiled_model.parameters(), eager_model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_a_compiler_that_fails_on_the_first_step_leaves_training_uncompiled(monkeypatch):
    def broken_backend(graph, inputs):
        raise RuntimeError("no compiler here")

    with pytest.warns(UserWarning, match="compiled training step failed.*without compiling"):
        model, history, _ = _fit_with(lambda step: torch.compile(step, backend=broken_backend),
                                      monkeypatch)
    torch._dynamo.reset()
    eager_model, eager, _ = _fit_with(lambda step: step, monkeypatch)
    assert history == eager
    for a, b in zip(model.parameters(), eager_model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def _failing_on(call):
    """A compiler whose step fails on its `call`-th call (CUDA graphs record on the second)."""
    def compiler(step):
        calls = itertools.count(1)

        def run(*args):
            if next(calls) == call:
                raise RuntimeError("capture failed")
            return step(*args)
        return run
    return compiler


def test_a_step_that_fails_while_being_recorded_falls_back_too_but_not_later(monkeypatch):
    with pytest.warns(UserWarning, match="capture failed"):
        _, history, step = _fit_with(_failing_on(2), monkeypatch)
    assert step.calls == 2 and len(history["loss"]) == 6  # two compiled calls, then eager
    with pytest.raises(RuntimeError, match="capture failed"):  # a fault of later steps is real
        _fit_with(_failing_on(4), monkeypatch)


def test_a_step_counted_by_a_dispatch_mode_first_is_still_compiled_once_and_for_all(monkeypatch):
    """The harness counts the FLOPs of the first step under a FlopCounterMode; a frame that
    torch.compile first meets under such a mode is never compiled. And the step, autocast
    included, is one graph that later steps do not trace again."""
    from torch._dynamo.testing import CompileCounter
    from torch.utils.flop_counter import FlopCounterMode

    _, data_batches = _regression()
    counter = FlopCounterMode(display=False)

    def counted():  # like tools/kernel_hooks: the counter from the first draw to the second
        for i, batch in enumerate(data_batches):
            if i == 0:
                counter.__enter__()
            elif i == 1:
                counter.__exit__(None, None, None)
            yield batch

    torch._dynamo.reset()
    graphs = CompileCounter()
    _, _, step = _fit_with(lambda f: torch.compile(f, backend=graphs), monkeypatch, counted())
    assert counter.get_total_flops() > 0  # step 1 ran eagerly, counted
    assert step.calls == 29 and graphs.frame_count == 1  # then compiled, traced once


def test_the_cache_key_is_the_same_in_every_process(tmp_path):
    """Each Python process orders a set of names its own way (PYTHONHASHSEED); what the key holds
    must not depend on it, or a model saved by one process is not found by the next. A module's
    own `__name__` once was in the key, with the value of whichever module using it came last
    (`train.fit` and a loss both read `type(...).__name__` here)."""
    script = tmp_path / "key.py"
    script.write_text("import torch\nfrom helpers import sources, train\nm = torch.nn.Linear(2, 1)"
                      "\nloss = lambda model, b: model(b).sum() if type(model).__name__ else 0\n"
                      "print(sources.fingerprint(lambda: train.fit(m, loss, iter([]), 1), m))\n")
    root = Path(__file__).resolve().parent.parent
    keys = {subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed),
                                "PYTHONPATH": str(root)}, check=True).stdout
            for seed in range(4)}
    assert len(keys) == 1, keys
    assert "__name__" not in keys.pop()  # a module's name is not something a model depends on


class _Calls:
    """Counts training runs: an object whose contents the cache's key does not look into (a list
    would be: it is a value the training function reaches)."""

    def __init__(self):
        self.n = 0

    def append(self, _):
        self.n += 1

    def __len__(self):
        return self.n


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    monkeypatch.delenv("DGM_RETRAIN", raising=False)
    calls = _Calls()

    def run(model, lr=0.05):  # a notebook run: its set-up reads the settings of the moment
        rt = runtime.setup(verbose=False)

        def train_fn():
            calls.append(1)
            return train.fit(model, _mse, _regression()[1], num_steps=20, lr=lr)
        return train.train_or_load(rt, "test", "linear", model, train_fn)
    return run, calls


def test_cache_trains_once_then_loads_the_same_weights(cache, monkeypatch):
    run, calls = cache
    first = nn.Linear(3, 1)
    history = run(first)
    second = nn.Linear(3, 1)
    assert run(second) == history and len(calls) == 1
    assert torch.equal(first.weight, second.weight)
    run(nn.Linear(3, 1), lr=0.1)  # another learning rate is another checkpoint
    monkeypatch.setenv("DGM_RETRAIN", "1")
    run(nn.Linear(3, 1))
    assert len(calls) == 3


def test_cache_key_holds_the_mode(monkeypatch):
    monkeypatch.setenv("DGM_QUICK", "1")
    quick = train.checkpoint_name(runtime.setup(verbose=False), "nb", "m", {"value:a": "1"})
    monkeypatch.setenv("DGM_QUICK", "0")
    full = train.checkpoint_name(runtime.setup(verbose=False), "nb", "m", {"value:a": "1"})
    assert quick != full and quick.startswith("nb-m-")


def test_damaged_checkpoint_is_retrained_with_a_warning(cache):
    run, calls = cache
    run(nn.Linear(3, 1))
    (path,) = checkpoints.checkpoint_dirs()[0].glob("test-linear-*.pt")
    saved = torch.load(path, weights_only=True)  # plain state_dict and values only
    assert set(saved) == {"model", "fingerprint", "history"}
    assert saved["fingerprint"]["value:lr"] == "0.05"
    path.write_bytes(b"not a checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(nn.Linear(3, 1))
    assert len(calls) == 2 and "training again" in str(caught[0].message)
    assert "weights_only" not in str(caught[0].message)  # no advice to load it unsafely
    assert not list(path.parent.glob(".*.tmp")), "no temporary file is left behind"


def _conv():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(36, 1))


def test_convolutions_train_in_the_fast_layout_and_their_checkpoints_load_in_any(tmp_path,
                                                                                monkeypatch):
    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    rt = runtime.setup(verbose=False)
    x = torch.randn(16, 2, 3, 3)
    batches = itertools.repeat((x, x.sum((1, 2, 3))))
    model = _conv()
    train.train_or_load(rt, "test", "conv", model, lambda: train.fit(model, _mse, batches, 5))
    weight = model[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    (path,) = tmp_path.glob("checkpoints/test-conv-*.pt")
    plain = _conv()  # the default layout, as on Apple's MPS
    plain.load_state_dict(torch.load(path, weights_only=True)["model"])
    assert plain[0].weight.is_contiguous()
    assert plain.state_dict().keys() == model.state_dict().keys()
    assert torch.allclose(plain(x), model(x), atol=1e-5)
    assert runtime.memory_format(torch.device("mps")) == torch.contiguous_format
    assert runtime.memory_format(torch.device("cpu")) == torch.channels_last


def test_another_models_file_under_the_right_name_is_not_trusted(cache):
    """A checkpoint is trusted by its content: a model of the same architecture trained with
    other settings, copied over the right name, is retrained, not loaded silently."""
    run, calls = cache
    run(nn.Linear(3, 1), lr=0.1)
    run(nn.Linear(3, 1), lr=0.05)
    folder = checkpoints.checkpoint_dirs()[0]
    other, right = sorted(folder.glob("test-linear-*.pt"), key=lambda p: p.stat().st_mtime)
    right.write_bytes(other.read_bytes())  # lr=0.1's weights under lr=0.05's name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = nn.Linear(3, 1)
        run(model, lr=0.05)
    assert len(calls) == 3 and "fingerprint" in str(caught[0].message)
    assert torch.load(right, weights_only=True)["fingerprint"]["value:lr"] == "0.05"


def test_a_save_removes_what_a_killed_save_left_behind(tmp_path):
    path = tmp_path / "m.pt"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process id that no longer runs
    abandoned = tmp_path / f".m.pt.{gone.pid}.tmp"
    in_progress = tmp_path / f".m.pt.{os.getppid()}.tmp"  # a live process: left alone
    abandoned.write_bytes(b"half a checkpoint")
    in_progress.write_bytes(b"being written")
    assert checkpoints.store("m.pt", {"model": nn.Linear(2, 2).state_dict()}, [tmp_path]) == path
    assert path.is_file() and not abandoned.exists() and in_progress.exists()


def test_a_class_shares_one_cache_and_each_student_retrains_into_their_own(cache, tmp_path,
                                                                           monkeypatch, capsys):
    run, calls = cache
    shared, personal = tmp_path / "shared", tmp_path / "home" / "dgm"
    monkeypatch.setenv("DGM_CHECKPOINTS", str(shared))  # the instructor fills the shared folder
    taught = nn.Linear(3, 1)
    run(taught)
    (filename,) = [p.name for p in shared.glob("test-linear-*.pt")]
    original = (shared / filename).read_bytes()
    monkeypatch.setenv("DGM_CHECKPOINTS", f"{personal}{os.pathsep}{shared}")  # a student
    student = nn.Linear(3, 1)
    run(student)
    assert len(calls) == 1 and torch.equal(student.weight, taught.weight)  # loaded, not trained
    assert str(shared / filename) in capsys.readouterr().out
    monkeypatch.setenv("DGM_RETRAIN", "1")
    run(nn.Linear(3, 1))  # a retrain goes to the student's own folder
    assert len(calls) == 2 and (personal / filename).is_file()
    assert (shared / filename).read_bytes() == original


def test_a_save_goes_to_the_first_folder_that_can_be_written(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("in the way")  # a folder path that cannot be created
    writable = tmp_path / "ok"
    monkeypatch.setenv("DGM_CHECKPOINTS", f"{blocked / 'sub'}{os.pathsep}{writable}")
    assert checkpoints.store("m.pt", {"x": 1}) == writable / "m.pt"
    monkeypatch.setenv("DGM_CHECKPOINTS", str(blocked / "sub"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert checkpoints.store("m.pt", {"x": 1}) is None
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
TRAIN = ("def fit_linear(model):\n    return train.train_or_load(rt, 'test', 'linear', model, "
         "lambda: train.fit(model, loss, batches, num_steps=20, lr=0.05))\n")


@pytest.mark.parametrize("edit,retrains", [
    (lambda src: src.replace("- y", "+ y"), True),  # one character of the loss's body
    (lambda src: src.replace("mean()", "mean()  # a comment"), False),
    (lambda src: src.replace("    x, y = batch", "    x,  y = batch"), False),
])
def test_changed_student_code_trains_again_and_unchanged_code_loads(edit, retrains, cache,
                                                                     capsys):
    def notebook(loss_source):  # a fresh kernel running the two cells
        namespace = {"__name__": "notebook", "train": train, "batches": _regression()[1],
                     "rt": runtime.setup(verbose=False)}
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
    run(nn.Linear(3, 1))  # trains: many random draws
    after_training = torch.rand(4)
    run(nn.Linear(3, 1))  # loads: none
    assert len(calls) == 1 and torch.equal(torch.rand(4), after_training)


# One training cell with every kind of thing the key covers (helpers/sources.py's sentence): plain
# values, a tuple, a list and a dict, the data, another model's weights, the model's buffers, an
# optimizer's settings, a helper class of the course (EMA), a nested function. Changing any
# `{setting}` must give another checkpoint name, and running the same cell again the same name.
SETTINGS = dict(lr=1e-3, steps=100, batch=32, n=500, seed=1, other_seed=3, power=2,
                betas=(0.5, 0.999), sizes=[4, 8], weights={"kl": 1.0}, decay=0.99)
CELL = """
lr, steps, batch, sizes, weights = {lr}, {steps}, {batch}, {sizes}, {weights}
x_train = torch.rand({n}, 6, generator=torch.Generator().manual_seed({seed}))
torch.manual_seed({other_seed})
other = nn.Linear(6, 6)  # a model trained in an earlier cell

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("order", torch.arange(6) * {power})
        self.layer = nn.Linear(6, sizes[0])

def loss_fn(model, x):
    return model.layer(other(x)).pow(2).mean() * weights["kl"]

def train_net(name):
    model = Net()
    ema = train.EMA(model, {decay})
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas={betas})
    return train.train_or_load(rt, "nb", name, ema, lambda: train.fit(
        model, loss_fn, data.batches(x_train, batch_size=batch), steps, optimizer=opt,
        callback=ema.update))

train_net("m")
"""


def _checkpoint_of(source: str, monkeypatch) -> str:
    """The checkpoint name that running the cells of `source` asks the cache for."""
    names = []

    def asked(rt, notebook, name, model, train_fn):
        names.append(train.checkpoint_name(rt, notebook, name,
                                           sources.fingerprint(train_fn, model), str(model)))
    monkeypatch.setattr(train, "train_or_load", asked)
    namespace = {"__name__": "notebook", "torch": torch, "nn": nn, "train": train, "data": data,
                 "rt": runtime.setup(verbose=False)}
    _cell(source, namespace)
    (name,) = names
    return name


def _changed(value):
    if isinstance(value, tuple):
        return (0.9, 0.99)
    if isinstance(value, list):
        return [*value, 16]
    if isinstance(value, dict):
        return {k: v * 2 for k, v in value.items()}
    return value * 2


@pytest.mark.parametrize("setting", SETTINGS)
def test_changing_anything_the_key_covers_trains_again(setting, monkeypatch):
    first = _checkpoint_of(CELL.format(**SETTINGS), monkeypatch)
    assert _checkpoint_of(CELL.format(**SETTINGS), monkeypatch) == first  # a re-run loads
    changed = {**SETTINGS, setting: _changed(SETTINGS[setting])}
    assert _checkpoint_of(CELL.format(**changed), monkeypatch) != first, \
        f"changing {setting} would load the stale model"


def test_a_change_to_the_courses_own_helper_code_trains_again(monkeypatch):
    first = _checkpoint_of(CELL.format(**SETTINGS), monkeypatch)
    namespace = {}
    _cell("def log(history, **terms):\n    history.clear()\n", namespace)
    namespace["log"].__module__ = "helpers.train"  # an edited helpers/train.py
    monkeypatch.setattr(train, "log", namespace["log"])  # what train.fit calls
    assert _checkpoint_of(CELL.format(**SETTINGS), monkeypatch) != first


READ_ONLY_RUN = """
import contextlib, io, json, os, warnings
import nbformat, torch
from helpers import checkpoints, evaluate, runtime, train
from tools import student
nbformat.validate(nbformat.v4.new_notebook())  # its lazy imports, while they can be read
os.setgid(65534)  # from here on: a student's account, not root
os.setuid(65534)
rt = runtime.setup()
model = torch.nn.Linear(3, 1)
train.train_or_load(rt, "test", "linear", model, lambda: {"step": [20]})
with contextlib.redirect_stdout(io.StringIO()) as copies:
    code = student.main(["notebooks", "student"])
os.environ["DGM_CHECKPOINTS"] = os.environ["SHARED"]  # a folder nobody but root may write
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    history = train.train_or_load(runtime.setup(verbose=False), "test", "other", model,
                                  lambda: {"step": [20]})  # as if trained for 20 steps
print(json.dumps({"helpers": evaluate.__file__, "copies": copies.getvalue(), "code": code,
                  "warnings": [str(w.message) for w in caught], "steps": history["step"][-1]}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="it drops root's privileges to be a normal user")
def test_a_read_only_course_folder_writes_everything_to_the_users_own():
    """The class set-up: a shared read-only clone; models and student copies go to the
    student's ~/dgm-course, said once by the first cell. And where no folder can be written,
    the trained model is kept in memory, with one warning."""
    top = Path(tempfile.mkdtemp(prefix="dgm-class-"))  # root's: others may only read it
    top.chmod(0o755)
    try:
        _read_only_run(top)
    finally:
        shutil.rmtree(top)


def _read_only_run(top: Path):
    clone, home, shared = top / "course", top / "home", top / "shared"
    shared.mkdir()
    root = Path(__file__).resolve().parent.parent
    for part in ("helpers", "tools", "notebooks"):  # the working tree, as the class installed it
        shutil.copytree(root / part, clone / part)
    shutil.copy(root / "pyproject.toml", clone)
    home.mkdir()
    os.chown(home, 65534, 65534)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGM_")}
    done = subprocess.run([sys.executable, "-c", READ_ONLY_RUN], capture_output=True, text=True,
                          cwd=clone, env={**env, "HOME": str(home), "PYTHONPATH": str(clone),
                                          "SHARED": str(shared)})
    assert done.returncode == 0, done.stderr[-2000:]
    *printed, last = done.stdout.splitlines()
    report = json.loads(last)
    assert report["helpers"].startswith(str(clone)) and report["code"] == 0
    own = home / "dgm-course"
    assert any("read-only" in line and str(own) in line for line in printed)
    assert list((own / "checkpoints").glob("test-linear-*.pt"))
    assert len(list((own / "student").glob("*.ipynb"))) == 7 and "cannot be written" in \
        report["copies"]
    assert not (clone / "student").exists() and not (clone / "build").exists()
    (message,) = report["warnings"]
    assert str(shared) in message and "kept in memory" in message
    assert report["steps"] == 20 and not list(shared.iterdir())
