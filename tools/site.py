"""`python -m tools.site RUN_DIR OUT_DIR` (`make site`): the course as a static website, from
notebooks already executed (by `make run`), with Sphinx and myst-nb, executing nothing again.

Pages: a home page (the README, whole), one page per notebook with its figures, tables and math,
and one page per file of docs/ named in DOCS (read by name, never by heading; a missing file is
skipped), with their links made to work on the site and the pictures they show copied beside
them. Each notebook page opens with the mode, machine and date it was executed on (from what
the runner saved of its run).
Widgets become their last state: a progress bar its final text, a slider its value, an
interactive plot its last figure. Math is rendered by a local copy of MathJax 3 (its SVG
output, which needs no web fonts), taken from the sphinx-mathjax-offline package on PyPI: the site
needs no network, and works from a file server, a course intranet or straight from the disk.
"""

import argparse
import html
import importlib.util
import json
import platform
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from tools import runner
from tools.student import BANNER

REPO = Path(__file__).resolve().parent.parent
WIDGET = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
CONF = '''project = "Generative models: a course companion"
extensions = ["myst_nb", "sphinx.ext.mathjax"]
html_theme = "furo"
html_title = project
html_static_path = ["_static"]
exclude_patterns = ["_build"]
nb_execution_mode = "off"  # the notebooks were executed by `make run`
nb_ipywidgets_js = {}  # no widget scripts from a CDN: widgets are rendered statically
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True  # $$...$$ inside a paragraph, as JupyterLab shows it
myst_heading_anchors = 3
mathjax_path = "mathjax/tex-svg.js"  # MathJax 3 with SVG output: no web fonts to load
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]
'''


# The pages of docs/ the site shows, in the order of its "Using the course" menu.
DOCS = ("running", "teaching", "results-cpu", "results-gpu", "results-quick", "gpu-budget",
        "history")
# [text](target) or ![text](target); the text may hold one picture, as a badge's link does.
LINK = re.compile(r"(!?)\[((?:!\[[^\[\]]*\]\([^)\s]*\)|[^\[\]])*)\]\(([^)\s]+)\)")


def site_links(text: str, folder: str) -> tuple[str, set[str]]:
    """(text, pictures): the Markdown of REPO/<folder>/*.md with its links made to work on the site,
    where every page lies at the top next to notebooks/. A notebook's link stays; a page of docs/
    becomes that site page; a picture of docs/ is kept by its name (and returned, to be copied); an
    address on the web stays, but a picture from it becomes its text (the site loads nothing from
    another host); any other file outside the site becomes the link's text."""
    pictures: set[str] = set()

    def fix(match):
        bang, text, target = match.groups()
        text = LINK.sub(fix, text)  # a picture inside the link's text
        if target.startswith(("http://", "https://", "mailto:")):
            return text if bang else f"[{text}]({target})"
        path, hashmark, fragment = target.partition("#")
        if not path:  # an anchor on the same page
            return f"{bang}[{text}]({target})"
        path = posixpath.normpath(posixpath.join(folder, path))
        anchor = hashmark + fragment
        if re.fullmatch(r"notebooks/\d\d_\w+\.ipynb", path):
            return f"{bang}[{text}]({path}{anchor})"
        page = re.fullmatch(r"docs/([\w-]+)\.md", path)
        if page and page.group(1) in DOCS and (REPO / path).is_file():
            return f"{bang}[{text}]({page.group(1)}.md{anchor})"
        if path == "README.md":
            return f"{bang}[{text}](index.md{anchor})"
        if bang and re.fullmatch(r"docs/[\w.-]+\.(png|svg|jpg)", path) and (REPO / path).is_file():
            pictures.add(path)
            return f"![{text}]({posixpath.basename(path)})"
        return text
    return LINK.sub(fix, text), pictures


def write_pages(src: Path) -> list[str]:
    """Write the home page (the README whole, then the menus) and one page per existing file of
    DOCS into the site's source folder `src`, with the pictures they show; the notebooks already
    written into src/notebooks/ make the first menu. Returns the names of the docs pages."""
    src.mkdir(parents=True, exist_ok=True)
    pages, pictures = [], set()
    for name in DOCS:
        path = REPO / "docs" / f"{name}.md"
        if not path.is_file():
            continue
        text, shown = site_links(path.read_text(), "docs")
        (src / f"{name}.md").write_text(text)
        pages.append(name)
        pictures |= shown
    home, shown = site_links((REPO / "README.md").read_text(), "")
    pictures |= shown
    for picture in sorted(pictures):
        shutil.copy(REPO / picture, src / posixpath.basename(picture))
    notebooks = sorted((src / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    (src / "index.md").write_text(
        home.rstrip("\n") + "\n\n```{toctree}\n:maxdepth: 1\n:caption: Notebooks\n\n"
        + "\n".join(f"notebooks/{p.stem}" for p in notebooks)
        + "\n```\n\n```{toctree}\n:maxdepth: 1\n:caption: Using the course\n\n"
        + "\n".join(pages) + "\n```\n")
    return pages


def _text(html_value: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_value or "")).strip()


def static_widget(model_id: str, states: dict) -> tuple[list[str], list]:
    """(lines of text, outputs) showing a widget in its last saved state."""
    model = states.get(model_id, {})
    name, state = model.get("model_name", ""), model.get("state", {})
    if name.endswith("BoxModel"):  # a progress bar's row, an interactive plot's column
        texts, outputs = [], []
        for child in state.get("children", []):
            t, o = static_widget(child.removeprefix("IPY_MODEL_"), states)
            texts, outputs = texts + t, outputs + o
        return ([" ".join(texts)] if name == "HBoxModel" else texts), outputs
    if name in ("HTMLModel", "LabelModel"):
        return ([_text(state.get("value"))] if _text(state.get("value")) else []), []
    if name.endswith("ProgressModel"):
        share = state.get("value", 0) / (state.get("max") or 1)
        return ["▕" + "█" * round(20 * share) + " " * (20 - round(20 * share)) + "▏"], []
    if name.endswith("SliderModel"):
        slider = f"{state.get('description', '')} = {state.get('value')}"
        return [f"{slider} (a slider in JupyterLab)"], []
    if name == "OutputModel":
        return [], [nbformat.from_dict(o) for o in state.get("outputs", [])]
    return [], []


def prepare(nb: nbformat.NotebookNode, banner: str) -> nbformat.NotebookNode:
    """The executed notebook as the site shows it: the banner first, widgets made static."""
    states = nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET)
            if view is None:
                outputs.append(out)
                continue
            texts, inner = static_widget(view["model_id"], states)
            if texts:
                outputs.append(nbformat.v4.new_output("stream", name="stdout",
                                                      text="\n".join(texts) + "\n"))
            outputs += inner
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)
    nb.cells[0].source = nb.cells[0].source.replace(f"{BANNER}\n\n", "")  # for the repository
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(banner))
    return nb


def banner(notebook: str, run_dir: Path) -> str:
    """Where and how the page was executed, from what the runner saved of its run."""
    results = runner.saved(run_dir, notebook)
    if not results.is_file():
        return "> Executed by `make run`; run it yourself with `make lab`."
    r = json.loads(results.read_text())
    machine = r["device_name"] if r["device_name"] != "CPU" else \
        f"a {platform.machine()} CPU ({r['threads']} thread{'s' * (r['threads'] > 1)})"
    return (f"> Executed in **{r['mode']}** mode on {machine}, {r['precision']}, on {r['date']}, "
            f"in {r['wall_time_s']:.0f} s. The same notebook runs on your machine with `make lab`.")


def build(run_dir: Path, out_dir: Path) -> None:
    src = out_dir.parent / f"{out_dir.name}-source"
    shutil.rmtree(src, ignore_errors=True)
    (src / "notebooks").mkdir(parents=True)
    carrier = importlib.util.find_spec("sphinx-mathjax-offline")  # its files, not its extension
    shutil.copytree(Path(carrier.origin).parent / "static" / "mathjax", src / "_static" / "mathjax")
    (src / "conf.py").write_text(CONF)
    notebooks = sorted(run_dir.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise SystemExit(f"site: no executed notebooks in {run_dir}; run `make run` first")
    for path in notebooks:
        nb = prepare(nbformat.read(path, as_version=4), banner(path.stem, run_dir))
        nbformat.write(nb, src / "notebooks" / path.name)
    write_pages(src)
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", str(src),
                           str(out_dir)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"site: sphinx failed:\n{done.stderr[-3000:]}")
    print(f"site: {len(notebooks)} notebooks -> {out_dir / 'index.html'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the course site from executed notebooks.")
    parser.add_argument("run_dir", type=Path, help="executed notebooks (make run: build/run)")
    parser.add_argument("out_dir", type=Path, help="where the site goes (build/site)")
    args = parser.parse_args(argv)
    build(args.run_dir, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
