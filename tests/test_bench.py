"""The benchmark runs in quick mode and writes a well-formed report and table (not its timings)."""

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from tools import bench, bench_figures

# A notebook as the course writes one: set-up, a model trained through the cache, and `results`
# built by evaluate.report at its end; the harness measures the training and saves the results.
TINY = ["import torch\nfrom helpers import data, evaluate, runtime, train\n"
        "rt = runtime.setup(verbose=False)",
        "model = torch.nn.Linear(4, 1)\nx = torch.rand(64, 4)\n"
        "history = train.train_or_load(rt, '00_tiny', 'tiny', model, lambda: train.fit(\n"
        "    model, lambda m, b: m(b).pow(2).mean(), data.batches(x, batch_size=8), 12))",
        "results = evaluate.report(rt, {'nll': 81.0}, {'nll': ('<=', 100)})"]


def _notebook(path, cells):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, path)
    return path


@pytest.mark.slow  # two kernels: with the slow tests, beside test_new_notebook's benchmark run
def test_bench_quick_writes_report_and_docs_and_fails_on_a_failing_notebook(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("DGM_CHECKPOINTS", str(tmp_path / "checkpoints"))
    path = {"model": "m", "steps": 1, "batch_size": 1, "device": "cpu", "speedup": 2.0,
            "tensors_on_device_images_per_s": 2, "dataloader_images_per_s": 1}
    monkeypatch.setattr(bench, "data_path_comparison", lambda mode, device: path)
    tiny = _notebook(tmp_path / "00_tiny.ipynb", TINY)
    broken = _notebook(tmp_path / "99_broken.ipynb", ["1 / 0"])
    code = bench.main(["--mode", "quick", "--notebooks", str(tiny), str(broken), "--no-peer",
                       "--jobs", "1", "--out", str(tmp_path / "bench"),
                       "--docs", str(tmp_path / "docs")])
    assert code == 1  # a notebook failed
    report = json.loads((tmp_path / "bench" / "quick.json").read_text())
    assert report["mode"] == "quick" and report["machine"]["cpu_cores"] == os.cpu_count()
    assert report["peak"]["gflop_per_s"] > 0  # the machine's rate, measured in the same run
    ok, failed = report["notebooks"]
    assert ok["notebook"] == "00_tiny" and ok["status"] == "ok" and ok["mode"] == "quick"
    assert ok["wall_time_s"] > 0 and ok["metrics"] == {"nll": 81.0}
    assert ok["matmul_gflop_per_s"] > 0  # the machine's rate as this notebook ran
    assert ok["targets"]["nll"]["met"]  # the target as the notebook states it
    trained = ok["training"]["tiny"]  # measured by the harness, not by the notebook
    assert trained["steps"] == 12 and trained["images"] == 96 and trained["gflop_per_image"] > 0
    executed = nbformat.read(tmp_path / "bench" / "quick" / "00_tiny.ipynb", as_version=4)
    assert len(executed.cells) == len(TINY)  # the harness's own cell is not kept
    assert failed["status"].startswith("failed: ") and "ZeroDivisionError" in failed["status"]
    assert report["data_path"] == path  # measured below, with the slow tests
    text = (tmp_path / "docs" / "results-quick.md").read_text()
    assert text.startswith("# Benchmark: quick mode") and "GFLOP/s" in text
    assert "| 00_tiny | ok |" in text and "| 99_broken | failed" in text
    assert f"| {ok['wall_time_s']:.0f} s | {ok['matmul_gflop_per_s']:,.0f} |" in text


def _stopped_at_the_deadline(path, out, env, timeout, deadline):
    time.sleep(max(0.0, deadline - time.time()))  # a notebook that runs until it is stopped
    return {"notebook": Path(path).stem, "status": "stopped at the run's deadline in code cell 2 "
            "of 3", "wall_time_s": 1.0, "metrics": {}, "targets": {}, "training": {},
            "families": []}


def test_a_run_with_a_deadline_stops_there_and_still_writes_its_page(tmp_path, monkeypatch):
    monkeypatch.setattr(bench.runner, "execute", _stopped_at_the_deadline)  # workers fork
    monkeypatch.setattr(bench, "data_path_comparison", lambda mode, device: pytest.fail(
        "measured after the deadline"))
    start = time.time()
    code = bench.main(["--mode", "quick", "--notebooks", "01", "--no-peer", "--deadline", "2",
                       "--out", str(tmp_path / "bench"), "--docs", str(tmp_path / "docs")])
    assert code == 1 and time.time() - start < 60
    report = json.loads((tmp_path / "bench" / "quick.json").read_text())
    assert "data_path" not in report
    assert [r["status"] for r in report["notebooks"]] == [
        "stopped at the run's deadline in code cell 2 of 3"]
    assert "| 01_distributions | stopped at the run's deadline" in (
        tmp_path / "docs" / "results-quick.md").read_text()


@pytest.mark.slow
def test_the_data_path_comparison_times_both_paths_on_the_same_model():
    speed = bench.data_path_comparison("quick", torch.device("cpu"))
    assert speed["tensors_on_device_images_per_s"] > 0 and speed["dataloader_images_per_s"] > 0
    assert speed["speedup"] == pytest.approx(speed["tensors_on_device_images_per_s"]
                                             / speed["dataloader_images_per_s"], rel=0.01)


def test_a_partial_run_keeps_the_other_rows_of_the_previous_report(tmp_path):
    path = tmp_path / "cpu.json"
    old = [{"notebook": n, "status": "ok", "wall_time_s": 1.0, "metrics": {}, "targets": {},
            "date": "2026-01-01"} for n in ("01_a", "02_b")]
    path.write_text(json.dumps({"notebooks": old}))
    new = {"notebook": "02_b", "status": "ok", "wall_time_s": 2.0, "metrics": {}, "targets": {},
           "date": "2026-02-02"}
    merged = bench.merge(path, [new, {**new, "notebook": "03_c"}])
    assert [r["notebook"] for r in merged] == ["01_a", "02_b", "03_c"]
    assert merged[0] == old[0] and merged[1]["wall_time_s"] == 2.0  # this run wins
    report = {"mode": "cpu", "date": "2026-02-02", "machine": bench.machine(torch.device("cpu")),
              "notebooks": merged}
    assert "earlier run" in bench.markdown(report)


def test_a_kept_row_states_its_throughput_against_the_peak_of_its_own_run():
    peak = lambda rate: {"n": 2048, "dtype": "float32", "gflop_per_s": rate, "threads": 2}
    step = {"steps": 10, "seconds": 1.0, "images_per_s": 100.0, "gflop_per_image": 0.5,
            "gflop_per_s": 50.0}
    row = lambda name, run, rate: {"notebook": name, "status": "ok", "wall_time_s": 1.0,
                                   "metrics": {}, "targets": {}, "date": "2026-02-02", "run": run,
                                   "peak": peak(rate), "training": {name: step}}
    report = {"mode": "cpu", "date": "2026-02-02", "run": "2026-02-02T10:00:00",
              "machine": bench.machine(torch.device("cpu")), "peak": peak(200.0),
              "notebooks": [row("01_kept", "2026-02-02T08:00:00", 100.0),
                            row("02_new", "2026-02-02T10:00:00", 200.0)]}
    text = bench.markdown(report)
    assert "| 01_kept | 01_kept | 10 | 1 | 100 | 0.5 | 50.0 | 50% |" in text  # its run: 100
    assert "| 02_new | 02_new | 10 | 1 | 100 | 0.5 | 50.0 | 25% |" in text
    assert "earlier run" in text  # the same day, but another run
    report["notebooks"] = report["notebooks"][1:]
    assert "earlier run" not in bench.markdown(report)


def test_families_reported_by_notebooks_become_the_two_pictures_and_the_tables(tmp_path):
    from helpers import data, evaluate, runtime

    results = tmp_path / "bench" / "cpu" / "results"
    results.mkdir(parents=True)
    rt = runtime.Runtime(torch.device("cpu"), "cpu", 0)
    real = data.load("mnist", "test", n=64)[0]
    reported = evaluate.report(rt, {"x": 1.0}, families=[
        evaluate.family("real digits", real, 0.064, nll_nats=80.0, nll_is_bound=True),
        evaluate.family("noise", torch.rand(64, 784), 0.0064)])
    families = reported["families"]  # what the harness saves, grids apart
    (results / "00_tiny.json").write_text(json.dumps(
        {"families": [{k: v for k, v in f.items() if k != "grid"} for f in families]}))
    torch.save({f["name"]: f["grid"] for f in families}, results / "00_tiny-samples.pt")
    families, grids = bench_figures.collect(results)
    assert [f["name"] for f in families] == ["real digits", "noise"] and "grid" not in families[0]
    assert families[0]["fid_over_floor"] < families[1]["fid_over_floor"]  # the kit, end to end
    assert families[0]["inception_score"] > 5 > families[1]["inception_score"]
    assert families[0]["ms_per_image"] == pytest.approx(1.0) and families[0]["nll_nats"] == 80
    grid = grids["real digits"]
    assert grid.dtype == torch.uint8 and grid.shape == (16, 1, 28, 28)
    training = {"tiny": {"steps": 10, "images": 640, "seconds": 2.0, "images_per_s": 320.0,
                         "gflop_per_s": 1.6, "gflop_per_image": 0.005}}
    row = {"notebook": "00_tiny", "status": "ok", "wall_time_s": 3.0, "metrics": {"x": 1.0},
           "targets": {}, "training": training, "families": families}
    report = {"mode": "cpu", "date": "2026-02-02", "notebooks": [row],
              "machine": bench.machine(torch.device("cpu")),
              "peak": {"gflop_per_s": 16.0, "dtype": "float32", "n": 64, "threads": 1}}
    report["figures"] = bench.figures(report, tmp_path / "bench", tmp_path / "docs")
    for kind in ("families", "samples"):
        png = tmp_path / "docs" / f"bench-cpu-{kind}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and report["figures"][kind] == png.name
    table = bench.markdown(report)
    assert "| 00_tiny | tiny | 10 | 2 | 320 | 0.005 | 1.6 | 10% |" in table  # 3.2 GFLOP in 2 s
    report["train_peak"] = {"gflop_per_s": 64.0, "dtype": "bfloat16", "n": 64, "threads": 1}
    report["machine"]["precision"] = "bf16 autocast (AMX)"
    table = bench.markdown(report)  # a CPU training in bf16 (AMX): its share of the bf16 rate
    assert "| 1.6 | 2.5% |" in table and "64² bfloat16 matmul at **64 GFLOP/s**" in table
    # the yardstick stays float32, and the header says what the notebooks trained in
    assert "(64² float32 matmul at 16 GFLOP/s; training in bf16 autocast (AMX))" in table
    assert "![16 samples of every family](bench-cpu-samples.png)" in table
    row["training"]["nade"] = {**training["tiny"], "gflop_per_s": 0.0, "gflop_per_image": 0.0}
    table = bench.markdown(report)  # elementwise only: FlopCounterMode counts nothing, not zero
    assert "| 00_tiny | nade | 10 | 2 | 320 | — | — | — |" in table
    assert "—: the step of nade has no matmul or convolution" in table and "| 1.6 | 2.5% |" in table


def test_the_peer_answers_its_named_counterpart_and_says_when_it_is_missing(capsys):
    from tools import peer

    unet = {"steps": 10, "images": 640, "seconds": 9.0, "images_per_s": 71.1}
    ddim = {"name": peer.COUNTERPART[1], "n": 250, "fid_over_floor": 3.0}
    rows = [{"notebook": "02_autoregressive", "training": {"pixelcnn": {**unet, "seconds": 99}},
             "families": [{"name": "PixelCNN", "fid_over_floor": 1.0}]},  # better, other kind
            {"notebook": peer.COUNTERPART[0], "training": {"toy": {**unet, "seconds": 1.0},
                                                            "unet": unet},
             "families": [{"name": "DDPM 1000", "fid_over_floor": 2.0}, ddim]}]
    assert peer.counterpart(rows) == (ddim, unet)  # its family, its notebook's longest training
    assert peer.compare(rows[:1], torch.device("cpu")) is None
    assert "no 'DDIM 50' family of 06_diffusion" in capsys.readouterr().err


def test_a_machine_that_cannot_build_the_environment_benches_with_its_own_python(monkeypatch):
    from tools import course

    def offline(_requirements):
        raise SystemExit("course: `pip install -r requirements.txt` failed (exit 1)")

    monkeypatch.setattr(course, "_extra", offline)
    assert course._bench_python() == Path(sys.executable)  # this Python has all BENCH_NEEDS
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "nbclient" else real(name))
    with pytest.raises(SystemExit, match=r"(?s)failed \(exit 1\).*lacks nbclient"):
        course._bench_python()


def test_a_run_without_the_peer_keeps_the_last_peer_baseline(monkeypatch):
    last = {"peer": True, "inception_score": 1.05}
    monkeypatch.setattr(bench.peer, "compare", lambda done, device: None)  # no counterpart
    assert bench.peer_baseline([], "cpu", {"peer": last}, run=False) is last
    assert bench.peer_baseline([], "cpu", {"peer": last}, run=True) is last
    assert bench.peer_baseline([], "cpu", {}, run=False) is None
    def broken(done, device):
        raise RuntimeError("diffusers against another torch")
    monkeypatch.setattr(bench.peer, "compare", broken)
    assert bench.peer_baseline([], "cpu", {"peer": last}, run=True) is last
    fresh = {"peer": True, "inception_score": 2.0, "grid": None}
    monkeypatch.setattr(bench.peer, "compare", lambda done, device: fresh)
    assert bench.peer_baseline([], "cpu", {"peer": last}, run=True) is fresh
