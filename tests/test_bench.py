"""The benchmark runs in quick mode and writes a well-formed report and table (not its timings)."""

import json
import os

import nbformat
import pytest
import torch

from tools import bench, bench_figures

# A notebook that records its figures where the benchmark tells it (DGM_RESULTS), as
# helpers.evaluate.record does (tested in test_evaluate), in the mode the benchmark set.
TINY = ["import json, os, pathlib",
        "mode = 'quick' if os.environ['DGM_QUICK'] == '1' else 'other'\n"
        "out = pathlib.Path(os.environ['DGM_RESULTS'])\nout.mkdir(parents=True, exist_ok=True)\n"
        "(out / f'00_tiny-{mode}.json').write_text(json.dumps({'metrics': {'nll': 81.0}, "
        "'targets': {'nll': {'op': '<=', 'value': 100, 'met': True}}}))"]


def _notebook(path, cells):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, path)
    return path


def test_bench_quick_writes_report_table_and_readme_and_fails_on_a_failing_notebook(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:quick -->\nold table\n<!-- /bench:quick -->\nend\n")
    tiny = _notebook(tmp_path / "00_tiny.ipynb", TINY)
    broken = _notebook(tmp_path / "99_broken.ipynb", ["1 / 0"])
    code = bench.main(["--mode", "quick", "--notebooks", str(tiny), str(broken),
                       "--out", str(tmp_path / "bench"), "--readme", str(readme)])
    assert code == 1  # a notebook failed
    report = json.loads((tmp_path / "bench" / "quick.json").read_text())
    assert report["mode"] == "quick" and report["machine"]["cpu_cores"] == os.cpu_count()
    ok, failed = report["notebooks"]
    assert ok["notebook"] == "00_tiny" and ok["status"] == "ok"
    assert ok["wall_time_s"] > 0 and ok["metrics"] == {"nll": 81.0}  # recorded in quick mode
    assert ok["targets"]["nll"]["met"]
    assert (tmp_path / "bench" / "quick" / "00_tiny.ipynb").exists()  # executed copy
    assert failed["status"].startswith("failed: ") and "ZeroDivisionError" in failed["status"]
    speed = report["data_path"]
    assert speed["tensors_on_device_images_per_s"] > 0 and speed["dataloader_images_per_s"] > 0
    table = (tmp_path / "bench" / "quick.md").read_text()
    assert "| 00_tiny | ok |" in table and "| 99_broken | failed" in table
    assert "images/s" in table
    text = readme.read_text()
    assert "old table" not in text and table in text and text.endswith("end\n")


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
    report = {"mode": "cpu", "date": "2026-02-02", "machine": bench.machine(), "notebooks": merged}
    assert "earlier run" in bench.markdown(report)


def test_families_recorded_by_notebooks_become_the_two_pictures_and_the_tables(tmp_path,
                                                                               monkeypatch):
    from helpers import data, evaluate, runtime, train

    results = tmp_path / "bench" / "cpu" / "results"
    monkeypatch.setenv("DGM_RESULTS", str(results))
    monkeypatch.setenv("DGM_DEVICE", "cpu")
    monkeypatch.delenv("DGM_QUICK", raising=False)
    rt = runtime.setup(verbose=False)
    real = data.load("mnist", "test", n=64)[0]
    rt.training["tiny"] = train.throughput({"step": [10], "seconds": [2.0], "images": [640],
                                            "gflop": [3.2]})
    evaluate.record(rt, "00_tiny", {"x": 1.0}, families=[
        evaluate.family("real digits", real, 0.064, nll_nats=80.0, nll_is_bound=True),
        evaluate.family("noise", torch.rand(64, 784), 0.0064)])
    families, grids = bench_figures.collect(results, rt.label)
    assert [f["name"] for f in families] == ["real digits", "noise"] and "grid" not in families[0]
    assert families[0]["fid_over_floor"] < families[1]["fid_over_floor"]  # the kit, end to end
    assert families[0]["inception_score"] > 5 > families[1]["inception_score"]
    assert families[0]["ms_per_image"] == pytest.approx(1.0) and families[0]["nll_nats"] == 80
    grid = grids["real digits"]
    assert grid.dtype == torch.uint8 and grid.shape == (16, 1, 28, 28)
    row = {"notebook": "00_tiny", "status": "ok", "wall_time_s": 3.0, "metrics": {"x": 1.0},
           "targets": {}, "training": rt.training, "families": families}
    report = {"mode": "cpu", "date": "2026-02-02", "machine": bench.machine(), "notebooks": [row],
              "peak": {"gflop_per_s": 16.0, "dtype": "float32", "n": 64, "threads": 1}}
    report["figures"] = bench.figures(report, tmp_path / "bench", tmp_path / "docs")
    for kind in ("families", "samples"):
        png = tmp_path / "docs" / f"bench-cpu-{kind}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and report["figures"][kind].endswith(png.name)
    table = bench.markdown(report)
    assert "| 00_tiny | tiny | 10 | 2 | 320 | 0.005 | 1.6 | 10% |" in table  # 3.2 GFLOP in 2 s
    assert "![16 samples of every family](docs/bench-cpu-samples.png)" in table
