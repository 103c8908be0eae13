"""The course site in a real browser: every notebook executed in quick mode, the site built from
those executions (tools/site.py, what `make site` runs), and every page (the README as the home
page, each page of docs/, each notebook) opened from the disk in headless Chromium. A page fails
on a missing image, a formula left unrendered, a console error, a broken link, a widget left as
an error, or a missing note of where it was executed. Screenshots of the home page and of 06 go
to build/site-shots/ (of every page when a test fails)."""

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tools import runner, site

pytestmark = pytest.mark.ui
REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "build" / "site-shots"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DOCS = [name for name in site.DOCS if (REPO / "docs" / f"{name}.md").is_file()]  # read by name
PAGES = ["index.html", *(f"{name}.html" for name in DOCS),
         *(f"notebooks/{p.stem}.html" for p in NOTEBOOKS)]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """`make site` in quick mode: the notebooks executed by tools.runner (two at a time, on the
    test suite's data folder and cache), then the site built from them."""
    run, out = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("site") / "site"
    data = REPO / "build" / "test-data"
    env = {**runner.settings("quick", jobs=2), "DGM_CIFAR10": "1", "DGM_DATA": str(data),
           "DGM_CHECKSUMS": str(data / "checksums.json"),
           "DGM_CHECKPOINTS": os.pathsep.join([str(data / "checkpoints"),
                                               str(REPO / "data" / "checkpoints")])}
    rows = runner.execute_all(NOTEBOOKS, run, env, jobs=2)
    assert all(r["status"] == "ok" for r in rows), [r["status"] for r in rows]
    site.build(run, out)
    return out


def _local_target(page: Path, href: str) -> tuple[Path, str] | None:
    """(file, fragment) of a link within the site; None for a link to the outside."""
    url = urlparse(href)
    if url.scheme not in ("file", "") or href.startswith(("mailto:", "javascript:")):
        return None
    path = Path(unquote(url.path)) if url.scheme == "file" else \
        (page.parent / unquote(url.path) if url.path else page)
    return path.resolve(), url.fragment


@pytest.mark.parametrize("name", PAGES)
def test_a_page_shows_its_figures_math_and_links_without_errors(name, built, browser):
    page = built / name
    browser.get_log("browser")  # forget the previous page's messages
    browser.get(page.as_uri())
    browser.set_script_timeout(60)
    browser.execute_async_script(  # until MathJax has typeset the page (or there is none)
        "const done = arguments[arguments.length - 1];"
        "window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => done(1)) : done(0)")
    try:
        images = browser.execute_script(
            "return [...document.images].map(i => [i.src, i.complete && i.naturalWidth > 0])")
        assert images or not name.startswith("notebooks/"), "no figure on the page"
        assert [src for src, ok in images if not ok] == [], "images that do not load"
        unrendered = browser.execute_script(
            "return [...document.querySelectorAll('.math')].filter(m => !m.querySelector("
            "'mjx-container svg')).map(m => m.textContent.slice(0, 80))")
        assert unrendered == [], "formulas MathJax did not render"
        text = browser.execute_script(
            "const a = document.querySelector('article').cloneNode(true);"
            "a.querySelectorAll('pre, code, .output, script').forEach(e => e.remove());"
            "return a.innerText")
        assert not re.search(r"\$[^$\s][^$\n]*\$", text), "a $...$ formula shown as text"
        assert "Error displaying widget" not in text and "widget-view+json" not in text
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], "console errors"
        links = browser.execute_script(
            "return [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))")
        for href in links:
            target = _local_target(page, href)
            if target is None:
                continue
            path, fragment = target
            assert path.is_file() or (path / "index.html").is_file(), f"broken link {href}"
            if fragment and path == page.resolve():
                assert browser.execute_script(
                    "return !!document.getElementById(arguments[0])", unquote(fragment)), \
                    f"no anchor for {href}"
        if name.startswith("notebooks/"):
            assert re.search(r"Executed in quick mode on .+, on \d{4}-\d\d-\d\d", text), \
                "the page does not say where and when it was executed"
        shown = browser.execute_script("return document.querySelector('article').innerText")
        if name == "index.html":  # the README whole: the notebook table, a link to every docs page
            assert all(p.stem in shown for p in NOTEBOOKS), "the notebook table is missing"
            linked = {urlparse(href).path.rsplit("/", 1)[-1] for href in links}
            assert {f"{d}.html" for d in DOCS} <= linked, "a docs page is not linked"
        if name == "notebooks/04_vae_elbo.html":  # the slider, in its last state
            assert re.search(r"z1 = -?[\d.]+ \(a slider in JupyterLab\)", shown)
        if name == "notebooks/05_gan.html":  # a finished progress bar, as its last line
            assert re.search(r"8\s+Gaussians:\s+100%\s+▕█{20}▏\s+\d+/\d+", shown)
        if name in ("index.html", "notebooks/06_diffusion.html"):
            SHOTS.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(SHOTS / name.replace("/", "-").replace(".html", ".png")))
    except AssertionError:
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / f"failed-{name.replace('/', '-')}.png"))
        raise


def test_the_site_needs_no_network(built):
    """No page or stylesheet loads anything from another host: it works offline."""
    for path in [*built.rglob("*.html"), *built.rglob("*.css")]:
        text = path.read_text(errors="ignore")
        loads = re.findall(r"""<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)=["'](https?://[^"']+)""",
                           text)  # a link to a paper is fine; a script, style or image is not
        loads += re.findall(r"""(?:@import|url)\(["']?(https?://[^)"']+)""", text)
        assert loads == [], f"{path.relative_to(built)} loads {loads[:3]}"
