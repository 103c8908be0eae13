"""Repository hygiene: stripped notebooks that follow the template, one environment in two files,
small documented helper modules."""

import re
from pathlib import Path

import nbformat
import pytest

from helpers import student

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped_and_follows_the_template(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip the outputs"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "Learning goals" in nb.cells[0].source
    assert "runtime.setup(" in code[0].source, "the first code cell sets up device, seed and mode"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Summary" in text and "## References" in text and "Exercises" in text
    assert "evaluate.record(" in "\n".join(c.source for c in code)
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
