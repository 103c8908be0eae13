"""`python -m tools.course TARGET`: every make target as one Python entry point, so that Windows,
macOS and any machine without make run the course the same way (the Makefile only calls this).

It needs nothing but the standard library and the Python it runs on (Python 3.11 or later, for the
pinned packages; on an older one `setup` says so): `setup` builds .venv with that Python, and
every later step runs in .venv. `python -m tools.course --help` lists the targets; `lab` and `test`
are the README's two commands.
"""

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VPY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".installed"
CPU_ONLY = VENV / ".cpu-only"  # set up with CPU=1: later set-ups keep the CPU-only torch
TEST_DATA = ROOT / "build" / "test-data"
MIN_PYTHON = (3, 11)  # what the pinned numpy, matplotlib and ipython need
# The CPU-only PyTorch build (no CUDA libraries: about 1 GB installed instead of about 5 GB).
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# nbval: lax output comparison, the kernel from this environment, and a cell timeout so that a
# dead kernel fails fast instead of hanging the run. Two workers on two cores, one thread each:
# notebooks are scheduled a whole file per worker (loadscope, the only mode nbval supports).
NBVAL = ["--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=600"]
PARALLEL = ["-n", "2", "--dist", "loadscope"]


def notebooks() -> list[str]:
    return [str(p.relative_to(ROOT)) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]


def run(*cmd, env: dict | None = None, check: bool = True) -> int:
    """Run a command in the repository with the environment plus `env`; stop on failure."""
    cmd = [str(c) for c in cmd]
    code = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}).returncode
    if check and code:
        raise SystemExit(f"course: `{' '.join(cmd)}` failed (exit {code})")
    return code


def py(*args, **kwargs) -> int:
    """Run .venv's Python."""
    return run(VPY, *args, **kwargs)


BRANCH = "main"  # the published branch that badges and hub links open


def repository() -> str:
    """The course's public address, written once in pyproject.toml ([project.urls] Repository),
    read without tomllib, which Python 3.10 lacks."""
    found = re.search(r'^Repository\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    if not found:
        raise SystemExit("pyproject.toml: [project.urls] has no Repository = \"https://...\" line")
    return found.group(1).rstrip("/")


def hub_link(hub: str, notebook: str = "", branch: str = BRANCH) -> str:
    """An nbgitpuller link: opening it on a JupyterHub clones (or updates) the course into the
    student's home folder and opens it there, on `notebook` when given."""
    if not re.match(r"https?://[^/\s]+", hub):
        raise SystemExit(f"hub-link: {hub!r} is not a hub's address (https://hub.example.edu)")
    folder = repository().rsplit("/", 1)[-1]
    path = f"lab/tree/{folder}/notebooks/{notebook}".rstrip("/")
    query = urllib.parse.urlencode({"repo": repository(), "branch": branch, "urlpath": path})
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


# --- set-up -------------------------------------------------------------------------------------

def _fingerprint(cpu: bool) -> str:
    files = ["requirements.txt", "pyproject.toml", ".gitattributes"]
    digest = hashlib.sha256(str(cpu).encode())
    for name in files:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def setup(cpu: bool = False) -> None:
    """.venv with the pinned requirements and the course package (editable), the notebook git
    filter, and JupyterLab's widget-state setting. Skipped when nothing it reads has changed.
    `cpu` (CPU=1): PyTorch's CPU-only build, remembered for every later set-up of this .venv."""
    cpu = cpu or CPU_ONLY.is_file()
    if STAMP.is_file() and STAMP.read_text() == _fingerprint(cpu):
        return
    if not VPY.exists():
        if sys.version_info < MIN_PYTHON:
            found = f"{sys.version_info[0]}.{sys.version_info[1]}"
            raise SystemExit(
                f"setup: the pinned packages (requirements.txt) need Python 3.11 or later; this is "
                f"Python {found}. Install a newer Python and run `make lab PYTHON=python3.11` "
                "(without make: `py -3.11 -m tools.course lab`).")
        run(sys.executable, "-m", "venv", VENV)
    # uv installs the pinned set in seconds; plain pip is the fallback.
    uv = [VPY, "-m", "uv", "pip", "install", "-q", "--python", VPY]
    if run(VPY, "-m", "pip", "install", "-q", "uv", check=False):
        uv = [VPY, "-m", "pip", "install", "-q"]
    if cpu:
        _install_cpu_torch(uv)
        CPU_ONLY.touch()
    run(*uv, "-r", "requirements.txt", "-e", ".")
    git_filter(VPY)
    widget_state(VENV)
    STAMP.write_text(_fingerprint(cpu))
    version = subprocess.run([VPY, "-c", "import torch; print(torch.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    print(f"setup: .venv is ready (torch {version})")


def _install_cpu_torch(installer: list) -> None:
    """The pinned torch and torchvision from PyTorch's CPU-only index, where it can be reached;
    otherwise say why, and the next step installs PyPI's build (with its CUDA libraries)."""
    pins = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text()
            .splitlines() if line.startswith(("torch==", "torchvision=="))]
    done = subprocess.run([*map(str, installer), "--index-url", CPU_INDEX, *pins], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, "UV_HTTP_TIMEOUT": "20"})
    if done.returncode == 0:
        print(f"setup: the CPU-only build of {' and '.join(pins)} (about 1 GB on disk)")
        return
    reason = ([line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
              or ["no answer"])[-1][:160]
    print(f"setup: the CPU-only build could not be installed from {CPU_INDEX} ({reason}); "
          "installing PyPI's build instead (it carries CUDA libraries: about 5 GB on disk, and it "
          "runs on a CPU all the same).")


def filter_settings(python) -> dict[str, str]:
    """The git filter of .gitattributes: a notebook run in JupyterLab is committed without outputs.
    Required: a notebook that cannot be cleaned cannot be committed (git stops instead of staging
    it unfiltered)."""
    return {"clean": f"'{Path(python).as_posix()}' -m tools.student strip", "smudge": "cat",
            "required": "true"}


def git_filter(python: Path) -> None:
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=ROOT, capture_output=True).returncode:
        return  # not a git checkout (a download of the files)
    for key, value in filter_settings(python).items():
        run("git", "config", f"filter.strip-notebooks.{key}", value)


def widget_state(prefix: Path) -> None:
    """Widget state saved with a notebook: a reopened notebook shows its sliders and progress bars
    as they were, instead of "Error displaying widget: model not found"."""
    settings = prefix / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(
        json.dumps({"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}) + "\n")


def binder(mirror=None) -> None:
    """binder/postBuild: the set-up in the image's own Python (repo2docker has installed
    binder/requirements.txt into it): the course package, the git filter, the widget setting, the
    student copies and MNIST ($DGM_MIRROR or --mirror: copied from a local mirror instead)."""
    here = Path(sys.executable)
    run(here, "-m", "pip", "install", "-q", "--no-deps", "-e", ".")
    git_filter(here)
    widget_state(Path(sys.prefix))
    run(here, "-m", "tools.student", "notebooks", "student")
    run(here, "-m", "tools.fetch_data", "fetch", "mnist", *(["--mirror", mirror] if mirror else []))


# --- the targets --------------------------------------------------------------------------------

def data(names=("mnist",), mirror=None) -> None:
    setup()
    py("-m", "tools.fetch_data", "fetch", *names, *(["--mirror", mirror] if mirror else []))


def student(force=False) -> None:
    setup()
    py("-m", "tools.student", "notebooks", "student", *(["--force"] if force else []))


def lab() -> None:
    setup()
    student()
    try:
        data()
    except SystemExit:
        print("lab: opening JupyterLab without the data (see the message above).")
    root = ["--allow-root"] if hasattr(os, "getuid") and os.getuid() == 0 else []  # containers
    py("-m", "jupyterlab", "--notebook-dir=.", "--config=jupyter_lab_config.py", *root)


def classifier() -> None:
    setup()
    py("-m", "tools.instrument")


def lint() -> None:
    setup()
    py("-m", "ruff", "check", "helpers", "tools", "tests", "notebooks", "templates")


def test_data() -> None:
    """Under test the notebooks read a data folder of their own (build/test-data): the real MNIST
    and small CIFAR-10 files in CIFAR-10's own format (tests/cifar_fixture.py)."""
    made = TEST_DATA / "checksums.json"
    source = ROOT / "tests" / "cifar_fixture.py"
    if not made.is_file() or made.stat().st_mtime < source.stat().st_mtime:
        py("tests/cifar_fixture.py", TEST_DATA)


def notebook_env() -> dict:
    """The environment of notebooks under test: their own data, results and checkpoints (the
    reference classifier is found in the student's cache after them)."""
    own = os.environ.get("DGM_CHECKPOINTS") or str(
        Path(os.environ.get("DGM_DATA") or ROOT / "data") / "checkpoints")
    return {"DGM_CIFAR10": "1", "DGM_DATA": str(TEST_DATA),
            "DGM_CHECKSUMS": str(TEST_DATA / "checksums.json"),
            "DGM_CHECKPOINTS": os.pathsep.join([str(TEST_DATA / "checkpoints"), own])}


def test(mirror=None) -> None:
    """Lint, the unit tests, then every notebook in quick mode under nbval on the CPU."""
    data(mirror=mirror)
    lint()
    classifier()
    test_data()
    quick = {"OMP_NUM_THREADS": "1", "DGM_QUICK": "1",  # on the CPU, as CI, unless told
             "DGM_DEVICE": os.environ.get("DGM_DEVICE", "cpu")}
    py("-m", "pytest", "tests", "-n", "2", "--dist", "loadgroup", env=quick)
    py("-m", "pytest", *NBVAL, *PARALLEL, *notebooks(), env={**quick, **notebook_env()})


def runner(*args, env: dict | None = None) -> None:
    """tools.runner in .venv: the one way notebooks are executed outside nbval."""
    py("-m", "tools.runner", *args, env=env)


def test_devices() -> None:
    """Every notebook (quick) on an emulated CUDA GPU, then on an emulated Apple MPS device, each
    training run under the audit of steps that make the host wait (DGM_RETRAIN=1)."""
    data()
    classifier()
    test_data()
    for kind in ("cuda", "mps"):
        runner("--mode", "quick", "--retrain", "--emulate", kind, "--jobs", "2",
               "--out", f"build/devices/{kind}", env=notebook_env())


def test_gpu_smoke() -> None:
    """gpu-mode sizes with quick counts on the emulated CUDA GPU, run as the gpu benchmark runs
    them (tools/bench.py --smoke: notebooks side by side, the report written after each);
    measures into build/smoke/ and prints the estimated gpu budgets (tools/gpu_budget.py). Then
    what a T4 runs by default, the cpu recipes, on an emulated T4, into build/smoke-t4/; then
    `test_compile`. Work for a maintainer before a GPU run, not for CI: the gpu mode's models on
    a 2-core CPU take most of an hour where it has no bf16 or AMX."""
    data()
    classifier()
    test_data()
    for folder in ("smoke", "smoke-t4"):
        shutil.rmtree(ROOT / "build" / folder, ignore_errors=True)
    py("-m", "tools.bench", "--mode", "gpu", "--smoke", "--jobs", "2", "--no-peer", "--out",
       "build/smoke/bench", "--docs", "build/smoke/bench", env=notebook_env())
    py("-m", "tools.gpu_budget", "build/smoke")
    runner("--smoke", "t4", "--retrain", "--emulate", "cuda", "--jobs", "2",
           "--out", "build/smoke-t4/run", env=notebook_env())
    py("-m", "tools.gpu_budget", "build/smoke-t4")
    test_compile()


def test_compile() -> None:
    """Every training step that gpu mode compiles (`fit(..., compile=True)`), compiled on the CPU
    by torch.compile's tracer in quick mode, in the notebooks that compile one: each must be one
    graph traced once (a graph break, or a value that changes each step, would recompile it on a
    GPU at every step)."""
    data()
    classifier()
    test_data()
    shutil.rmtree(ROOT / "build" / "compile-check", ignore_errors=True)
    compiling = [n for n in notebooks() if "compile=True" in (ROOT / n).read_text()]
    runner("--mode", "quick", "--retrain", "--compile-check", "--jobs", "2",
           "--out", "build/compile-check", *compiling, env=notebook_env())


def _extra(requirements: str) -> None:
    """Install an extra requirements file into .venv (once per change of the file)."""
    setup()
    stamp = VENV / f".{requirements}.installed"
    text = (ROOT / requirements).read_text()
    if stamp.is_file() and stamp.read_text() == text:
        return
    if py("-m", "uv", "pip", "install", "-q", "--python", VPY, "-r", requirements, check=False):
        py("-m", "pip", "install", "-q", "-r", requirements)
    stamp.write_text(text)


def test_ui() -> None:
    """Headless Chromium (Debian's chromium and chromium-driver): a student's day in JupyterLab,
    every page of the site."""
    _extra("requirements-site.txt")
    data()
    classifier()
    test_data()
    py("-m", "pytest", "-m", "ui", "tests/test_lab_ui.py", "tests/test_site.py")


def grade_check() -> None:
    """nbgrader's round trip (tools/grade.py), in an environment of its own: the pinned
    requirements, nbgrader and the course package."""
    setup()
    venv = ROOT / "build" / "grade" / "venv"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    stamp = venv / ".installed"
    wanted = (ROOT / "requirements.txt").read_text() + (ROOT / "requirements-grade.txt").read_text()
    if not (stamp.is_file() and stamp.read_text() == wanted):
        py("-m", "uv", "venv", "-q", "--python", sys.executable, venv)
        py("-m", "uv", "pip", "install", "-q", "--python", python, "-r", "requirements.txt",
           "-r", "requirements-grade.txt", "-e", ".")
        stamp.write_text(wanted)
    data()
    trained = TEST_DATA / "checkpoints"  # make test's models, where it ran before
    run(python, "-m", "tools.grade", *(["--models", trained] if trained.is_dir() else []))


def check() -> None:
    """What CI runs but the hosted installs, nbgrader's round trip and the citation's check."""
    test()
    test_devices()
    test_ui()
    py("-m", "pytest", "-m", "slow", "tests")
    test_compile()


def run_notebooks(out: str = "build/run") -> None:
    """Execute every notebook in this machine's default mode into build/run/ (trained models are
    reused)."""
    data()
    runner("--out", out, "--timeout", "3600")


def site() -> None:
    _extra("requirements-site.txt")
    run_notebooks()
    py("-m", "tools.site", "build/run", "build/site")


# What the benchmark cannot run without: the notebooks' imports and a kernel to run them in.
BENCH_NEEDS = ("torch", "torchvision", "matplotlib", "tqdm", "ipywidgets", "nbformat", "nbclient",
               "ipykernel")


def _bench_python() -> Path:
    """.venv with the pinned requirements and the benchmark's extra; where it cannot be built (a
    GPU machine that cannot reach the package index), the Python this runs on, with the torch it
    has, if it holds what the notebooks need."""
    try:
        _extra("requirements-bench.txt")
        return VPY
    except SystemExit as err:
        failure = str(err)
    missing = [name for name in BENCH_NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(f"{failure}\nbench: .venv could not be built, and this Python "
                         f"({sys.executable}) lacks {', '.join(missing)}: install those, or run "
                         "where the package index can be reached.")
    print(f"bench: .venv could not be built ({failure}); running with this Python's own packages "
          f"({sys.executable}), not the pinned ones")
    return Path(sys.executable)


def bench(mode: str = "cpu", names=None) -> None:
    python = _bench_python()
    run(python, "-m", "tools.fetch_data", "fetch", "mnist")
    run(python, "-m", "tools.instrument")
    run(python, "-m", "tools.bench", "--mode", mode, "--notebooks", *(names or notebooks()))


def clean() -> None:
    """Remove build outputs and caches (keeps data/, student/ and .venv)."""
    for name in ("build", ".pytest_cache", ".ruff_cache"):
        shutil.rmtree(ROOT / name, ignore_errors=True)
    for cache in ROOT.rglob("__pycache__"):
        if VENV not in cache.parents:
            shutil.rmtree(cache, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.course", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    add = lambda name, text: sub.add_parser(name, help=text, description=text)
    add("setup", "build .venv with the pinned requirements and the course package").add_argument(
        "--cpu", action="store_true", help="PyTorch's CPU-only build where its index is reachable")
    p = add("data", "fetch the datasets into data/ (--mirror DIR copies from a local mirror)")
    p.add_argument("names", nargs="*", default=["mnist"], help="mnist (default), fashion, cifar10")
    p.add_argument("--mirror")
    add("student", "write student copies to student/ (changed copies are kept)").add_argument(
        "--force", action="store_true", help="replace changed copies, after a backup")
    add("lab", "set up, write the student copies, fetch the data, open JupyterLab")
    add("test", "lint, unit tests, every notebook in quick mode (nbval) on the CPU").add_argument(
        "--mirror", help="seed the data from this local mirror first")
    add("check", "make test, the emulated devices, the browser test, the slow tests and "
        "test-compile")
    add("test-devices", "every notebook (quick) on an emulated CUDA GPU, then Apple MPS")
    add("test-gpu-smoke", "gpu-mode sizes, quick counts, on the emulated CUDA GPU (and a T4); "
        "then test-compile")
    add("test-compile", "every training step that gpu mode compiles, traced on the CPU")
    add("test-ui", "headless Chromium: JupyterLab and every page of the site")
    add("run", "execute every notebook in this machine's default mode into build/run/")
    add("site", "the course as a static site in build/site/")
    add("classifier", "check the shipped reference classifier (a maintainer retrains it: "
        "`python -m tools.instrument --retrain`)")
    add("lint", "ruff on helpers, tools, tests, notebooks and the template")
    p = add("bench", "run every notebook in a mode and write the tables")
    p.add_argument("--mode", default="cpu", choices=["quick", "cpu", "gpu"])
    p.add_argument("--notebooks", nargs="*")
    add("badges", "rewrite every badge and install line from pyproject.toml's Repository")
    add("binder", "what binder/postBuild does, in this Python (no .venv)").add_argument(
        "--mirror", help="copy MNIST from this local mirror")
    p = add("hub-link", "an nbgitpuller link that opens the course on a JupyterHub")
    p.add_argument("--hub", required=True, help="the hub's address, e.g. https://hub.example.edu")
    p.add_argument("--notebook", default="", help="open this notebook, e.g. 01_distributions.ipynb")
    add("grade-check", "nbgrader round trip: release, compare with the student copies, autograde")
    add("clean", "remove build outputs and caches (keeps data/, student/ and .venv)")
    args = parser.parse_args(argv)
    target = args.target
    if target == "setup":
        setup(args.cpu)
    elif target == "data":
        data(args.names, args.mirror)
    elif target == "hub-link":
        print(hub_link(args.hub, args.notebook))
    elif target == "binder":
        binder(args.mirror)
    elif target == "student":
        student(args.force)
    elif target == "test":
        test(args.mirror)
    elif target == "bench":
        bench(args.mode, args.notebooks)
    elif target == "run":
        run_notebooks()
    elif target == "badges":
        setup()
        py("-m", "tools.badges")
    else:
        globals()[target.replace("-", "_")]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
