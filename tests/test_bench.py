"""The benchmark runs in quick mode and writes a well-formed report and table (not its timings)."""

import json
import os

import nbformat

from tools import bench

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
