"""Adding a notebook touches only its own files: in a copy of the repository, a notebook made from
the template (notebooks/99_example.ipynb) goes through the unit tests that look at every notebook,
`make test`'s notebook phase (nbval), the benchmark, the student copies, the site and the gpu-smoke
budget, and afterwards git sees the new notebook and nothing else changed. Needs the site's
packages (requirements-site.txt: CI installs them with `make test-ui` before the slow tests)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import course

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
NEW = "notebooks/99_example.ipynb"


def _run(repo: Path, *args: str, env: dict) -> str:
    done = subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def test_a_notebook_made_from_the_template_runs_everywhere_without_editing_another_file(tmp_path):
    repo = tmp_path / "course"
    tracked = _git(ROOT, "ls-files", "-co", "--exclude-standard").splitlines()
    for name in tracked:  # the working tree as it is, committed in a repository of its own
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "course")
    shutil.copy(repo / "templates" / "notebook.ipynb", repo / NEW)  # step 1 of CONTRIBUTING

    env = {**os.environ, "PYTHONPATH": str(repo), "DGM_QUICK": "1", "OMP_NUM_THREADS": "1",
           "DGM_DATA": str(ROOT / "data"), "DGM_CHECKPOINTS": str(tmp_path / "checkpoints")}
    _run(repo, "-m", "tools.badges", env=env)  # its "Open in" line and install line
    _run(repo, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_hygiene.py",
         "tests/test_badges.py", "tests/test_structure.py", "tests/test_student.py", env=env)
    _run(repo, "-m", "pytest", "-q", "-p", "no:cacheprovider", *course.NBVAL, NEW, env=env)
    _run(repo, "-m", "tools.bench", "--mode", "quick", "--notebooks", NEW, "--no-peer",
         "--docs", "build/docs", env=env)
    assert "| 99_example | ok |" in (repo / "build" / "docs" / "results-quick.md").read_text()
    _run(repo, "-m", "tools.student", "notebooks", "student", env=env)
    assert "raise NotImplementedError" in (repo / "student" / "99_example.ipynb").read_text()
    _run(repo, "-m", "tools.runner", "--out", "build/run", NEW, env=env)
    _run(repo, "-m", "tools.site", "build/run", "build/site", env=env)
    assert (repo / "build" / "site" / "notebooks" / "99_example.html").is_file()
    _run(repo, "-m", "tools.runner", "--smoke", "--retrain", "--emulate", "cuda", "--out",
         "build/smoke/run", NEW, env=env)
    budget = _run(repo, "-m", "tools.gpu_budget", "build/smoke", env=env)
    assert "| 99_example |" in budget

    changed = _git(repo, "status", "--porcelain").splitlines()
    assert changed == [f"?? {NEW}"], changed
