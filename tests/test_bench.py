"""The benchmark runs in quick mode and writes a well-formed report and table (not its timings)."""

import json

from helpers import bench
from tests.conftest import NOTEBOOKS


def test_bench_quick_writes_report_table_and_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:quick -->\nold table\n<!-- /bench:quick -->\nend\n")
    code = bench.main(["--mode", "quick", "--notebooks", str(NOTEBOOKS / "01_distributions.ipynb"),
                       "--out", str(tmp_path / "bench"), "--readme", str(readme)])
    assert code == 0
    report = json.loads((tmp_path / "bench" / "quick.json").read_text())
    assert report["mode"] == "quick" and report["machine"]["cpu_cores"] >= 1
    (nb,) = report["notebooks"]
    assert nb["notebook"] == "01_distributions" and nb["status"] == "ok"
    assert nb["wall_time_s"] > 0 and nb["metrics"]["nll_markov_nats"] < nb["metrics"][
        "nll_independent_nats"]
    assert (tmp_path / "bench" / "quick" / "01_distributions.ipynb").exists()  # executed copy
    speed = report["data_path"]
    assert speed["tensors_on_device_images_per_s"] > 0 and speed["dataloader_images_per_s"] > 0
    table = (tmp_path / "bench" / "quick.md").read_text()
    assert "| 01_distributions | ok |" in table and "images/s" in table
    text = readme.read_text()
    assert "old table" not in text and table in text and text.endswith("end\n")


def test_a_failing_notebook_is_reported_and_fails_the_run(tmp_path):
    broken = tmp_path / "99_broken.ipynb"
    broken.write_text(json.dumps({"cells": [{"cell_type": "code", "id": "c0", "metadata": {},
                                             "outputs": [],
                                             "execution_count": None, "source": "1 / 0"}],
                                  "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    result = bench.run_notebook(broken, "quick", tmp_path / "out", timeout=60)
    assert result["status"].startswith("failed: ") and "ZeroDivisionError" in result["status"]
    report = {"mode": "quick", "date": "d", "machine": bench.machine(), "notebooks": [result]}
    assert "| 99_broken | failed" in bench.markdown(report)


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
