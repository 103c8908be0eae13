"""The gpu-budget estimate scales what the smoke run measured as its docstring says."""

import json

import pytest

from tools.gpu_budget import GPUS, START, estimate, main


def _report(counts=None, cell_flops=0.0, cell_ops=0, source="x = 1"):
    fit = {"desc": "unet", "steps": 10, "full_steps": 1000, "flops": 1e12, "ops": 2000}
    cell = {"source": source, "flops": cell_flops + fit["flops"], "ops": cell_ops + fit["ops"],
            "counts": counts or {}, "fit_flops": fit["flops"], "fit_ops": fit["ops"]}
    return {"notebook": "06_diffusion", "fits": [fit], "cells": [cell], "peak_bytes": 2**30}


def test_training_scales_by_the_full_step_count_and_takes_the_slower_bound():
    e = estimate(_report())
    flops, launches = 1e12 * 100, 2000 * 100  # per step x 1000 / 10 steps
    for name, gpu in GPUS.items():
        want = START + max(flops / gpu["flops"], launches * gpu["launch"])
        assert e[name] == pytest.approx(want)
    assert e["tflops"] == pytest.approx(100) and e["peak_gb"] == pytest.approx(1.0)


def test_a_cell_scales_by_the_largest_ratio_of_the_counts_it_reads():
    plain = estimate(_report(cell_flops=1e12, cell_ops=1000))
    sampling = estimate(_report({"n_eval": 78.0, "n_full": 625.0}, cell_flops=1e12,
                                cell_ops=1000))
    assert plain["tflops"] == pytest.approx(101)  # a cell without counts counts once
    assert sampling["tflops"] == pytest.approx(100 + 625)
    assert sampling["launches"] == pytest.approx(200_000 + 1000)  # the same passes, larger


def test_the_cifar_option_is_left_out():
    report = _report(source="x_cifar = data.optional_cifar10()", cell_flops=1e12)
    report["fits"][0]["desc"] = "unet-cifar10"
    assert estimate(report)["tflops"] == pytest.approx(0)


def test_a_t4s_default_run_of_the_cpu_recipes_is_estimated_for_the_t4_only(tmp_path, capsys):
    report = {**_report(), "mode": "cpu"}
    e = estimate(report)
    assert "H100" not in e and e["T4"] == pytest.approx(estimate(_report())["T4"])
    (tmp_path / "06_diffusion.json").write_text(json.dumps(report))
    main(str(tmp_path))
    out = capsys.readouterr().out
    assert "cpu mode's recipes" in out and "est. T4 (float32)" in out and "H100" not in out
    with pytest.raises(SystemExit, match="no smoke reports"):
        main(str(tmp_path / "empty"))
