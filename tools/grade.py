"""`python -m tools.grade` (`make grade-check`): the course through nbgrader, round trip, in a
temporary course folder, run with nbgrader's own environment (tools.course builds it).

1. The nbgrader source of every notebook (tools.student: solutions kept, nbgrader's metadata on
   the solution, check and set-up cells) goes to source/course/; `nbgrader generate_assignment`
   releases it with the course's own stub line in place of each solution.
2. Each released notebook must equal the student copy that `make student` writes, cell for cell,
   apart from nbgrader's metadata.
3. Three submissions are autograded in quick mode on the CPU: the reference (every point), the
   untouched student copy (no point) and a copy with one exercise solved (that exercise's point
   only). The last hands in only the notebook it changed: nbgrader scores a notebook not handed
   in zero, and the other six would only repeat the untouched copy's run.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from helpers.stub import STUB
from tools import student

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "course"
SOLVED_ONE = ("01_distributions.ipynb", "categorical_mle")  # the one exercise of submission 3
CONFIG = f"""c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "dgm-course"
c.ClearSolutions.code_stub = {{"python": {f"raise NotImplementedError({STUB!r})"!r}}}
c.ExecutePreprocessor.timeout = 900
"""


def nbgrader(course: Path, *args: str, env: dict) -> None:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=course,
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"grade: nbgrader {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def cells(text: str) -> list[tuple[str, str]]:
    """(type, source) of every cell: what a student sees, without metadata."""
    return [(c.cell_type, c.source) for c in nbformat.reads(text, as_version=4).cells]


def submit(course: Path, who: str, notebooks: dict[str, str]) -> None:
    folder = course / "submitted" / who / ASSIGNMENT
    folder.mkdir(parents=True)
    for name, text in notebooks.items():
        (folder / name).write_text(text)


def solve_one(released: str, source: str, exercise: str) -> str:
    """The released notebook with one exercise's solution cell taken from the source."""
    nb, src = (nbformat.reads(t, as_version=4) for t in (released, source))
    for cell, ref in zip(nb.cells, src.cells, strict=True):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == exercise:
            cell.source = ref.source
    return nbformat.writes(nb)


def scores(course: Path, env: dict) -> dict[str, tuple[float, float]]:
    """{student: (score, max score)} from the gradebook."""
    code = ("import json; from nbgrader.api import Gradebook\n"
            "with Gradebook('sqlite:///gradebook.db') as gb:\n"
            f"    a = gb.find_assignment({ASSIGNMENT!r})\n"
            "    print(json.dumps({s.student_id: [s.score, s.max_score] for s in a.submissions}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=course, env=env, capture_output=True,
                          text=True, check=True)
    return {k: tuple(v) for k, v in json.loads(done.stdout).items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="grade in this folder and keep it")
    parser.add_argument("--models", type=Path, help="a folder of models trained in quick mode "
                        "(make test's) that the submissions load where they match, read-only")
    args = parser.parse_args(argv)
    course = args.keep or Path(tempfile.mkdtemp(prefix="dgm-grade-"))
    course.mkdir(parents=True, exist_ok=True)
    if any(course.iterdir()):
        raise SystemExit(f"grade: {course} is not empty: --keep needs a new or empty folder")
    env = {**os.environ, "DGM_QUICK": "1", "DGM_DEVICE": "cpu", "OMP_NUM_THREADS": "2",
           # models of its own; the reference's load from --models (grading, not training, is
           # tested here), a changed answer trains its own
           "DGM_CHECKPOINTS": os.pathsep.join(
               str(folder) for folder in [course / "checkpoints", args.models] if folder),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # alembic
    (course / "nbgrader_config.py").write_text(CONFIG)
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    sources = {p.name: student.student_notebook(p, nbgrader=True) for p in paths}
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    for name, text in sources.items():
        (course / "source" / ASSIGNMENT / name).write_text(text)
    nbgrader(course, "generate_assignment", ASSIGNMENT, env=env)
    released = {p.name: (course / "release" / ASSIGNMENT / p.name).read_text() for p in paths}
    for path in paths:
        assert cells(released[path.name]) == cells(student.student_notebook(path)), \
            f"{path.name}: nbgrader's release differs from the student copy"
    print(f"grade: nbgrader released {len(paths)} notebooks equal to the student copies")

    name, exercise = SOLVED_ONE
    submit(course, "reference", sources)
    submit(course, "untouched", released)
    submit(course, "one-solved", {name: solve_one(released[name], sources[name], exercise)})
    nbgrader(course, "autograde", ASSIGNMENT, "--create", env=env)
    got = scores(course, env)
    exercises = sum(text.count(student.BEGIN) for text in sources.values())
    print(f"grade: {got} ({exercises} exercises, one point each)")
    assert got["reference"] == (exercises, exercises), got
    assert got["untouched"][0] == 0, got
    assert got["one-solved"][0] == 1, got
    print(f"grade: the reference scores {exercises}/{exercises}, the untouched copy 0 and the copy "
          f"with {exercise} solved 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
