"""Portability without the hardware: the emulated CUDA and MPS devices of fake_device.py enforce
the real devices' rules, and the helpers and checks keep them. (The notebooks themselves run on
both emulated devices through tools.runner in `make test-devices`, each `fit` audited for
syncs: tests/test_harness.py.)"""

import gc

import fake_device
import matplotlib
import pytest
import torch
import torch.nn.functional as F
from fake_device import DeviceRuleError
from torch import nn

from helpers import checkpoints, checks, config, data, diffusion, evaluate, runtime, train

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _emulate(kind, monkeypatch, capability="9.0"):
    monkeypatch.setenv("DGM_FAKE_CAPABILITY", capability)
    fake_device.install(kind)
    return torch.device(fake_device.NAME, 0)


@pytest.fixture(params=["cuda", "mps"])
def device(request, monkeypatch):
    yield _emulate(request.param, monkeypatch)
    fake_device.uninstall()


@pytest.fixture
def emulate(monkeypatch):
    """emulate(kind, capability) -> the device; left again after the test."""
    yield lambda kind, capability="9.0": _emulate(kind, monkeypatch, capability)
    fake_device.uninstall()


def test_the_emulator_refuses_what_a_real_device_refuses(device):
    x = torch.randn(4, 3, device=device)
    with pytest.raises(DeviceRuleError, match="same device"):
        x + torch.ones(4, 3)  # a CPU tensor in a device operation
    assert (x * torch.tensor(2.0)).device == device  # a 0-dim CPU tensor is a scalar: allowed
    with pytest.raises(DeviceRuleError, match="indices"):
        torch.ones(4)[x[:, 0] > 0]  # a CPU tensor indexed with a device mask
    assert x[torch.tensor([0, 2])].shape == (2, 3)  # device tensor, CPU indices: allowed
    with pytest.raises(DeviceRuleError, match="generator"):
        torch.randn(3, device=device, generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="numpy"):
        plt.imshow(x)
    plt.close("all")
    assert x.cpu().numpy().shape == (4, 3) and x.sum().item() == pytest.approx(float(x.sum()))


def test_an_lstm_runs_on_the_emulated_devices_as_on_the_cpu(device):
    torch.manual_seed(0)
    lstm, x = nn.LSTM(1, 8, batch_first=True), torch.randn(3, 20, 1, requires_grad=True)
    out, (h, c) = lstm(x)
    (out.sum() + c.square().sum()).backward()
    cpu = [out, h, c, x.grad, *(p.grad for p in lstm.parameters())]
    lstm.zero_grad()
    lstm_d, x_d = lstm.to(device), x.detach().to(device).requires_grad_()
    out, (h, c) = lstm_d(x_d)  # the accelerators' fused cell, emulated
    (out.sum() + c.square().sum()).backward()
    emulated = [out, h, c, x_d.grad, *(p.grad for p in lstm_d.parameters())]
    for a, b in zip(cpu, emulated, strict=True):
        assert b.device == device and torch.allclose(a, b.cpu(), atol=1e-5)


def test_the_emulated_mps_has_no_float64_and_cuda_autocasts_like_cuda(emulate):
    dev = emulate("mps")
    with pytest.raises(TypeError, match="float64"):
        torch.zeros(2, device=dev).double()
    with pytest.raises(TypeError, match="float64"):
        torch.ones(2, dtype=torch.float64).to(dev)
    fake_device.uninstall()
    dev = emulate("cuda")
    assert torch.zeros(2, device=dev).double().dtype == torch.float64  # CUDA has float64
    layer = nn.Linear(3, 2).to(dev)
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        out = layer(torch.randn(4, 3, device=dev))
        assert out.dtype == torch.bfloat16  # a matmul runs in bf16
        assert out.float().softmax(1).sum(1).dtype == torch.float32
        assert F.mse_loss(out, out.detach()).dtype == torch.float32  # losses in float32
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            F.binary_cross_entropy(torch.rand(3, device=dev), torch.rand(3, device=dev))


def test_bf16_convolutions_compute_as_tensor_cores_do(emulate):
    """Sums in float32 of the bf16 operands, the result rounded to bf16; one launch each way."""
    dev = emulate("cuda")
    x, w = (torch.randn(*shape).bfloat16() for shape in ((2, 3, 8, 8), (4, 3, 3, 3)))
    wide = F.conv2d(x.float(), w.float()).bfloat16()
    x_dev, w_dev = x.to(dev).requires_grad_(), w.to(dev).requires_grad_()
    before = fake_device.stats["ops"]
    out = F.conv2d(x_dev, w_dev)
    assert fake_device.stats["ops"] - before == 1 and out.dtype == torch.bfloat16
    assert torch.equal(out.cpu(), wide)
    out.float().sum().backward()
    assert w_dev.grad.dtype == torch.bfloat16 and w_dev.grad.abs().sum() > 0


@pytest.mark.parametrize("capability,dtype", [("9.0", torch.bfloat16), ("8.0", torch.bfloat16),
                                              ("7.5", None), ("7.0", None)])
def test_bf16_only_where_the_gpu_does_it_natively(emulate, capability, dtype, capsys):
    dev = emulate("cuda", capability)
    assert runtime.autocast_dtype(dev) == dtype
    runtime.setup(verbose=True)
    line = capsys.readouterr().out
    assert ("bf16 autocast" in line) == (dtype is not None)  # a T4 (7.5) is told float32
    assert f"compute capability {capability}" in line and "mode" in line


@pytest.mark.parametrize("kind,capability,mode", [("cuda", "9.0", "gpu"), ("cuda", "8.0", "gpu"),
                                                  ("cuda", "7.5", "cpu"), ("mps", "9.0", "cpu")])
def test_gpu_mode_is_the_default_only_on_a_gpu_with_bf16(emulate, kind, capability, mode, capsys,
                                                         monkeypatch):
    dev = emulate(kind, capability)
    for variable in ("DGM_QUICK", "DGM_MODE"):
        monkeypatch.delenv(variable, raising=False)
    assert runtime.run_mode(config.read({}), dev) == mode
    assert runtime.run_mode(config.read({"DGM_QUICK": "1"}), dev) == "quick"
    assert runtime.run_mode(config.read({"DGM_MODE": "gpu"}), dev) == "gpu"  # asked for: given
    rt = runtime.setup(verbose=True)
    told = "cpu mode's recipes on this GPU" in capsys.readouterr().out
    assert (rt.mode, told) == (mode, mode == "cpu")  # a T4 or a Mac is told why, and how to change


def test_no_autocast_on_mps_or_a_cpu_without_amx(emulate, monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_amx", lambda: False)
    assert runtime.autocast_dtype(torch.device("cpu")) is None  # AVX512-BF16 alone: slower
    assert runtime.precision(torch.device("cpu")) == "float32"
    assert runtime.autocast_dtype(emulate("mps")) is None


def test_a_cpu_with_amx_trains_in_bf16_and_stays_in_cpu_mode(monkeypatch, capsys):
    monkeypatch.setattr(runtime, "cpu_has_amx", lambda: True)
    for variable in ("DGM_QUICK", "DGM_MODE", "DGM_DEVICE"):
        monkeypatch.delenv(variable, raising=False)
    cpu = torch.device("cpu")
    assert runtime.autocast_dtype(cpu) == torch.bfloat16
    assert runtime.run_mode(config.read({}), cpu) == "cpu"  # bf16 units, but a CPU's budget
    with runtime.autocast(cpu):
        assert nn.Linear(3, 2)(torch.randn(4, 3)).dtype == torch.bfloat16
    rt = runtime.setup(verbose=True)
    assert (rt.mode, rt.precision) == ("cpu", "bf16 autocast (AMX)")
    assert "bf16 autocast (AMX)" in capsys.readouterr().out
    seen = []

    def loss(model, _):
        out = model(torch.randn(4, 3))
        seen.append(out.dtype)
        return out.float().pow(2).mean()
    for autocast in (True, False):
        train.fit(nn.Linear(3, 2), loss, iter(lambda: None, 0), 1, autocast=autocast)
    assert seen == [torch.bfloat16, torch.float32]  # the instrument trains in float32 anywhere


def test_the_sampling_check_takes_an_answer_built_on_the_device(device):
    def sample_autoregressive(logits_fn, num_samples, num_pixels, order):
        x = torch.zeros(num_samples, num_pixels, device=device)  # as the notebook's solution
        for i in order:
            x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i]))
        return x

    checks.check_sample_autoregressive(sample_autoregressive)


def test_the_evaluation_kit_gives_the_cpu_numbers_for_device_samples(device):
    x, y = data.load("mnist", "test", n=300)
    on_device = x.to(device)
    assert evaluate.inception_score(on_device) == evaluate.inception_score(x)
    assert evaluate.fid(on_device) == evaluate.fid(x)
    assert evaluate.label_stats(on_device, y.to(device)) == evaluate.label_stats(x, y)
    copy = evaluate.reference_classifier(device)
    assert next(copy.parameters()).device == device
    original = evaluate.reference_classifier()
    assert all(torch.equal(a.cpu(), b) for a, b in zip(copy.parameters(), original.parameters(),
                                                       strict=True))


def _steps_between(model, loss_fn, batches, num_steps, log_every):
    """Sync and upload counts of each step (from one loss call to the next) during `fit`."""
    marks = []

    def counted(m, batch):
        marks.append((fake_device.stats["syncs"], fake_device.stats["uploads"]))
        return loss_fn(m, batch)

    train.fit(model, counted, batches, num_steps, lr=1e-3, log_every=log_every)
    marks.append((fake_device.stats["syncs"], fake_device.stats["uploads"]))
    return [(s1 - s0, u1 - u0) for (s0, u0), (s1, u1) in zip(marks, marks[1:], strict=False)]


def test_training_steps_do_not_wait_for_the_device_between_logs(device):
    runtime.setup(verbose=False)
    x = torch.rand(512, 1, 28, 28).to(device)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 1)).to(device)
    ema = train.EMA(model, 0.9)

    def loss_fn(m, batch):
        ema.update()  # the averaging of 06 and 07 runs in the step too
        return m(batch).pow(2).mean(), {"mean": m(batch).mean()}

    per_step = _steps_between(model, loss_fn, data.batches(x, batch_size=64), 40, log_every=10)
    assert len(per_step) == 40
    quiet = [counts for step, counts in enumerate(per_step, start=1)
             if step > 1 and step % 10 and step % 8]  # not logging, not an epoch's first batch
    assert quiet and all(counts == (0, 0) for counts in quiet), per_step
    logging = per_step[9]  # step 10 reads the loss and one term back
    assert logging[0] >= 2


def test_timings_wait_for_the_device(device):
    rt = runtime.Runtime(device, "quick", 0)
    before = fake_device.stats["syncs"]
    out, seconds = rt.timed(lambda a: a * 2, torch.ones(3, device=device))
    assert fake_device.stats["syncs"] - before == 2 and seconds >= 0 and out.device == device


def test_checkpoints_from_the_device_load_anywhere(device, tmp_path):
    model = nn.Linear(3, 2).to(device)
    path = checkpoints.store("m.pt", {"model": model.state_dict(), "history": {"loss": [1.0]}},
                       [tmp_path])
    saved = checkpoints.load(path)
    assert all(t.device.type == "cpu" for t in saved["model"].values())
    fresh = nn.Linear(3, 2).to(device)
    fresh.load_state_dict(saved["model"])
    assert torch.equal(fresh.weight.cpu(), model.weight.cpu())


def test_06_samples_without_keeping_every_step_unless_asked(device, monkeypatch, notebook_cells):
    monkeypatch.setenv("DGM_QUICK", "1")
    ns = notebook_cells("06_diffusion.ipynb", "alpha_bar = diffusion.cosine_alpha_bar",
                         "def ddpm_step", "def ddim_step", "def sample(")
    ns["T"] = 200  # the notebook's sampler on a shorter schedule: the same loop, a fifth of it
    ns["ab"] = diffusion.cosine_alpha_bar(ns["T"]).to(device, torch.float32)
    x = torch.randn(64, 1, 28, 28, device=device)
    no_noise = lambda x_t, t: torch.zeros_like(x_t)

    def peak(**kwargs):
        gc.collect()  # tensors of earlier tests must not be freed during the measurement
        fake_device.stats["peak_bytes"] = fake_device.stats["live_bytes"]
        start = fake_device.stats["live_bytes"]
        out = ns["sample"](no_noise, x, None, **kwargs)
        return fake_device.stats["peak_bytes"] - start, out

    lean, _ = peak()
    full, path = peak(trajectory=True)
    assert len(path) == ns["T"] + 1 and full > 100 * x.nbytes
    assert lean < 20 * x.nbytes, f"sampling held {lean / x.nbytes:.0f} batches at once"


def test_the_shipped_instrument_gives_the_same_logits_on_every_device(device):
    batch = data.load("mnist", "test", n=64)[0]  # (64, 1, 28, 28) on the CPU
    on_cpu = evaluate.reference_classifier("cpu")(batch)
    on_device = evaluate.reference_classifier(device)(batch.to(device)).cpu()
    assert torch.equal(on_cpu, on_device)
    assert evaluate.inception_score(batch.to(device)) == evaluate.inception_score(batch)

