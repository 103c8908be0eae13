"""Repository hygiene: stripped notebooks that follow the template, one environment in two files,
small documented helper modules."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import student

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TEMPLATE = ROOT / "templates" / "notebook.ipynb"  # the order of CONTRIBUTING.md
MAX_CELL_LINES = 30
MAX_SETUP_LINES = 34  # the set-up cell: imports, then every setting, one line each


def _staged(path: Path) -> str:
    """The notebook as git holds it (what a commit takes), or the file outside a git checkout:
    a student's working copy may hold outputs, which the git filter strips."""
    done = subprocess.run(["git", "show", f":{path.relative_to(ROOT)}"], cwd=ROOT,
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else path.read_text()


def _filter_configured() -> bool:
    return subprocess.run(["git", "config", "--get", "filter.strip-notebooks.clean"], cwd=ROOT,
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("path", [*NOTEBOOKS, TEMPLATE], ids=lambda p: p.name)
def test_notebook_is_stripped_and_follows_the_template(path):
    nb = nbformat.reads(_staged(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip the outputs"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "Learning goals" in nb.cells[0].source and student.BANNER in nb.cells[0].source
    assert "runtime.setup(" in code[0].source, "the first code cell sets up device, seed and mode"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Summary" in text and "## References" in text and "**Exercises**" in text
    assert text.index("## Published numbers") < text.index("## Summary")
    shown = "| source |" in text or "references.table(" in "\n".join(c.source for c in code)
    assert shown, "the published numbers are a table that names its sources (references.table)"
    restated = re.findall(r"targets?\b[^.]{0,80}?[≥≤<>]=?\s*\d[^.]*", text)
    assert not restated, f"the targets are stated once, in the last code cell: {restated}"
    assert "\nresults = evaluate.report(rt, " in f"\n{code[-1].source}", \
        "the last code cell builds the notebook's `results` (the harness reads them)"
    too_long = [c.source.splitlines()[0] for c in code[1:] if len(c.source.splitlines())
                > MAX_CELL_LINES]
    assert not too_long, f"split the cells longer than {MAX_CELL_LINES} lines: {too_long}"
    assert len(code[0].source.splitlines()) <= MAX_SETUP_LINES, "a set-up cell this long: split?"
    settings_elsewhere = [line.strip() for c in code[1:-1] for line in c.source.splitlines()
                          if "rt.pick(" in line or "rt.count(" in line]
    assert not settings_elsewhere, (  # the targets, in the last cell, use rt.pick too
        f"every setting belongs in the set-up cell (one place to read and change): "
        f"{settings_elsewhere}")
    source = "\n".join(c.source for c in code)
    for device_specific in ("torch.cuda", 'type == "cuda"', "perf_counter"):
        assert device_specific not in source, (  # the same lines must serve CUDA, MPS and CPU
            f"{device_specific}: ask helpers.runtime (rt.autocast, rt.timed, runtime.synchronize)")
    for i, cell in enumerate(code):
        if student.BEGIN in cell.source:  # each exercise is followed by its check
            assert "checks.check_" in code[i + 1].source
            assert "# Hint:" in cell.source


def _pins(text, pattern):
    return dict(re.findall(pattern, text, flags=re.M))


def test_environment_yml_mirrors_requirements_txt():
    reqs = _pins((ROOT / "requirements.txt").read_text(), r"^([A-Za-z0-9_.-]+)==(\S+)")
    env = (ROOT / "environment.yml").read_text()
    env_pins = _pins(env, r"^\s+-\s+([A-Za-z0-9_.-]+)==(\S+)")
    assert reqs and env_pins == reqs
    assert "conda-forge" in env


@pytest.mark.parametrize("path", sorted((ROOT / "helpers").rglob("*.py")), ids=lambda p: p.name)
def test_helper_modules_are_small_and_say_what_they_own(path):
    text = path.read_text()
    if path.name != "__init__.py":
        assert text.startswith('"""'), "each module opens with a docstring"
    assert len(text.splitlines()) <= 250


@pytest.mark.skipif(not _filter_configured(), reason="`make setup` configures the git filter")
def test_a_notebook_run_and_saved_in_jupyterlab_is_committed_unchanged(tmp_path):
    path = NOTEBOOKS[1]
    clean = _staged(path)
    nb = nbformat.reads(clean, as_version=4)
    for cell in nb.cells:  # what running and saving it in JupyterLab adds
        cell.metadata.update(scrolled=True, execution={"iopub.status.idle": "2026-01-01"})
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", text="training: 100%\n")]
            cell.execution_count = 7
    nb.metadata["kernelspec"]["display_name"] = "Python 3 (ipykernel)"
    nb.metadata["language_info"].update(version="3.11.7", mimetype="text/x-python")
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    run = nbformat.writes(nb)
    git = lambda *args, **kw: subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                                             text=True, check=True, **kw).stdout.strip()
    relative = str(path.relative_to(ROOT))
    assert git("hash-object", "--stdin", "--path", relative, input=run) == git(
        "rev-parse", f":{relative}")  # the filter gives back exactly what git holds
    (tmp_path / path.name).write_text(run)
    assert student.student_notebook(tmp_path / path.name) == student.student_notebook(path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_figure_is_wider_than_the_column(path):
    from helpers import plot

    source = "\n".join(c.source for c in nbformat.reads(_staged(path), as_version=4).cells)
    widths = [float(w) for w in re.findall(r"figsize=\(([\d.]+),", source)]
    assert all(w <= plot.MAX_WIDTH for w in widths), widths
    wide = plot.within_width(21.0, 4.4)
    assert wide == (plot.MAX_WIDTH, pytest.approx(4.4 * plot.MAX_WIDTH / 21))


def test_a_notebook_that_cannot_be_cleaned_cannot_be_committed(tmp_path):
    """The filter is required (tools.course.git_filter): git refuses to stage a notebook the
    filter fails on, instead of staging it unfiltered."""
    from tools import course

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    git = lambda *args: subprocess.run(["git", *args], cwd=clone, capture_output=True, text=True)
    for key, value in course.filter_settings(sys.executable).items():
        git("config", f"filter.strip-notebooks.{key}", value)
    target = clone / "notebooks" / NOTEBOOKS[0].name
    target.write_text("{ this is not a notebook")
    added = git("add", str(target))
    assert added.returncode != 0 and "strip-notebooks" in added.stderr
    assert git("diff", "--cached", "--name-only").stdout.strip() == ""
