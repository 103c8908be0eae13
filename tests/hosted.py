"""The course opened the hosted way (Colab, Kaggle, a bare Jupyter with torch), run by CI:

    python tests/hosted.py newest       # every notebook, newest torch + torchvision, ipywidgets 7
    python tests/hosted.py oldest       # the oldest supported set, on a subset of the notebooks
    python tests/hosted.py binder       # binder/postBuild in a fresh clone, as repo2docker runs it
    python tests/hosted.py class        # a class hub: shared pre-trained models, a student loads
                                        # (one notebook: 07)

It builds a fresh virtual environment with only what such a host has (torch, torchvision,
ipywidgets, a Jupyter kernel, nbval), copies the notebooks to a folder outside the repository (as
a host has only the notebook), and runs each one in quick mode under nbval with a fresh home
folder. Each notebook's own first cell must install the course from its address: the address is
pyproject.toml's Repository, which git is told to read as this repository (`url.insteadOf`), so
nothing here depends on the published address. The course is uninstalled before each notebook, so
every first cell installs it. Afterwards the host's torch, torchvision, numpy, ipywidgets and
ipykernel must be exactly the versions it had before.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools.course import repository  # noqa: E402

HOST = ["torch", "torchvision", "numpy", "ipywidgets", "ipykernel"]  # must stay as they are
ENDS = {  # what the host has; the kernel and nbval are the test's own
    "newest": (["torch", "torchvision", "ipywidgets<8"], None),
    "oldest": (["torch==2.4.1", "torchvision==0.19.1", "numpy<2", "matplotlib==3.7.*",
                "ipywidgets==8.0.*", "tqdm==4.62.*"],
               ["01_distributions.ipynb", "03_mle_kl.ipynb", "06_diffusion.ipynb"]),
}
TOOLS = ["ipykernel", "nbval", "pytest"]


def sh(*cmd, **kwargs) -> subprocess.CompletedProcess:
    print("hosted:", " ".join(map(str, cmd)), flush=True)
    return subprocess.run([str(c) for c in cmd], **{"check": True, **kwargs})


def versions(python: Path) -> dict:
    code = ("import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
            f"{HOST!r}}}))")
    return json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                                     check=True).stdout)


def binder(base: Path, mirror: Path) -> None:
    """binder/postBuild in a fresh clone, with a fresh environment of the pinned packages (the
    CPU-only index of binder/requirements.txt is not reachable from CI; the pins are the same, a
    unit test says so) on PATH: it must leave the student copies, the data, the widget setting and
    the required git filter in place."""
    clone, venv = base / "clone", base / "venv"
    sh("git", "clone", "-q", ROOT, clone)
    sh(ROOT / ".venv" / "bin" / "python", "-m", "uv", "venv", "-q", "--seed", "--python",
       sys._base_executable, venv)
    sh(ROOT / ".venv" / "bin" / "python", "-m", "uv", "pip", "install", "-q", "--python",
       venv / "bin" / "python", "-r", clone / "requirements.txt")
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "DGM_MIRROR": str(mirror)}
    sh(clone / "binder" / "postBuild", cwd=clone, env=env)
    copies = sorted(p.name for p in (clone / "student").glob("*.ipynb"))
    assert copies == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")), copies
    assert not subprocess.run([venv / "bin" / "python", "-m", "tools.fetch_data", "fetch", "mnist"],
                              cwd=clone, capture_output=True, text=True).returncode
    settings = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert json.loads(settings.read_text())["@jupyter-widgets/jupyterlab-manager:plugin"]
    required = subprocess.run(["git", "config", "filter.strip-notebooks.required"], cwd=clone,
                              capture_output=True, text=True).stdout.strip()
    assert required == "true", "the notebook filter must be required"
    print(f"hosted: binder/postBuild left {len(copies)} student copies, MNIST, the widget "
          "setting and the required git filter")


STUDENT = 65534  # nobody: a student's account, which cannot write the shared folder


CLASS = ["07_text_to_image.ipynb"]  # three models and FID's reference


def class_flow(base: Path) -> None:
    """The class hub of docs/teaching.md: the instructor runs the notebooks (quick) into a shared
    models folder; a student who cannot write it runs them again and every model that the
    instructor's run saved loads from it, none is trained, nothing is written there. The Python
    is the system's (readable by every account), with the pinned packages. One notebook
    (`CLASS`): every model saves and loads through the same `train_or_load`, and CI's time on a
    slow machine is better spent elsewhere."""
    venv, shared, home = base / "venv", base / "shared-models", base / "home"
    base.mkdir(parents=True)
    sh(ROOT / ".venv" / "bin" / "python", "-m", "uv", "venv", "-q", "--python", "/usr/bin/python3",
       venv)
    sh(ROOT / ".venv" / "bin" / "python", "-m", "uv", "pip", "install", "-q", "--python",
       venv / "bin" / "python", "-r", ROOT / "requirements.txt", "-e", ROOT)
    home.mkdir()
    os.chown(home, STUDENT, STUDENT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGM_")}
    env.update(DGM_QUICK="1", DGM_DATA=str(ROOT / "data"), OMP_NUM_THREADS="2")

    def execute(who: str, extra: dict, drop: list) -> list[str]:
        out = base / who
        out.mkdir()
        os.chown(out, STUDENT, STUDENT)
        texts = []
        for name in CLASS:
            sh(*drop, venv / "bin" / "python", "-m", "jupyter", "nbconvert", "--to", "notebook",
               "--execute", "--ExecutePreprocessor.timeout=900", "--output-dir", out,
               ROOT / "notebooks" / name, env={**env, **extra}, capture_output=True)
            nb = json.loads((out / name).read_text())
            texts += ["".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])]
        return "".join(texts).splitlines()

    execute("instructor", {"DGM_CHECKPOINTS": str(shared)}, [])
    models = lambda: sorted(p.name for p in shared.glob("*.pt") if "yardstick-" not in p.name)
    saved, yardstick = models(), sorted(shared.glob("yardstick-*.pt"))  # FID's reference, floors
    assert saved and yardstick, "the instructor's run saved no model or no FID reference"
    printed = execute("student", {"HOME": str(home), "DGM_CHECKPOINTS":
                                  f"{home / 'dgm-models'}{os.pathsep}{shared}"},
                      ["setpriv", f"--reuid={STUDENT}", f"--regid={STUDENT}", "--clear-groups"])
    loaded = [line for line in printed if line.startswith("loaded ") and shared.name in line]
    assert len(loaded) == len(saved), f"{len(loaded)} of {len(saved)} models loaded: {printed}"
    assert not list((home / "dgm-models").glob("*.pt")), "the student trained or measured again"
    assert models() == saved and sorted(shared.glob("yardstick-*.pt")) == yardstick
    print(f"hosted: the student (uid {STUDENT}) loaded all {len(saved)} models from the shared "
          "folder and trained none")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("end", choices=sorted([*ENDS, "binder", "class"]))
    parser.add_argument("--mirror", type=Path, default=ROOT / "data",
                        help="where the notebooks' first cell copies MNIST from (DGM_MIRROR)")
    args = parser.parse_args(argv)
    base = ROOT / "build" / "hosted" / args.end
    shutil.rmtree(base, ignore_errors=True)
    if args.end == "binder":
        binder(base, args.mirror)
        return 0
    if args.end == "class":
        class_flow(base)
        return 0
    packages, subset = ENDS[args.end]
    work, home = base / "work", base / "home"
    work.mkdir(parents=True)
    home.mkdir()
    uv = [ROOT / ".venv" / "bin" / "python", "-m", "uv"]
    sh(*uv, "venv", "-q", "--seed", "--python", sys._base_executable, base / "venv")
    python = base / "venv" / "bin" / "python"
    sh(*uv, "pip", "install", "-q", "--python", python, *packages, *TOOLS)
    before = versions(python)
    print(f"hosted: the host has {before}")

    names = subset or sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    for name in names:
        shutil.copy(ROOT / "notebooks" / name, work / name)
    (work / "pytest.ini").write_text("[pytest]\n")  # not the repository's settings
    gitconfig = base / "gitconfig"
    gitconfig.write_text(f'[url "{ROOT.as_uri()}"]\n\tinsteadOf = {repository()}\n'
                         f'[safe]\n\tdirectory = *\n')
    env = {**os.environ, "HOME": str(home), "GIT_CONFIG_GLOBAL": str(gitconfig),
           "DGM_QUICK": "1", "DGM_MIRROR": str(args.mirror), "OMP_NUM_THREADS": "2",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for key in [k for k in env if k.startswith(("DGM_", "PIP_")) and k not in (
            "DGM_QUICK", "DGM_MIRROR", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_CERT")]:
        del env[key]  # the host knows none of the repository's settings, nor this machine's pip's
    env["PIP_CONFIG_FILE"] = os.devnull  # pip as a host has it: the package index, no constraints
    for name in names:
        sh(python, "-m", "pip", "uninstall", "-q", "-y", "dgm-course", check=False,
           capture_output=True)
        sh(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
           "--nbval-current-env", "--nbval-cell-timeout=900", name, cwd=work, env=env)
    after = versions(python)
    assert after == before, f"the course changed the host's packages: {before} -> {after}"
    installed = subprocess.run([python, "-m", "pip", "show", "dgm-course"], capture_output=True,
                               text=True, check=True).stdout
    assert "Name: dgm-course" in installed
    print(f"hosted: {len(names)} notebooks passed on {after}; the host's packages are unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
