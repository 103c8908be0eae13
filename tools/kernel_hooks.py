"""The harness inside a notebook's kernel, attached from outside: tools.runner starts every kernel
with an IPython start-up file that calls `install()`, and after the notebook's last cell it calls
`save()`. The notebook itself has no cell for the harness.

- Always: every training run that `train.train_or_load` starts is measured: its seconds (the
  device synchronised), the images drawn from its batches, and the FLOPs of one step (the
  forward and backward passes of the first step, counted by PyTorch's FlopCounterMode).
- `save()` writes the notebook's `results` (the dict its last cell builds with
  `evaluate.report`) with the run's mode, device, wall time, instrument and training figures to
  the file the runner names ($DGM_HARNESS_RESULTS), and its sample grids beside it.
- DGM_EMULATE=cuda|mps: the kernel runs on the emulated device (tests/fake_device.py); every
  `train.fit` on it must leave the host alone between logging steps.
- DGM_COMPILE_CHECK=1: every training step that gpu mode compiles is compiled on the CPU too,
  and must be traced into one graph once (`check_compiled_steps`).
- DGM_SMOKE=1 (tools/runner.py's SMOKE_CARDS: gpu mode on an emulated H100-class card, or a T4's
  default, cpu mode): the mode's sizes with the quick mode's amounts of work; each `rt.count`
  remembers the mode's value, and what the notebook did on the device (FLOPs,
  launches, peak bytes, per training and per cell, with the counts each cell used) goes to
  $DGM_EMULATE_REPORT/<notebook>.json for tools/gpu_budget.py.
"""

import ast
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = os.environ.get("DGM_HARNESS_NOTEBOOK", "notebook")
training: dict[str, dict] = {}  # model name -> its measured training
_meters: list = []  # the training runs in progress (innermost last)


class _Meter:
    """Images drawn and FLOPs of the first step, while a training run is in progress."""

    def __init__(self):
        self.images, self.draws, self.flops, self._counter = 0, 0, None, None

    def drew(self, batch) -> None:
        first = batch[0] if isinstance(batch, (tuple, list)) else batch
        self.images += len(first) if isinstance(first, torch.Tensor) else 1
        self.draws += 1
        if self.draws == 1:  # count from the first draw to the second: one step's work
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()
        elif self.draws == 2:
            self.stop()

    def stop(self) -> None:
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.flops, self._counter = self._counter.get_total_flops(), None


class _Counted:
    """An iterator of batches that tells the training run in progress what it draws."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.batches)
        if _meters:
            _meters[-1].drew(batch)
        return batch


def measure_training() -> None:
    from helpers import data, runtime, train

    batches, fit, train_or_load = data.batches, train.fit, train.train_or_load
    data.batches = lambda *a, **k: _Counted(batches(*a, **k))
    train.fit = lambda model, loss_fn, b, *a, **k: fit(
        model, loss_fn, b if isinstance(b, _Counted) else _Counted(b), *a, **k)

    def measured(rt, notebook, name, model, train_fn):
        meter = _Meter()
        _meters.append(meter)
        runtime.synchronize(rt.device)
        start = time.perf_counter()
        try:
            return train_or_load(rt, notebook, name, model, train_fn)
        finally:
            runtime.synchronize(rt.device)
            seconds = time.perf_counter() - start
            meter.stop()
            _meters.pop()
            if meter.draws:  # trained (a loaded model draws no batch)
                gflop = meter.draws * (meter.flops or 0) / 1e9
                training[name] = {
                    "steps": meter.draws, "images": meter.images, "seconds": round(seconds, 3),
                    "images_per_s": round(meter.images / seconds, 1),
                    "gflop_per_s": round(gflop / seconds, 2),
                    "gflop_per_image": float(f"{gflop / meter.images:.3g}")}

    train.train_or_load = measured


def save() -> None:
    """Write the notebook's results and the harness's measurements (called after its last cell)."""
    from helpers import runtime
    from tools import instrument

    shell = get_ipython()  # noqa: F821 (the kernel's)
    results, rt = shell.user_ns.get("results"), shell.user_ns.get("rt")
    if not isinstance(results, dict) or rt is None:
        raise RuntimeError(f"{NOTEBOOK}: the notebook did not end with `results = "
                           "evaluate.report(rt, ...)`")
    families = results.get("families", [])
    out = Path(os.environ["DGM_HARNESS_RESULTS"])
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "notebook": NOTEBOOK, "mode": f"{rt.mode}-smoke" if _smoke() else rt.mode,
        "device": str(rt.device), "device_name": runtime.device_name(rt.device),
        "precision": rt.precision, "threads": torch.get_num_threads(),
        "matmul_gflop_per_s": _rate(rt.device),
        "date": time.strftime("%Y-%m-%d %H:%M"), "wall_time_s": round(rt.elapsed(), 1),
        **(instrument.identity() if families else {}), "training": training,
        "metrics": results.get("metrics", {}), "targets": results.get("targets", {}),
        "families": [{k: v for k, v in f.items() if k != "grid"} for f in families]}
    out.write_text(json.dumps(record, indent=2))
    if families:
        torch.save({f["name"]: f["grid"] for f in families},
                   out.with_name(f"{out.stem}-samples.pt"))
    _write_smoke_report(rt.mode)


def _rate(device) -> float | None:
    """The machine's matmul rate, measured in this kernel as the notebook ends (when the
    benchmark runs notebooks one at a time, DGM_HARNESS_RATE=1), else None."""
    if os.environ.get("DGM_HARNESS_RATE") != "1":
        return None
    from tools.bench import matmul_peak

    return matmul_peak(device)["gflop_per_s"]


# --- the emulated device and the smoke run ------------------------------------------------------

def _smoke() -> bool:
    return os.environ.get("DGM_SMOKE") == "1"


class Count(int):
    """A smoke run's count: the quick value, which remembers the run's mode's one (`full`)."""

    def __new__(cls, value: int, full: int):
        count = super().__new__(cls, value)
        count.full = full
        return count


def smoke_counts() -> None:
    """rt.count gives the quick amount of work, remembering the mode's amount (gpu's, or cpu's
    on an emulated T4); sizes stay the mode's."""
    from helpers import runtime

    def count(self, *, quick, cpu, gpu):
        full = self.pick(quick=quick, cpu=cpu, gpu=gpu)
        return Count(quick, full) if isinstance(quick, int) else quick

    runtime.Runtime.count = count


def audit_training_steps() -> None:
    """Make every `helpers.train.fit` on the emulated device prove that its steps leave the host
    alone: between the start of one step and the next, the counters may move only on logging
    steps (and the first step, which creates the optimiser's state). A few uploads are allowed
    for the batch order, which crosses once per epoch (every other step at most)."""
    from fake_device import NAME, DeviceRuleError, stats

    from helpers import train

    fit = train.fit

    def audited_fit(model, loss_fn, batches, num_steps, *args, log_every=10, **kwargs):
        if next(model.parameters()).device.type != NAME:
            return fit(model, loss_fn, batches, num_steps, *args, log_every=log_every, **kwargs)
        marks, before = [], dict(stats)

        def counted(m, batch):
            marks.append((stats["syncs"], stats["uploads"]))
            return loss_fn(m, batch)

        history = fit(model, counted, batches, num_steps, *args, log_every=log_every, **kwargs)
        marks.append((stats["syncs"], stats["uploads"]))
        smoke["fits"].append({
            "desc": kwargs.get("desc", "training"), "steps": int(num_steps),
            "full_steps": int(getattr(num_steps, "full", num_steps)),
            "flops": stats["flops"] - before["flops"], "ops": stats["ops"] - before["ops"]})
        quiet = [(step, s1 - s0, u1 - u0) for step, ((s0, u0), (s1, u1))
                 in enumerate(zip(marks, marks[1:], strict=False), start=1)
                 if step > 1 and step % log_every and step != num_steps]
        syncing = [(step, syncs) for step, syncs, up in quiet if syncs > up]  # a copy is one
        uploads = sum(u for _, _, u in quiet)
        if syncing or uploads > len(quiet) // 2 + 1:  # an epoch's order: at most every 2 steps
            raise DeviceRuleError(
                f"training ({kwargs.get('desc', 'fit')}) made the host wait for the device on "
                f"steps that do not log: syncs at (step, count) {syncing[:5]}, {uploads} copies "
                "from the CPU in such steps. Keep values on the device between "
                "logging steps (no .item(), float(), print or CPU tensors inside the step).")
        return history

    train.fit = audited_fit


smoke: dict = {"fits": [], "cells": []}


def _counts_used(source: str, namespace: dict) -> dict[str, float]:
    """{name: full / quick} of the smoke counts that a cell's code reads, directly or through the
    notebook's own functions that it calls."""
    try:
        names = {n.id for n in ast.walk(ast.parse(source))
                 if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    except SyntaxError:  # IPython syntax (%pip): no counts
        return {}
    todo, seen, found = list(names), set(), {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        value = namespace.get(name)
        if isinstance(value, Count) and value:
            found[name] = value.full / int(value)
        code = getattr(value, "__code__", None)
        if code is not None and getattr(value, "__module__", None) == "__main__":
            todo += list(code.co_names) + [n for c in code.co_consts
                                           if hasattr(c, "co_names") for n in c.co_names]
    return found


def track_cells(shell) -> None:
    """Record the device FLOPs and operations of each cell, the training inside it and the smoke
    counts it uses, so that tools/gpu_budget.py can scale each cell to the mode's full run."""
    from fake_device import stats

    start = {}

    def before(info):
        start.update(stats, fits=len(smoke["fits"]), source=info.raw_cell)
        _cell.update(source=info.raw_cell, namespace=shell.user_ns)

    def after(result):
        if "source" not in start:
            return
        fits = smoke["fits"][start["fits"]:]
        smoke["cells"].append({
            "source": start["source"], "flops": stats["flops"] - start["flops"],
            "ops": stats["ops"] - start["ops"], "counts": _counts_used(start["source"],
                                                                        shell.user_ns),
            "fit_flops": sum(f["flops"] for f in fits), "fit_ops": sum(f["ops"] for f in fits)})

    shell.events.register("pre_run_cell", before)
    shell.events.register("post_run_cell", after)


_cell: dict = {}  # the cell being run: its source and the notebook's namespace


def track_own_loops() -> None:
    """A training run that does not go through `fit` (05's two-player loop) is reported like a
    `fit`: its device work, its steps, and as its full steps, its steps times the largest
    full / quick ratio among the counts its cell reads."""
    from fake_device import stats

    from helpers import train

    train_or_load = train.train_or_load

    def tracked(rt, notebook, name, model, train_fn):
        before, fits = dict(stats), len(smoke["fits"])
        try:
            return train_or_load(rt, notebook, name, model, train_fn)
        finally:
            steps = _meters[-1].draws if _meters else 0
            if steps and len(smoke["fits"]) == fits:
                ratio = max(_counts_used(_cell.get("source", ""), _cell.get("namespace", {}))
                            .values(), default=1)
                smoke["fits"].append({"desc": name, "steps": steps,
                                      "full_steps": round(steps * ratio),
                                      "flops": stats["flops"] - before["flops"],
                                      "ops": stats["ops"] - before["ops"]})

    train.train_or_load = tracked


def _write_smoke_report(mode: str) -> None:
    folder = os.environ.get("DGM_EMULATE_REPORT")
    if not folder:
        return
    from fake_device import stats

    totals = {k: stats[k] for k in ("flops", "ops", "peak_bytes")}
    path = Path(folder) / f"{NOTEBOOK}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    smoke["cells"] = [c for c in smoke["cells"] if "kernel_hooks" not in c["source"]]
    path.write_text(json.dumps({"notebook": NOTEBOOK, "mode": mode, **smoke, **totals,
                                "kind": os.environ.get("DGM_EMULATE")}))


def check_compiled_steps() -> None:
    """DGM_COMPILE_CHECK=1: every `fit(..., compile=True)` compiles its step here too, on the CPU
    (torch.compile with the eager backend: traced, not turned into kernels), and the step must
    come out as one graph traced once, twice at most (a change of shape). A graph break, or a
    guard that fails at every step, would make a GPU trace and compile the step again and again:
    found here, before a GPU's time is spent on it."""
    from torch._dynamo.testing import CompileCounter

    from helpers import runtime, train

    fit = train.fit

    def checked_fit(model, loss_fn, batches, num_steps, *args, compile=False, **kwargs):
        if not compile:
            return fit(model, loss_fn, batches, num_steps, *args, **kwargs)
        graphs, made, compiled = CompileCounter(), [], runtime.compiled
        runtime.compiled = lambda step, device, mode: made.append(runtime.CompiledStep(
            step, lambda f: torch.compile(f, backend=graphs))) or made[-1]
        try:
            history = fit(model, loss_fn, batches, num_steps, *args, compile=True, **kwargs)
        finally:
            runtime.compiled = compiled
        desc, calls = kwargs.get("desc", "training"), made[0].calls
        print(f"compile check: {desc}: {calls} of {num_steps} steps compiled, "
              f"{graphs.frame_count} graph(s) traced")
        if not calls or not 1 <= graphs.frame_count <= 2:
            raise RuntimeError(
                f"compile check: the compiled step of {desc!r} ran compiled {calls} times and "
                f"was traced {graphs.frame_count} times: it should be one graph traced once. "
                "Run it with TORCH_LOGS=graph_breaks,recompiles to see why (a Python value that "
                "changes every step, or a call that torch.compile cannot trace).")
        return history

    train.fit = checked_fit


def install() -> None:
    """What the start-up file runs in every kernel the runner starts."""
    kind = os.environ.get("DGM_EMULATE")
    if kind:
        sys.path.insert(0, str(ROOT / "tests"))
        import fake_device

        fake_device.install(kind)
        audit_training_steps()
        track_cells(get_ipython())  # noqa: F821
        track_own_loops()
    if _smoke():
        smoke_counts()
    if os.environ.get("DGM_COMPILE_CHECK") == "1":
        check_compiled_steps()
    measure_training()
