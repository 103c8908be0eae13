"""Student copies: solutions become stubs with hints, nothing leaks, student work is never lost,
and each student copy runs up to its first exercise and stops at that check with the hint."""

import json
import os
import shutil

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers import student
from tests.conftest import NOTEBOOKS

NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_stub_replaces_the_solution_and_keeps_the_rest():
    src = ("def f(x):\n    '''doc'''\n    # Hint: add one\n    ### BEGIN SOLUTION\n"
           "    y = x + 1\n    return y\n    ### END SOLUTION\n\nprint(f)")
    out = student.stub_source(src)
    assert "y = x + 1" not in out and "BEGIN SOLUTION" not in out
    stub = "raise NotImplementedError('Exercise: replace this line with your code. Hint: add one')"
    assert f"\n    {stub}\n" in out
    assert out.startswith("def f(x):\n    '''doc'''\n    # Hint: add one\n")
    assert out.endswith("print(f)")
    namespace = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError, match="Hint: add one"):
        namespace["f"](1)


@pytest.mark.parametrize("src", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                                 "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_malformed_markers_are_reported(src):
    with pytest.raises(ValueError, match="SOLUTION"):
        student.stub_source(src)


@pytest.mark.parametrize("name", NAMES)
def test_no_solution_text_leaks(name, tmp_path):
    student.write_student_copies(NOTEBOOKS, tmp_path)
    copy = (tmp_path / name).read_text()
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    solution_lines = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if line.strip() == student.END:
                inside = False
            if inside and len(line.strip()) > 12:
                solution_lines.add(line.strip())
            if line.strip() == student.BEGIN:
                inside = True
    assert len(solution_lines) >= 2, "each notebook has at least two exercises"
    assert "SOLUTION" not in copy
    leaked = [line for line in solution_lines if json.dumps(line)[1:-1] in copy]
    assert not leaked, f"solution lines leak into the student copy: {leaked}"


def test_student_changes_are_never_overwritten(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(NOTEBOOKS, src)
    dst = tmp_path / "student"
    report = student.write_student_copies(src, dst)
    assert set(report.values()) == {"written"}
    name = NAMES[0]
    assert student.write_student_copies(src, dst)[name] == "up to date"

    # An upstream change reaches an untouched copy.
    nb = nbformat.read(src / name, as_version=4)
    nb.cells[0].source += "\n\nA new sentence."
    nbformat.write(nb, src / name)
    assert student.write_student_copies(src, dst)[name] == "updated"

    # The student's edit is kept, even when the upstream notebook changes again.
    mine = (dst / name).read_text().replace("A new sentence.", "My own notes.")
    (dst / name).write_text(mine)
    nb.cells[0].source += " And another."
    nbformat.write(nb, src / name)
    assert student.write_student_copies(src, dst)[name].startswith("kept")
    assert (dst / name).read_text() == mine

    # FORCE replaces it, but only after a backup that holds the student's version.
    assert student.write_student_copies(src, dst, force=True)[name].startswith("replaced")
    backups = list(dst.glob("*.backup-*.ipynb"))
    assert len(backups) == 1 and backups[0].read_text() == mine
    assert "And another." in (dst / name).read_text()


@pytest.mark.parametrize("name", NAMES)
def test_student_copy_runs_until_its_first_exercise_check(name, tmp_path):
    student.write_student_copies(NOTEBOOKS, tmp_path)
    nb = nbformat.read(tmp_path / name, as_version=4)
    os.environ["DGM_QUICK"] = "1"
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    assert info.value.ename == "NotImplementedError"
    assert "Hint:" in info.value.evalue
    code = [c for c in nb.cells if c.cell_type == "code"]
    failed = next(i for i, c in enumerate(code) if any(o.get("output_type") == "error"
                                                        for o in c.outputs))
    first_exercise = next(i for i, c in enumerate(code) if "NotImplementedError" in c.source)
    assert failed == first_exercise + 1, "it stops at the check right after the first exercise"
    assert "checks.check_" in code[failed].source
    assert all(c.execution_count for c in code[:failed]), "every cell before it ran"
