"""Student copies: solutions become stubs with hints, nothing leaks, student work is never lost,
and each student copy runs up to its first exercise and stops at that check with the hint."""

import importlib
import io
import re
import shutil
import textwrap
import tokenize

import nbformat
import pytest

from helpers.stub import STUB
from tests.conftest import NOTEBOOKS
from tools import student

ROOT = NOTEBOOKS.parent

NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_stub_replaces_the_solution_keeps_the_hint_once_and_the_rest():
    src = ('def f(x):\n    """doc"""\n    # Hint: add one\n    ### BEGIN SOLUTION\n'
           "    y = x + 1\n    return y\n    ### END SOLUTION\n\nprint(f)")
    out = student.stub_source(src)
    assert "y = x + 1" not in out and "BEGIN SOLUTION" not in out
    assert f"\n    raise NotImplementedError({STUB!r})\n" in out
    assert out.startswith('def f(x):\n    """doc"""\n    # Hint: add one\n')
    assert out.count("add one") == 1 and out.endswith("print(f)")
    namespace = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError, match=re.escape(STUB)):
        namespace["f"](1)


def test_a_deeply_indented_stub_wraps_at_the_line_length():
    indent = " " * 16
    out = student.stub_source(f"{indent}### BEGIN SOLUTION\n{indent}pass\n{indent}### END SOLUTION")
    assert len(f"{indent}raise NotImplementedError({STUB!r})") > student.LINE_LENGTH
    assert max(len(line) for line in out.splitlines()) <= student.LINE_LENGTH
    with pytest.raises(NotImplementedError, match=re.escape(STUB)):
        exec(textwrap.dedent(out))


@pytest.mark.parametrize("src", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                                 "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_malformed_markers_are_reported(src):
    with pytest.raises(ValueError, match="SOLUTION"):
        student.stub_source(src)


def _statements(code: str) -> list[str]:
    """The logical lines of `code` without comments, whitespace or a leading `return`."""
    lines, current = [], []
    for tok in tokenize.generate_tokens(io.StringIO(textwrap.dedent(code)).readline):
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            lines.append("".join(current).removeprefix("return"))
            current = []
        elif tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
            current.append(tok.string)
    return [line for line in lines if line]


def _right_side(statement: str) -> str:
    """What an assignment computes (a hint that gives it is the line, whatever the name)."""
    target, _, value = statement.partition("=")
    if not value or not re.fullmatch(r"[\w,.\[\]]+", target) or re.fullmatch(r"\w+\([\w,]*\)",
                                                                               value):
        return statement  # not an assignment, or one that only calls another exercise
    return value


def _solutions() -> dict[str, list[str]]:
    """{'<notebook>: <exercise>': its solution's statements} over all notebooks."""
    found = {}
    for name in NAMES:
        for cell in nbformat.read(NOTEBOOKS / name, as_version=4).cells:
            if student.BEGIN in cell.source:
                body = cell.source.split(student.BEGIN)[1].split(student.END)[0]
                exercise = re.search(r"def (\w+)", cell.source).group(1)
                found[f"{name}: {exercise}"] = _statements(body)
    return found


def test_no_solution_is_readable_in_the_helpers_or_in_any_student_copy(tmp_path):
    student.write_student_copies(NOTEBOOKS, tmp_path)
    squeeze = lambda text: re.sub(r"\s+", "", text)
    texts = {path.name: squeeze("\n".join(c.source for c in nbformat.read(
        path, as_version=4).cells)) for path in tmp_path.glob("*.ipynb")}
    texts |= {str(path.relative_to(ROOT)): squeeze(path.read_text())
              for path in (ROOT / "helpers").rglob("*.py")}
    solutions = _solutions()
    assert len(solutions) >= 20
    pieces = {exercise: {piece for line in lines for piece in (line, _right_side(line))
                         if len(piece) >= 16} for exercise, lines in solutions.items()}
    leaks = [f"{exercise} in {where}: {piece}" for exercise, found in pieces.items()
             for piece in found for where, text in texts.items() if piece in text]
    leaks += [f"{exercise} in {where}: the whole solution" for exercise, lines in
              solutions.items() for where, text in texts.items() if "".join(lines) in text]
    assert not leaks, "\n".join(leaks)


def test_no_exercise_answer_is_importable_from_the_helpers():
    exercises = {name.split(": ")[1] for name in _solutions()}
    modules = [importlib.import_module(f"helpers.{p.stem}") for p in (ROOT / "helpers").glob(
        "*.py") if p.stem not in ("__init__", "student", "bench")]
    found = [f"{m.__name__}.{e}" for m in modules for e in exercises if hasattr(m, e)]
    assert not found, f"exercise answers importable from the helpers: {found}"


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

    # A copy only run and saved (outputs, execution counts) gets the next upstream change; its
    # outputs are kept in a backup.
    ran = nbformat.read(dst / name, as_version=4)
    code = next(c for c in ran.cells if c.cell_type == "code")
    code.execution_count, code.outputs = 1, [nbformat.v4.new_output("stream", text="my run\n")]
    nbformat.write(ran, dst / name)
    nb.cells[0].source += " Fixed upstream."
    nbformat.write(nb, src / name)
    assert student.write_student_copies(src, dst)[name].startswith("updated (you had only run")
    assert "Fixed upstream." in (dst / name).read_text()
    run_backups = list(dst.glob("*.backup-*.ipynb"))
    assert len(run_backups) == 1 and "my run" in run_backups[0].read_text()
    run_backups[0].unlink()

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
def test_a_student_copy_stops_at_its_first_exercise_check_with_the_hint(name):
    """The first exercise of each student copy, as its kernel runs it: the set-up cell, the stub,
    then the check right after it, which must stop with at most five lines naming the stub and
    the hint. (The reference notebooks run whole under nbval; the student copy in a real kernel and
    in JupyterLab under `make test-ui`.)"""
    copy = nbformat.reads(student.student_notebook(NOTEBOOKS / name), as_version=4)
    code = [student.as_python(c.source) for c in copy.cells if c.cell_type == "code"]
    first = next(i for i, source in enumerate(code) if "NotImplementedError" in source)
    assert "checks.check_" in code[first + 1], "the check comes right after the first exercise"
    namespace = {"__name__": "__main__"}
    exec(code[0], namespace)  # imports and settings
    exec(code[first], namespace)  # the stub
    with pytest.raises(Exception) as info:
        exec(code[first + 1], namespace)
    assert type(info.value).__name__ == "ExerciseError"
    shown = "\n".join(info.value._render_traceback_())  # what IPython shows: no traceback
    assert len(shown.splitlines()) <= 5 and "not written yet" in shown and "hint: " in shown
    assert "File " not in shown and "helpers" not in shown


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_banner_stays_in_notebooks_and_not_in_the_copy(name, tmp_path):
    assert student.BANNER in nbformat.read(NOTEBOOKS / name, as_version=4).cells[0].source
    copy = nbformat.reads(student.student_notebook(NOTEBOOKS / name), as_version=4)
    assert "Reference notebook" not in copy.cells[0].source
    assert "Open in" not in copy.cells[0].source  # those links open the reference notebook
    assert copy.cells[0].source.startswith("# ") and "Learning goals" in copy.cells[0].source
