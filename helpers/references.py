"""Published numbers, in one place: `references.csv` beside this module holds every figure from a
paper that a notebook or the README quotes, each with its paper, the table it is in and the
configuration of its row. Notebooks print them from here (`table`, `cite`, `value`); a test
checks that no published number is written anywhere else."""

import csv
import functools
from importlib import resources


@functools.cache
def rows() -> dict[str, dict[str, str]]:
    """key -> the row of references.csv (notebook, model, measure, value, unit, paper, where,
    configuration), in the file's order."""
    with resources.files(__package__).joinpath("references.csv").open(encoding="utf-8") as f:
        return {row["key"]: row for row in csv.DictReader(f)}


def _row(key: str) -> dict[str, str]:
    try:
        return rows()[key]
    except KeyError:
        raise KeyError(f"no published number {key!r} in helpers/references.csv; "
                       f"its keys: {', '.join(rows())}") from None


def _amount(row: dict[str, str]) -> str:
    unit = row["unit"]
    return row["value"] + (unit if unit in ("", "%") else f" {unit}")


def value(key: str) -> float:
    """The published value of row `key` ("pixelcnn_mnist"), as a float."""
    return float(_row(key)["value"])


def cite(key: str) -> str:
    """The value with its unit, its paper, its table and the configuration of its row."""
    row = _row(key)
    return f"{_amount(row)} ({row['paper']}, {row['where']}: {row['configuration']})"


def table(notebook: str):
    """The published numbers that notebook `notebook` ("02") quotes, as a Markdown table that
    Jupyter renders (and as its text elsewhere)."""
    from IPython.display import Markdown

    lines = ["| model | measure | value | source | configuration |", "|---|---|---|---|---|"]
    for row in rows().values():
        if notebook in row["notebook"].split():
            lines.append(f"| {row['model']} | {row['measure']} | {_amount(row)} | "
                         f"{row['paper']}, {row['where']} | {row['configuration']} |")
    if len(lines) == 2:
        raise ValueError(f"no published numbers for notebook {notebook!r} in references.csv")
    return Markdown("\n".join(lines))
