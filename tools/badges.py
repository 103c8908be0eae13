"""The course's public address, written once (pyproject.toml, [project.urls] Repository), and every
place generated from it: the "Open in Colab · Kaggle · Binder" line of each notebook's title cell,
the install line of each notebook's set-up cell, the README's course-level badge block (Binder) and
the address in CITATION.cff.

`python -m tools.course badges` rewrites them all; tests/test_badges.py fails on any copy that does
not follow the setting, or on a badge whose notebook does not exist.
"""

import re
import sys
from pathlib import Path

import nbformat

from tools.course import BRANCH, repository

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = "https://github.com/YOUR-ORG/dgm-course"
README_START, README_END = "<!-- badges: python -m tools.course badges -->", "<!-- /badges -->"
# The first lines of every set-up cell: nothing happens where the course is importable (its own
# environment, a hub); elsewhere the course is installed beside the host's own torch, torchvision,
# numpy and ipywidgets (pyproject.toml declares lower bounds only), without a restart.
BOOTSTRAP = '''try:  # the course's helpers: in place in its own environment (make lab) and on a hub
    from helpers import runtime
except ModuleNotFoundError:  # Colab, Kaggle, a bare Jupyter: install them; the host's torch stays
    %pip install -q "dgm-course @ git+{url}"

'''


def links(name: str, url: str) -> dict[str, str]:
    """{host: address} that opens notebooks/<name> (Binder: the student copy of it)."""
    path = re.sub(r"^https://github\.com/", "", url)
    blob = f"https://github.com/{path}/blob/{BRANCH}/notebooks/{name}"
    return {
        "Colab": f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/notebooks/{name}",
        "Kaggle": f"https://kaggle.com/kernels/welcome?src={blob}",
        "Binder": f"https://mybinder.org/v2/gh/{path}/{BRANCH}?urlpath=lab/tree/student/{name}",
    }


def title_line(name: str, url: str) -> str:
    """The line under a notebook's title: text links, so that the offline site loads nothing."""
    return "**Open in** " + " · ".join(f"[{host}]({link})" for host, link in
                                        links(name, url).items())


def apply_to_notebook(nb: nbformat.NotebookNode, name: str, url: str) -> None:
    """Put the current title line and bootstrap into a notebook (in place)."""
    title = nb.cells[0]
    lines = [line for line in title.source.split("\n") if not line.startswith("**Open in** ")]
    title.source = "\n".join([lines[0], "", title_line(name, url), *lines[1:]]).replace(
        "\n\n\n", "\n\n")
    setup = next(c for c in nb.cells if c.cell_type == "code")
    body = setup.source.split("\n")
    if body and body[0].startswith("try:  # the course's helpers"):  # an earlier bootstrap
        body = body[next(i for i, line in enumerate(body) if "%pip install" in line) + 1:]
    setup.source = BOOTSTRAP.format(url=url) + "\n".join(body).lstrip("\n")


BADGE = {"Colab": "https://colab.research.google.com/assets/colab-badge.svg",
         "Kaggle": "https://kaggle.com/static/images/open-in-kaggle.svg",
         "Binder": "https://mybinder.org/badge_logo.svg"}


README_HOSTS = 'Colab and Kaggle open each notebook from the "Open in" line under its title.'


def readme_badges(url: str) -> str:
    """The README's block, course-level only: Binder for the whole course (it opens on the student
    copies), then where Colab and Kaggle are. No notebook is named, so a new notebook needs no
    README edit: its own title line carries its links."""
    binder = (f"[![Launch Binder]({BADGE['Binder']})]({links('', url)['Binder'][:-1]}) "
              "the whole course, opened on your student copies")
    return "\n".join([README_START, binder, "", README_HOSTS, README_END])


TEMPLATE_NAME = "NN_title.ipynb"  # the template's links name the notebook made from it


def notebook_paths() -> dict[Path, str]:
    """{notebook file: the name its links use}."""
    found = {p: p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    return {**found, ROOT / "templates" / "notebook.ipynb": TEMPLATE_NAME}


def main() -> int:
    url = repository()
    for path, name in notebook_paths().items():
        nb = nbformat.read(path, as_version=4)
        apply_to_notebook(nb, name, url)
        nbformat.write(nb, path)
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not block.search(text):
        raise SystemExit(f"README.md has no {README_START} ... {README_END} block")
    readme.write_text(block.sub(lambda _: readme_badges(url), text))
    citation = ROOT / "CITATION.cff"
    citation.write_text(re.sub(r"^repository-code: .*$", f'repository-code: "{url}"',
                               citation.read_text(), flags=re.M))
    print(f"badges: {len(notebook_paths())} notebooks and the README now point at {url}")
    if url == PLACEHOLDER:
        print("badges: that is the placeholder; set [project.urls] Repository in pyproject.toml "
              "to the published address and run this again.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
