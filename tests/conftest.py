"""Shared fixtures: the notebooks' exercise functions, as solved and as the student stub, any of
their cells (`notebook_cells`), and a headless browser (`browser`)."""

import shutil
from pathlib import Path

import fake_device
import nbformat
import pytest

from tools import student

fake_device.register()  # before any backward pass of the test session (see its docstring)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_cells(name: str, *markers: str, stubbed: bool = False) -> dict:
    """Run a notebook's setup cell, then the code cells that contain `markers` (by default its
    exercise cells), as the student stubs when `stubbed`; return the namespace they define."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [student.as_python(c.source) for c in nb.cells if c.cell_type == "code"]
    chosen = ([next(src for src in code if m in src) for m in markers] if markers
              else [src for src in code if student.BEGIN in src])
    assert chosen, f"{name} has no exercise cells"
    namespace: dict = {}
    for src in [code[0], *chosen]:
        exec(student.stub_source(src) if stubbed else src, namespace)
    return namespace


@pytest.fixture(autouse=True)
def settings_from_the_environment(monkeypatch):
    """Each test starts without a current configuration, and until a test calls runtime.setup the
    helpers read the environment afresh, so that a test can set DGM_* variables as it goes."""
    from helpers import config

    monkeypatch.setattr(config, "_current", [])
    monkeypatch.setattr(config, "current",
                        lambda: config._current[0] if config._current else config.read())


@pytest.fixture(scope="session")
def solved():
    return lambda name: run_cells(name)


@pytest.fixture(scope="session")
def stubs():
    return lambda name: run_cells(name, stubbed=True)


@pytest.fixture(scope="session")
def notebook_cells():
    return run_cells


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, driven by selenium, with the console's messages kept
    (`browser.get_log("browser")`); for the `ui` tests."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail("the browser tests need Debian's chromium and chromium-driver (apt-get "
                    "install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1366,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark a failed test on its item, so that a fixture can react (test_lab_ui's screenshots)."""
    outcome = yield
    if outcome.get_result().failed:
        item.failed = True
