"""Where the course opens: the badges and install lines follow pyproject.toml's one address, the
package declares what a host may lack (lower bounds only), Binder's pins are the repository's, and
the course installed as a package keeps its data in the user's folder (tests/hosted.py runs it), and
`make setup` says what Python it needs and keeps a CPU-only torch once chosen."""

import ast
import re
import sys
import types
from pathlib import Path

import nbformat
import pytest
import tomllib

from helpers import datafiles, places
from tools import badges, course, student

ROOT = Path(__file__).resolve().parent.parent
URL = badges.repository()
LINK = re.compile(r"https://(?:colab\.research\.google\.com|kaggle\.com|mybinder\.org)[^)\s]*")


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def test_the_address_is_written_once_in_pyproject():
    assert URL == _pyproject()["project"]["urls"]["Repository"].rstrip("/")
    assert URL.startswith("https://github.com/")


@pytest.mark.parametrize("path", list(badges.notebook_paths()), ids=lambda p: p.name)
def test_every_notebook_carries_the_generated_badges_and_install_line(path):
    nb = nbformat.read(path, as_version=4)
    expected = nbformat.read(path, as_version=4)
    badges.apply_to_notebook(expected, badges.notebook_paths()[path], URL)
    assert nb.cells[0].source == expected.cells[0].source, "run `python -m tools.course badges`"
    setup = next(c for c in nb.cells if c.cell_type == "code").source
    assert setup.startswith(badges.BOOTSTRAP.format(url=URL)), "run `python -m tools.course badges`"
    assert "runtime.setup(" in setup


def test_the_readme_badges_and_the_citation_follow_the_setting():
    readme = (ROOT / "README.md").read_text()
    block = re.findall(re.escape(badges.README_START) + ".*?" + re.escape(badges.README_END),
                       readme, re.S)
    assert block == [badges.readme_badges(URL)], "run `python -m tools.course badges`"
    assert f'repository-code: "{URL}"' in (ROOT / "CITATION.cff").read_text()


def test_the_readme_block_is_course_level_and_follows_the_address_it_is_given():
    """Binder for the whole course, Colab and Kaggle from each notebook's own title line: adding a
    notebook needs no README edit."""
    other = badges.readme_badges("https://github.com/some-org/some-course")
    assert "https://mybinder.org/v2/gh/some-org/some-course/main?urlpath=lab/tree/student)" in other
    assert "YOUR-ORG" not in other and "dgm-course" not in other
    lines = other.split("\n")
    assert lines[0] == badges.README_START and lines[-1] == badges.README_END
    assert [line for line in lines[1:-1] if line] == [lines[1], badges.README_HOSTS]
    assert lines[1].startswith("[![Launch Binder](")
    assert "colab.research" not in other and "kaggle.com" not in other
    assert not [p.stem for p in (ROOT / "notebooks").glob("*.ipynb") if p.stem in other]


def test_every_badge_opens_a_notebook_that_exists():
    texts = {p.name: nbformat.read(p, as_version=4).cells[0].source
             for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    texts["README.md"] = (ROOT / "README.md").read_text()
    found = 0
    for where, text in texts.items():
        for link in LINK.findall(text):
            if "/assets/" in link or "/static/" in link or link.endswith(".svg"):
                continue  # a badge's image
            found += 1
            path = re.sub(r"^.*?(?:blob/main/|urlpath=lab/tree/)", "", link)
            assert URL.removeprefix("https://github.com/") in link, f"{where}: {link}"
            target = ROOT / re.sub(r"^student", "notebooks", path)  # postBuild writes student/
            assert (target.is_file() or target.is_dir()) and not link.endswith("NN_title.ipynb"), \
                f"{where}: {link} opens {path}, which does not exist"
    assert found >= 3 * (len(texts) - 1) + 1  # Colab, Kaggle, Binder per notebook; README: Binder


def test_the_course_declares_what_a_host_may_lack_with_lower_bounds_only():
    declared = {re.split(r"[<>=!~ ]", d)[0] for d in _pyproject()["project"]["dependencies"]}
    assert not [d for d in _pyproject()["project"]["dependencies"] if "==" in d or "<" in d]
    sources = [p.read_text() for p in (ROOT / "helpers").rglob("*.py")]
    sources += [student.as_python(c.source) for p in (ROOT / "notebooks").glob("*.ipynb")
                for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code"]
    imported = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"helpers", "IPython"}
    assert third_party <= declared, f"imported but not declared: {third_party - declared}"


def _pins(path: Path) -> dict:
    lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
    return dict(ln.split("==") for ln in lines if "==" in ln)


def test_binder_installs_the_pinned_set_with_the_cpu_only_torch():
    pinned, binder = _pins(ROOT / "requirements.txt"), _pins(ROOT / "binder" / "requirements.txt")
    assert binder["torch"] == pinned["torch"] + "+cpu"
    assert binder["torchvision"] == pinned["torchvision"] + "+cpu"
    hub_only = {"nbgitpuller"}  # a class hub's image opens the course's hub links
    assert {k: v for k, v in binder.items() if not k.startswith("torch") and k not in hub_only} \
        == {k: v for k, v in pinned.items() if not k.startswith("torch")}
    assert hub_only <= set(binder)
    assert "python -m tools.course binder" in (ROOT / "binder" / "postBuild").read_text()


def test_installed_as_a_package_the_course_keeps_its_files_in_the_users_folder(monkeypatch,
                                                                            tmp_path):
    monkeypatch.setattr(places, "CHECKOUT", False)
    monkeypatch.setattr(datafiles, "CHECKOUT", False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DGM_DATA", raising=False)
    assert datafiles.data_root() == tmp_path / "dgm-course" / "data"
    assert "installed package" in places.where()
    advice = datafiles.how_to_get("mnist")
    assert "make" not in advice and "internet" in advice and "DGM_DATA" in advice


def test_a_cpu_only_install_that_cannot_reach_its_index_says_why_and_falls_back(capsys):
    refuse = [sys.executable, "-c", "import sys; sys.exit('error: no route to the index')"]
    course._install_cpu_torch(refuse)
    said = capsys.readouterr().out
    assert "could not be installed" in said and "no route to the index" in said
    assert "about 5 GB" in said


def test_every_make_target_has_a_python_entry_point():
    targets = re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.M)
    parser_targets = set(course.main.__code__.co_consts) | set(
        re.findall(r'add\("([a-z-]+)"', (ROOT / "tools" / "course.py").read_text()))
    missing = [t for t in targets if t != "help" and t not in parser_targets]
    assert not missing, f"make targets without `python -m tools.course`: {missing}"
    for target in targets:
        if target != "help":
            assert f"$(COURSE) {target}" in (ROOT / "Makefile").read_text()


def test_the_hub_link_pulls_the_course_and_opens_the_notebook():
    from urllib.parse import parse_qs, urlparse

    link = urlparse(course.hub_link("https://hub.example.edu/", "01_distributions.ipynb"))
    assert (link.scheme, link.netloc, link.path) == ("https", "hub.example.edu",
                                                     "/hub/user-redirect/git-pull")
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    folder = URL.rsplit("/", 1)[-1]
    assert query == {"repo": URL, "branch": "main",
                     "urlpath": f"lab/tree/{folder}/notebooks/01_distributions.ipynb"}
    assert (ROOT / "notebooks" / "01_distributions.ipynb").is_file()
    with pytest.raises(SystemExit, match="not a hub's address"):
        course.hub_link("hub.example.edu")


def test_setup_on_an_older_python_says_which_python_to_use(tmp_path, monkeypatch):
    from tools import course

    monkeypatch.setattr(course, "VPY", tmp_path / "venv" / "bin" / "python")
    monkeypatch.setattr(course, "STAMP", tmp_path / "venv" / ".installed")
    monkeypatch.setattr(sys, "version_info", (3, 10, 14))
    with pytest.raises(SystemExit, match=r"need Python 3.11 or later; this is Python 3.10\."):
        course.setup()
    assert not (tmp_path / "venv").exists()  # nothing half-built


def test_a_cpu_only_set_up_is_remembered_when_the_pins_change(tmp_path, monkeypatch):
    from tools import course

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    for name, value in {"VENV": venv, "VPY": venv / "bin" / "python", "STAMP": venv / ".installed",
                        "CPU_ONLY": venv / ".cpu-only"}.items():
        monkeypatch.setattr(course, name, value)
    calls = []
    monkeypatch.setattr(course, "run", lambda *cmd, **kwargs: calls.append(cmd[-1]) or 0)
    monkeypatch.setattr(course, "_install_cpu_torch", lambda installer: calls.append("cpu torch"))
    monkeypatch.setattr(course, "git_filter", lambda python: None)
    monkeypatch.setattr(course, "widget_state", lambda prefix: None)
    monkeypatch.setattr(course.subprocess, "run", lambda *a, **k: types.SimpleNamespace(stdout=""))
    course.setup(cpu=True)  # make setup CPU=1
    assert "cpu torch" in calls and course.CPU_ONLY.is_file()
    calls.clear()
    course.STAMP.write_text("the pins of an older requirements.txt")
    course.setup()  # a later make lab, after a git pull changed the pins
    assert calls.index("cpu torch") < calls.index(".")  # the CPU-only torch, then the rest
