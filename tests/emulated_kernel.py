"""IPython start-up file for the notebook kernels of `make test-devices` and `make test-gpu-smoke`
(the Makefile copies it into an IPYTHONDIR of their own). With DGM_EMULATE=cuda or mps the kernel
runs on the emulated device of fake_device.py, every `train.fit` on it is audited for steps that
make the host wait, and, with DGM_EMULATE_REPORT=DIR, what the notebook did on the device (FLOPs,
launches and peak bytes, per training and per cell) is written to DIR/<notebook>.json for
tests/gpu_budget.py.
"""

import atexit
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.environ.get("DGM_TESTS") or str(Path(__file__).resolve().parent))
import fake_device  # noqa: E402
from fake_device import NAME, DeviceRuleError, stats  # noqa: E402


def audit_training_steps() -> None:
    """Make every `helpers.train.fit` on the device prove that its steps leave the host alone.

    Between the start of one step and the next, the counters may move only on logging steps
    (and the first step, which creates the optimiser's state): any other step that reads a value
    back, or copies a fresh tensor from the CPU, raises DeviceRuleError naming the step. A few
    uploads are allowed for the batch order, which crosses once per epoch (every other step at
    most), but not one on every step.
    """
    from helpers import evaluate, train

    fit = train.fit

    def audited_fit(model, loss_fn, batches, num_steps, *args, log_every=10, **kwargs):
        if next(model.parameters()).device.type != NAME:
            return fit(model, loss_fn, batches, num_steps, *args, log_every=log_every, **kwargs)
        marks, sizes, before = [], [], dict(stats)

        def counted(m, batch):
            marks.append((stats["syncs"], stats["uploads"]))
            sizes.append(len(batch[0] if isinstance(batch, tuple | list) else batch))
            return loss_fn(m, batch)

        history = fit(model, counted, batches, num_steps, *args, log_every=log_every, **kwargs)
        marks.append((stats["syncs"], stats["uploads"]))
        report["fits"].append({
            "desc": kwargs.get("desc", "training"), "steps": int(num_steps),
            "full_steps": int(getattr(num_steps, "full", num_steps)), "batch": sizes[0],
            "flops": stats["flops"] - before["flops"], "ops": stats["ops"] - before["ops"]})
        _write_report()
        quiet = [(step, s1 - s0, u1 - u0) for step, ((s0, u0), (s1, u1))
                 in enumerate(zip(marks, marks[1:], strict=False), start=1)
                 if step > 1 and step % log_every and step != num_steps]
        syncing = [(step, syncs) for step, syncs, up in quiet if syncs > up]  # a copy is one
        uploads = sum(u for _, _, u in quiet)
        if syncing or uploads > len(quiet) // 2 + 1:  # an epoch's order: at most every 2 steps
            raise DeviceRuleError(
                f"training ({kwargs.get('desc', 'fit')}) made the host wait for the device on "
                f"steps that do not log: syncs at (step, count) {syncing[:5]}, {uploads} copies "
                f"from the CPU in {len(quiet)} such steps. Keep values on the device between "
                "logging steps (no .item(), float(), print or CPU tensors inside the step).")
        return history

    train.fit = audited_fit
    record = evaluate.record

    def reporting_record(rt, notebook, *args, **kwargs):
        report["notebook"] = notebook
        _write_report()
        return record(rt, notebook, *args, **kwargs)

    evaluate.record = reporting_record
    atexit.register(_write_report)


report: dict = {"notebook": None, "fits": [], "cells": []}


def track_cells(shell) -> None:
    """Record the device FLOPs and operations of each notebook cell (with its source), so that an
    estimate can scale each cell's work to the full run (tests/gpu_budget.py)."""
    start = {}

    def before(info):
        start.update(stats, fits=len(report["fits"]), source=info.raw_cell)

    def after(result):
        if "source" not in start:
            return
        fits = report["fits"][start["fits"]:]
        report["cells"].append({
            "source": start["source"], "flops": stats["flops"] - start["flops"],
            "ops": stats["ops"] - start["ops"],
            "fit_flops": sum(f["flops"] for f in fits), "fit_ops": sum(f["ops"] for f in fits)})

    shell.events.register("pre_run_cell", before)
    shell.events.register("post_run_cell", after)


def _write_report() -> None:
    """With DGM_EMULATE_REPORT=DIR: what this kernel measured, in DIR/<notebook>.json."""
    folder = os.environ.get("DGM_EMULATE_REPORT")
    if folder and report["notebook"]:
        totals = {k: stats[k] for k in ("flops", "ops", "peak_bytes")}
        path = Path(folder) / f"{report['notebook']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**report, **totals, "kind": os.environ.get("DGM_EMULATE")}))


if os.environ.get("DGM_EMULATE"):
    fake_device.install(os.environ["DGM_EMULATE"])
    audit_training_steps()
    track_cells(get_ipython())  # noqa: F821 (IPython's start-up namespace)
