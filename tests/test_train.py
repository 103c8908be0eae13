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
    assert history["seconds"] == sorted(history["seconds"]) and history["seconds"][0] > 0
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    assert not model.training


def test_fit_meters_images_and_the_flops_of_forward_and_backward():
    model, batches = _regression()  # Linear(3, 1) on batches of 256; the inputs need no gradient
    history = train.fit(model, _mse, batches, num_steps=20, log_every=10)
    per_step = 2 * 256 * 3 + 2 * 256 * 3  # forward x @ W^T, backward dL/dW = dy^T x: 2 FLOPs a MAC
    assert history["images"] == [10 * 256, 20 * 256]
    assert history["gflop"] == pytest.approx([10 * per_step / 1e9, 20 * per_step / 1e9])
    rate = train.throughput(history)
    assert rate["images_per_s"] == pytest.approx(20 * 256 / history["seconds"][-1], rel=1e-3)
    assert rate["gflop_per_image"] == pytest.approx(per_step / 256 / 1e9, rel=1e-3)
    assert train.throughput({"step": [1], "loss": [0.5]}) == {}  # a history saved before the meter


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


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    monkeypatch.delenv("DGM_RETRAIN", raising=False)
    rt = runtime.setup(verbose=False)
    calls = []

    def run(model, lr=0.05):
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


USER_RUN = """
import json, os, warnings
import torch
from helpers import runtime, train
os.setgid(65534)  # from here on: a student's account, not root
os.setuid(65534)
model = torch.nn.Linear(3, 1)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    history = train.train_or_load(runtime.setup(verbose=False), "test", "linear", model,
                                  lambda: {"step": [20]})  # as if trained for 20 steps
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


# Each notebook family's training cell in miniature, in the notebook's own shape (a training
# function, closures, optimizers made outside or inside it, an EMA, a second model feeding the
# first). Every `{setting}` is one thing that affects training: changing any one of them must give
# another checkpoint name, and running the same cells again the same name.
FAMILIES = {
    "02 MADE / PixelCNN": ("""
lr, hidden, steps, batch = {lr}, {hidden}, {steps}, {batch}
x_train = torch.rand({n}, 6, generator=torch.Generator().manual_seed(0))
order = torch.randperm(6, generator=torch.Generator().manual_seed({order_seed}))

class Net(nn.Module):
    def __init__(self, order, hidden):
        super().__init__()
        self.register_buffer("order", order)
        self.layer = nn.Linear(6, hidden)

def nll_loss(model, x):
    return model.layer(x).pow({power}).mean()

def fit_model(model, name, steps, batch):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    return train.train_or_load(rt, "02", name, model, lambda: train.fit(
        model, nll_loss, data.batches(x_train, batch_size=batch), steps, optimizer=opt,
        scheduler=sched))

fit_model(Net(order, hidden), "made", steps, batch)
""", dict(lr=1e-3, hidden=8, steps=100, batch=32, n=500, order_seed=1, power=2)),
    "04 VAE": ("""
latent_dim, hidden, batch_size, lr = {latent_dim}, 16, {batch_size}, {lr}
x_train = torch.rand({n}, 6, generator=torch.Generator().manual_seed(0))

def vae_loss(vae, x):
    return vae(x).pow(2).mean()

def train_vae(latent_dim, steps, name):
    vae = nn.Sequential(nn.Linear(6, latent_dim), nn.Linear(latent_dim, 6))
    opt = torch.optim.Adam(vae.parameters(), lr=lr, weight_decay={weight_decay})
    return train.train_or_load(rt, "04", name, vae, lambda: train.fit(
        vae, vae_loss, data.batches(x_train, batch_size=batch_size), steps, optimizer=opt))

train_vae(latent_dim, {steps}, "vae")
""", dict(latent_dim=2, batch_size=32, lr=1e-3, n=500, weight_decay=0.01, steps=100)),
    "05 GAN": ("""
latent_dim, width, batch_size, lr, betas = {latent_dim}, {width}, {batch_size}, {lr}, {betas}

def gan_step(G, D, opt_g, opt_d, real):
    return D(G(torch.randn(len(real), latent_dim))).mean() * {d_weight}

def train_dcgan(x, name, steps):
    G, D = nn.Linear(latent_dim, width), nn.Linear(width, 1)
    players = nn.ModuleDict({{"G": G, "D": D}})

    def run():
        opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
        opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
        for _, real in zip(range(steps), data.batches(x, batch_size=batch_size)):
            gan_step(G, D, opt_g, opt_d, real)
        return {{}}
    return train.train_or_load(rt, "05", name, players, run)

train_dcgan(torch.rand({n}, 6, generator=torch.Generator().manual_seed(0)), "dcgan", {steps})
""", dict(latent_dim=4, width=6, batch_size=32, lr=2e-4, betas=(0.5, 0.999), d_weight=1.0,
          n=500, steps=100)),
    "06 diffusion": ("""
width, batch_size, lr, ema_decay, T = {width}, {batch_size}, {lr}, {ema_decay}, {T}
ab = torch.linspace(0.99, 0.01, T)

def diffusion_loss(model, x0, ab):
    return model(x0 * ab[0]).pow(2).mean()

def train_diffusion(images, name, steps):
    net = nn.Sequential(nn.Linear(6, width), nn.Linear(width, 6))
    ema = train.EMA(net, ema_decay)

    def run():
        return train.fit(net, lambda m, x0: diffusion_loss(m, x0, ab),
                         data.batches(images, batch_size=batch_size), steps, lr=lr,
                         warmup_steps={warmup}, callback=ema.update)
    return train.train_or_load(rt, "06", name, ema, run)

train_diffusion(torch.rand({n}, 6, generator=torch.Generator().manual_seed(0)), "unet", {steps})
""", dict(width=8, batch_size=32, lr=1e-3, ema_decay=0.999, T=100, warmup=100, n=500,
          steps=100)),
    "07 CLIP -> prior": ("""
torch.manual_seed({clip_seed})
clip = nn.Linear(6, 4)  # trained (or loaded) in an earlier cell
x_train = torch.rand({n}, 6, generator=torch.Generator().manual_seed(0))
scale = {scale}
train_emb = clip(x_train).detach() * scale

def prior_loss(model, batch):
    return (model(batch) - clip(batch @ torch.ones(4, 6))).pow(2).mean()

prior = nn.Linear(4, 4)
train.train_or_load(rt, "07", "prior", prior, lambda: train.fit(
    prior, prior_loss, data.batches(train_emb, batch_size={batch}), {steps}, lr={lr}))
""", dict(clip_seed=1, n=500, scale=2.0, batch=256, steps=100, lr=1e-3)),
}


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


@pytest.mark.parametrize("family", FAMILIES)
def test_changing_any_training_setting_of_a_notebook_family_trains_again(family, monkeypatch):
    source, settings = FAMILIES[family]
    first = _checkpoint_of(source.format(**settings), monkeypatch)
    assert _checkpoint_of(source.format(**settings), monkeypatch) == first  # a re-run loads
    for key, value in settings.items():
        changed = {**settings, key: value * 2 if not isinstance(value, tuple) else (0.9, 0.99)}
        assert _checkpoint_of(source.format(**changed), monkeypatch) != first, \
            f"{family}: changing {key} would load the stale model"


READ_ONLY_RUN = """
import contextlib, io, json, os
import nbformat, torch
from helpers import checkpoints, evaluate, runtime, train
from tools import student
nbformat.validate(nbformat.v4.new_notebook())  # its lazy imports, while they can be read
os.setgid(65534)  # from here on: a student's account, not root
os.setuid(65534)
rt = runtime.setup()
model = torch.nn.Linear(3, 1)
train.train_or_load(rt, "test", "linear", model, lambda: {"step": [20]})
evaluate.record(rt, "test_notebook", {"nll": 1.0})
with contextlib.redirect_stdout(io.StringIO()) as copies:
    code = student.main(["notebooks", "student"])
print(json.dumps({"helpers": evaluate.__file__, "copies": copies.getvalue(), "code": code}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="it drops root's privileges to be a normal user")
def test_a_read_only_course_folder_writes_everything_to_the_users_own():
    """The class set-up: a shared read-only clone; results, models and student copies go to the
    student's ~/dgm-course, said once by the first cell."""
    top = Path(tempfile.mkdtemp(prefix="dgm-class-"))  # root's: others may only read it
    top.chmod(0o755)
    try:
        _read_only_run(top)
    finally:
        shutil.rmtree(top)


def _read_only_run(top: Path):
    clone, home = top / "course", top / "home"
    root = Path(__file__).resolve().parent.parent
    for part in ("helpers", "tools", "notebooks"):  # the working tree, as the class installed it
        shutil.copytree(root / part, clone / part)
    shutil.copy(root / "pyproject.toml", clone)
    home.mkdir()
    os.chown(home, 65534, 65534)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGM_")}
    done = subprocess.run([sys.executable, "-c", READ_ONLY_RUN], capture_output=True, text=True,
                          cwd=clone, env={**env, "HOME": str(home), "PYTHONPATH": str(clone)})
    assert done.returncode == 0, done.stderr[-2000:]
    *printed, last = done.stdout.splitlines()
    report = json.loads(last)
    assert report["helpers"].startswith(str(clone)) and report["code"] == 0
    own = home / "dgm-course"
    assert any("read-only" in line and str(own) in line for line in printed)
    assert list((own / "checkpoints").glob("test-linear-*.pt"))
    assert list((own / "build" / "results").glob("test_notebook-*.json"))
    assert len(list((own / "student").glob("*.ipynb"))) == 7 and "cannot be written" in \
        report["copies"]
    assert not (clone / "student").exists() and not (clone / "build").exists()
