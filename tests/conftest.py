"""Shared fixtures: the notebooks' exercise functions, as solved and as the student stub."""

from pathlib import Path

import fake_device
import nbformat
import pytest

from helpers import student

fake_device.register()  # before any backward pass of the test session (see its docstring)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def exercise_functions(name: str, stubbed: bool = False) -> dict:
    """Run a notebook's setup cell and its exercise cells; return the namespace they define."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    exercises = [src for src in code if student.BEGIN in src]
    assert exercises, f"{name} has no exercise cells"
    namespace: dict = {}
    for src in [code[0], *exercises]:
        exec(student.stub_source(src) if stubbed else src, namespace)
    return namespace


@pytest.fixture(scope="session")
def solved():
    return lambda name: exercise_functions(name)


@pytest.fixture(scope="session")
def stubs():
    return lambda name: exercise_functions(name, stubbed=True)
