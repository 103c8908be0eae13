"""A student's day in JupyterLab, in a real browser: Debian's headless Chromium driven by selenium.

On a fresh clone of the repository (its committed state, with the git filter of `make setup`), a
JupyterLab server on a free loopback port with a token, started with the repository's own
configuration: it opens on student/; the student copy of 02 stops at its first exercise with a
short message; the solution typed into the cell passes the check and is saved; a solved notebook
runs with progress bars and a slider that redraws its figure, every figure fits the column, a
reopened notebook shows its widgets without an error, and git sees the tracked notebooks
unchanged. `make test-ui` runs it (CI too); screenshots of a failure go to build/ui/. The server
and the browser always stop.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.ui
REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "build" / "ui"
SOLUTION = ["terms = x.unsqueeze(-1) * W.T",
            "a = c + terms.cumsum(1) - terms",
            "return b + (torch.sigmoid(a) * V).sum(-1)"]


def _git(clone: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=clone, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The committed repository with the git filter that `make setup` configures, and the student
    copies that `make student` writes."""
    root = tmp_path_factory.mktemp("ui") / "course"
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    _git(root, "config", "filter.strip-notebooks.clean",
         f"'{sys.executable}' -m tools.student strip")
    _git(root, "config", "filter.strip-notebooks.smudge", "cat")
    subprocess.run([sys.executable, "-m", "tools.student", "notebooks", "student"], cwd=root,
                   check=True, capture_output=True)
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(clone, tmp_path_factory):
    """(base URL, token) of a JupyterLab server in the clone, stopped at the end whatever
    happens. Quick mode; the data and the reference classifier come from this checkout."""
    from helpers import checkpoints, data

    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path_factory.mktemp("lab") / "lab.log", "w")  # noqa: SIM115 - closed below
    settings = tmp_path_factory.mktemp("settings")  # every cell rendered; no news pop-up
    for plugin, values in [("notebook-extension/tracker", {"windowingMode": "none"}),
                           ("apputils-extension/notification", {"fetchNews": "false"})]:
        (settings / "@jupyterlab" / plugin).parent.mkdir(parents=True, exist_ok=True)
        (settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings").write_text(
            json.dumps(values))
    env = {**os.environ, "DGM_QUICK": "1", "DGM_DATA": str(data.data_root()),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "DGM_CHECKPOINTS": os.pathsep.join([str(clone / "checkpoints"),
                                               *map(str, checkpoints.checkpoint_dirs())])}
    command = [sys.executable, "-m", "jupyter", "lab", "--config=jupyter_lab_config.py",
               "--no-browser", f"--port={port}",
               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
               "--LabApp.expose_app_in_browser=True", *(["--allow-root"] * (os.geteuid() == 0))]
    server = subprocess.Popen(command, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"JupyterLab did not start: see {log.name}")
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def page(browser, lab, request):
    """The browser, with a screenshot in build/ui/ when the test fails."""
    yield browser
    if getattr(request.node, "failed", False):
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / f"{request.node.name}.png"))


def _wait(driver, script: str, timeout: float = 180, what: str = ""):
    """Poll a JavaScript expression until it is truthy; return its value."""
    end = time.time() + timeout
    while time.time() < end:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or script}")


APP = "window.jupyterapp"
PANEL = f"{APP}.shell.currentWidget"


def _open(driver, lab, path: str) -> None:
    base, token = lab
    driver.get(f"{base}/lab/tree/{path}?token={token}")
    _wait(driver, f"{PANEL} && {PANEL}.context && {PANEL}.context.path === {json.dumps(path)} "
                  f"&& {PANEL}.sessionContext.session && {PANEL}.sessionContext.session.kernel "
                  f"&& {PANEL}.sessionContext.session.kernel.status === 'idle'", 120,
          f"{path} open with an idle kernel")


def _outputs(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
        ".jp-OutputArea-output')].map(e => e.innerText)")


def test_make_lab_opens_on_the_student_copies(page, lab):
    base, token = lab
    page.get(f"{base}/?token={token}")  # where `make lab` points the browser
    _wait(page, "document.querySelector('.jp-BreadCrumbs') && document.querySelector("
                "'.jp-BreadCrumbs').innerText.includes('student')", 60, "the student folder")
    assert "/lab/tree/student" in page.current_url


def test_a_student_types_the_first_exercise_of_02_and_saves_it(page, lab, clone):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    path = "student/02_autoregressive.ipynb"
    _open(page, lab, path)
    page.execute_script(f"{APP}.commands.execute('notebook:run-all-cells')")
    stopped = _wait(page, "[...document.querySelectorAll('.jp-OutputArea-output')].map(e => "
                          "e.innerText).find(t => t.includes('not written yet'))", 120,
                    "the first check to stop")
    assert "✗ nade_logits: not written yet" in stopped and "hint:" in stopped
    assert len(stopped.strip().splitlines()) <= 5, stopped

    stub = next(line for line in page.find_elements(By.CSS_SELECTOR, ".cm-line")
                if "raise NotImplementedError" in line.text)
    stub.click()
    keys = ActionChains(page).send_keys(Keys.END).key_down(Keys.SHIFT).send_keys(Keys.HOME)
    keys.key_up(Keys.SHIFT).perform()  # the stub line's text, after its indentation
    for i, line in enumerate(SOLUTION):  # typed as a student types: the editor indents lines
        ActionChains(page).send_keys(line + (Keys.ENTER if i + 1 < len(SOLUTION) else "")).perform()
    ActionChains(page).key_down(Keys.SHIFT).send_keys(Keys.ENTER).send_keys(Keys.ENTER) \
        .key_up(Keys.SHIFT).perform()  # run the exercise cell, then its check
    passed = _wait(page, "[...document.querySelectorAll('.jp-OutputArea-output')].map(e => "
                         "e.innerText).find(t => t.includes('✓ nade_logits'))", 60, "the ✓ line")
    assert passed.startswith("✓ nade_logits")
    before = (clone / path).read_text()
    page.execute_script(f"{APP}.commands.execute('docmanager:save')")
    _wait(page, f"!{PANEL}.context.model.dirty", 30, "the save")
    saved = json.loads((clone / path).read_text())
    source = "".join(next(c["source"] for c in saved["cells"]
                          if "def nade_logits" in "".join(c["source"])))
    assert (clone / path).read_text() != before
    assert all(f"    {line}\n" in source + "\n" for line in SOLUTION), source
    assert "NotImplementedError" not in source


def test_a_notebook_runs_redraws_fits_and_reopens_with_its_widgets(page, lab, clone):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    path = "student/04_solved.ipynb"  # a student's own solved copy of 04: kept with its outputs
    shutil.copyfile(clone / "notebooks" / "04_vae_elbo.ipynb", clone / path)
    _open(page, lab, path)
    page.execute_script(f"{APP}.commands.execute('notebook:run-all-cells')")
    _wait(page, f"{PANEL}.content.widgets.every(c => c.model.type !== 'code' || "
                "(c.model.executionCount && !c.node.querySelector('.jp-InputPrompt')"
                ".innerText.includes('*')))", 600, "every cell of 04 to run")
    assert page.find_elements(By.CSS_SELECTOR, ".jp-OutputArea .widget-hprogress")  # tqdm bars
    assert not [t for t in _outputs(page) if "Traceback" in t or "Error" in t.split("\n")[0]]

    images = "[...document.querySelectorAll('.jp-OutputArea-output img')]"
    shrunk = page.execute_script(f"return {images}.filter(i => i.clientWidth > 0 && "
                                 "i.naturalWidth > i.clientWidth + 2)"
                                 ".map(i => [i.naturalWidth, i.clientWidth])")
    assert not shrunk, f"figures wider than the column (natural, shown): {shrunk}"

    slider = page.find_element(By.CSS_SELECTOR, ".jp-OutputArea .widget-slider .noUi-handle")
    figure = "(() => { const o = document.querySelector('.widget-slider').closest(" \
             "'.jp-Cell').querySelectorAll('.jp-OutputArea-output img'); " \
             "return o.length ? o[o.length - 1].src : ''; })()"
    drawn = _wait(page, figure, 60, "the slider's figure")
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
    slider.click()
    slider.send_keys(Keys.ARROW_RIGHT * 3)
    _wait(page, f"{figure} && {figure} !== {json.dumps(drawn)}", 60, "the figure to redraw")

    page.execute_script(f"{APP}.commands.execute('docmanager:save')")
    _wait(page, f"!{PANEL}.context.model.dirty", 30, "the save")
    saved = json.loads((clone / path).read_text())
    assert any(o.get("data", {}).get("application/vnd.jupyter.widget-view+json")
               for c in saved["cells"] for o in c.get("outputs", []))
    assert saved["metadata"].get("widgets"), "the widget state is saved with the notebook"
    page.execute_script(f"{APP}.commands.execute('kernelmenu:shutdown')")
    _wait(page, f"!{PANEL}.sessionContext.session", 30, "the kernel to stop")
    page.execute_script(f"{APP}.commands.execute('application:close-all')")
    _open(page, lab, path)  # a new kernel: the widgets' models are gone
    _wait(page, "document.querySelectorAll('.jp-OutputArea-output img').length > 0", 60,
          "the saved figures")
    time.sleep(2)  # widget views render asynchronously
    assert not [t for t in _outputs(page) if "Error displaying widget" in t]
    assert page.find_elements(By.CSS_SELECTOR, ".jp-OutputArea .widget-slider")


def test_running_and_saving_a_reference_notebook_leaves_git_clean(page, lab, clone):
    path = "notebooks/04_vae_elbo.ipynb"
    _open(page, lab, path)
    for _ in range(4):  # the set-up cell and the first figures
        page.execute_script(f"{APP}.commands.execute('notebook:run-cell-and-select-next')")
    _wait(page, "[...document.querySelectorAll('.jp-OutputArea-output')].length > 1", 120,
          "outputs")
    page.execute_script(f"{APP}.commands.execute('docmanager:save')")
    _wait(page, f"!{PANEL}.context.model.dirty", 30, "the save")
    assert _git(clone, "status", "--porcelain", "notebooks") == ""  # saved as git holds it
    assert '"outputs": []' in (clone / path).read_text()
