"""Student copies of the notebooks: each worked solution becomes a stub; no student work is lost.

In the committed notebooks a solution sits between `### BEGIN SOLUTION` and `### END SOLUTION`
(nbgrader's markers), with a `# Hint: ...` comment line just above it. The student copy keeps the
hint and replaces the solution with `raise NotImplementedError(STUB)`, wrapped to the notebooks'
line length; the exercise's check recognises it and says that the exercise is not written yet. A
copy that the student has changed is never overwritten; with --force it is first backed up.
Run as `python -m tools.student notebooks student [--force]` (what `make student` does).
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat

from helpers import places
from helpers.places import home
from helpers.stub import STUB

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
MANIFEST = ".generated.json"  # name -> hash of the copy as generated, to detect student edits


LINE_LENGTH = 100  # the notebooks' line length (pyproject.toml)


def stub_line(indent: str) -> str:
    """`raise NotImplementedError(STUB)` at `indent`, wrapped when it would be too long."""
    line = f"{indent}raise NotImplementedError({STUB!r})"
    return line if len(line) <= LINE_LENGTH else f"{indent}raise NotImplementedError(\n" \
        f"{indent}    {STUB!r})"


def stub_source(source: str) -> str:
    """A code cell's source with each solution block replaced by a NotImplementedError stub."""
    out, inside = [], False
    for number, line in enumerate(source.split("\n"), 1):  # as nbgrader reads it
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution block")
            inside = True
            out.append(stub_line(line[: len(line) - len(line.lstrip())]))
        elif stripped == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"a solution block is not closed with {END}")
    return "\n".join(out)


def as_python(source: str) -> str:
    """A code cell as the Python that IPython runs: the set-up cell's `%pip install` line becomes a
    call, so that the tests can exec and parse every cell."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


BANNER = ("> **Reference notebook, with the solutions.** Run it freely: saving it keeps no "
          "outputs (`make lab`), so the tracked file does not change. Do the exercises in your "
          "copy under `student/`.")


def strip_node(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as it is committed (in place): no outputs or execution counts, no cell
    metadata but tags, and the notebook metadata that running it in JupyterLab changes set back."""
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    return nb


def strip(text: str) -> str:
    """strip_node on a notebook's text. `make setup` makes it the git filter of notebooks/
    (.gitattributes), so opening and running a solved notebook changes nothing that git commits;
    jupyter_lab_config.py saves notebooks/ through it too, and `make student` reads its sources
    through it."""
    return nbformat.writes(strip_node(nbformat.reads(text, as_version=4))) + "\n"


def student_notebook(path: Path, nbgrader: bool = False) -> str:
    """The student version of one notebook, as the text of an .ipynb file, outputs stripped. With
    `nbgrader`: the same notebook with its solutions kept and nbgrader's metadata on the cells
    (the source from which `nbgrader generate_assignment` makes this student version)."""
    nb = nbformat.reads(strip(path.read_text()), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":  # the reference notebook's banner and its "Open in"
            cell.source = re.sub(r"^\*\*Open in\*\* .*\n\n", "", cell.source.replace(  # links
                f"{BANNER}\n\n", ""), flags=re.M)  # (to the reference) are not for the copy
        if cell.cell_type == "code" and not nbgrader:
            try:
                cell.source = stub_source(cell.source)
            except ValueError as err:
                raise ValueError(f"{path.name}: {err}") from None
    if nbgrader:
        grading_metadata(nb)
    return nbformat.writes(nb) + "\n"


def grading_metadata(nb: nbformat.NotebookNode) -> None:
    """nbgrader's cell metadata (in place): each solution cell is an answer cell, the check cell
    after it an autograded test worth one point, and the set-up cell is locked (nbgrader restores
    locked cells from the source when it grades)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    mark = lambda cell, grade_id, **kind: cell.metadata.update(nbgrader={
        "grade_id": grade_id, "schema_version": 3, "task": False, "grade": False,
        "solution": False, "locked": False, **kind})
    mark(code[0], "setup", locked=True)
    for i, cell in enumerate(code):
        if BEGIN in cell.source:
            name = re.search(r"checks\.check_(\w+)", code[i + 1].source).group(1)
            mark(cell, name, solution=True)
            mark(code[i + 1], f"check_{name}", grade=True, locked=True, points=1)


def _write(path: Path, text: str) -> None:
    places.write_atomic(path, lambda tmp: tmp.write_text(text))


def _stripped_digest(path: Path) -> str:
    """The digest of a student copy without its outputs ('' if it is not a notebook)."""
    try:
        return places.digest(strip(path.read_text()))
    except Exception:  # damaged or not a notebook: treated as the student's own
        return ""


def write_student_copies(src: Path, dst: Path, force: bool = False) -> dict[str, str]:
    """Write dst/<name>.ipynb for each src notebook; returns {name: what happened}."""
    dst.mkdir(parents=True, exist_ok=True)
    manifest_path = dst / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    report = {}
    for nb_path in sorted(src.glob("*.ipynb")):
        name, target = nb_path.name, dst / nb_path.name
        text = student_notebook(nb_path)
        if not target.exists():
            report[name] = "written"
        else:
            current = places.digest(target.read_text())
            if current == places.digest(text):
                report[name] = "up to date"
                manifest[name] = current
                continue
            if current != manifest.get(name):  # the student edited it, or ran it and saved
                ran_only = _stripped_digest(target) == manifest.get(name)  # outputs, no edits
                if not (force or ran_only):
                    report[name] = "kept (it has your changes; FORCE=1 replaces it after a backup)"
                    continue
                backup = target.with_name(f"{target.stem}.backup-{time.strftime('%Y%m%d-%H%M%S')}"
                                          f"{target.suffix}")
                os.replace(target, backup)
                kept_as = f"saved as {backup.name}"
                report[name] = (f"updated (you had only run it; that run is {kept_as})" if ran_only
                                else f"replaced (your version is {kept_as})")
            else:
                report[name] = "updated"
        _write(target, text)
        manifest[name] = places.digest(text)
    _write(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    return report


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["strip"]:  # the git filter: a notebook on stdin, as committed on stdout
        sys.stdout.write(strip(sys.stdin.read()))
        return 0
    parser = argparse.ArgumentParser(description="Write student copies of the notebooks "
                                                 "(or `strip`: the git filter of notebooks/).")
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--force", action="store_true",
                        help="replace copies with student changes (backing them up first)")
    args = parser.parse_args(argv)
    dst = args.dst
    existing = next(p for p in [dst.absolute(), *dst.absolute().parents] if p.exists())
    if not os.access(existing, os.W_OK):  # a class's read-only course folder
        dst = home() / "student"
        print(f"student: {args.dst} cannot be written here; your copies go to {dst}")
    for name, what in write_student_copies(args.src, dst, args.force).items():
        print(f"student: {dst / name}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
