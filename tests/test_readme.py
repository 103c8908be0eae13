"""The README stays a newcomer's page: short, linking to docs/ for the rest. The benchmark writes
its own pages of docs/ and never the README; the site reads the README whole and docs/ by name,
never by heading. Every relative link of the README and of docs/ opens a file (and a heading)
that exists."""

import re
from pathlib import Path

import pytest

from tools import site

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) or ![text](target); the text may hold one picture, as a badge's link does
LINK = re.compile(r"!?\[(?:!\[[^\[\]]*\]\([^)\s]*\)|[^\[\]])*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The Markdown without its code: fenced blocks and `spans` hold no links."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))


def _anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings, as GitHub and the site (myst) make them."""
    headings = re.findall(r"^#{1,6} (.+)$", _prose(path.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= 150, f"README.md has {lines} lines: move the details into docs/"


def test_the_benchmark_and_the_site_never_write_or_slice_the_readme():
    assert "README" not in (ROOT / "tools" / "bench.py").read_text(), \
        "the benchmark writes docs/results-MODE.md, not the README"
    source = (ROOT / "tools" / "site.py").read_text()
    assert "^## " not in source, "the site reads the README whole, never by its headings"
    for line in source.splitlines():
        if "README" in line:
            assert "write" not in line and "open(" not in line, line
    assert "<!-- bench:" not in README.read_text(), "the benchmark's tables live in docs/"


def test_the_site_pages_of_docs_exist_with_a_title():
    for name in site.DOCS:
        path = ROOT / "docs" / f"{name}.md"
        assert path.is_file(), f"tools/site.py's DOCS names docs/{name}.md, which does not exist"
        assert path.read_text().startswith("# "), f"docs/{name}.md opens with a `# ` title"


@pytest.mark.parametrize("mode", ["quick", "cpu", "gpu"])
def test_each_benchmark_page_says_it_is_generated(mode):
    text = (ROOT / "docs" / f"results-{mode}.md").read_text()
    assert re.match(rf"# Benchmark: {mode} mode\n\n?_Written whole by `make bench MODE={mode}`; "
                    r"do not edit by hand\._\n\n", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_opens_a_file_and_heading_that_exist(page):
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        found = (page.parent / path).resolve() if path else page
        assert found.exists(), f"{page.name}: {target} opens {found}, which does not exist"
        if anchor and found.suffix == ".md":
            assert anchor in _anchors(found), f"{page.name}: {target}: no heading #{anchor}"
