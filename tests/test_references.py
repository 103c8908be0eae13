"""Every published number lives in helpers/references.csv, with its paper, table and row: the
notebooks and the course's own texts print it from there and never write it themselves."""

import json
import re
from pathlib import Path

import pytest

from helpers import references

ROOT = Path(__file__).resolve().parent.parent
GENERATED = {"results-quick.md", "results-cpu.md", "results-gpu.md"}  # this machine's figures


def _texts():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            yield f"{path.name} cell {i}", "".join(cell["source"])
    for path in [*ROOT.glob("*.md"), *sorted((ROOT / "docs").glob("*.md")),
                 *sorted((ROOT / "helpers").rglob("*.py")), *sorted((ROOT / "tools").glob("*.py"))]:
        if path.name not in GENERATED:
            yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")


VERSION = re.compile(r"(python|py -|tested:|matplotlib[ 0-9.]*to)\s*$", re.IGNORECASE)


def _found(value: str, text: str) -> bool:
    """Whether text writes the value, as written (81.30) or shortened (81.3), not as part of a
    longer number nor as a version number."""
    forms = "|".join(map(re.escape, {value, f"{float(value):g}"}))
    return any(not VERSION.search(text[max(0, m.start() - 20):m.start()])
               for m in re.finditer(rf"(?<![\w.])(?:{forms})(?![\d])", text))


def test_every_row_is_complete_and_numeric():
    assert references.rows(), "helpers/references.csv has no rows"
    for key, row in references.rows().items():
        assert all(row[k].strip() for k in ("notebook", "model", "measure", "value", "paper",
                                            "where", "configuration")), f"{key}: a field is empty"
        assert re.fullmatch(r"(Table|Fig\.) \d+", row["where"]), f"{key}: where is {row['where']!r}"
        assert isinstance(references.value(key), float)


@pytest.mark.parametrize("key", list(references.rows()))
def test_no_published_number_outside_the_table(key):
    value = references.rows()[key]["value"]
    found = [where for where, text in _texts() if _found(value, text)]
    assert not found, (f"{value} ({key}) is written in {found}: print it with "
                       f"references.value({key!r}) or show references.table(...) instead")


def test_each_notebook_shows_its_rows():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        number = path.name[:2]
        cited = [k for k, row in references.rows().items() if number in row["notebook"].split()]
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        shown = any(f'references.table("{number}")' in "".join(c["source"]) for c in cells)
        assert shown == bool(cited), f"{path.name}: rows {cited}, table shown: {shown}"


def test_an_unknown_key_says_which_exist():
    with pytest.raises(KeyError, match="pixelcnn_mnist"):
        references.value("pixelcnn")
