"""The one way the course executes notebooks outside the test suite's nbval: `make run`, the site,
the benchmark, the emulated-device runs and the gpu-smoke run all call `execute_all`.

    python -m tools.runner --out DIR [--mode quick|cpu|gpu] [--jobs N] [--retrain]
                           [--emulate cuda|mps] [--smoke] [NOTEBOOK ...]

Each notebook runs top to bottom in a fresh kernel (its start counts in its time) whose IPython
start-up file attaches the harness (tools/kernel_hooks.py); after its last cell the harness saves
the notebook's `results` with what it measured to DIR/results/<notebook>.json. The executed copy
goes to DIR/<notebook>.ipynb, outputs included. A notebook that fails, or a kernel that dies or
hangs past the cell timeout, fails that notebook only; the exit status says whether all passed.
"""

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from queue import Empty

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
MODES = {  # the kernels' settings per mode (helpers.config); None: this machine's default
    None: {},
    "quick": {"DGM_QUICK": "1"},
    "cpu": {"DGM_QUICK": "0", "DGM_MODE": "cpu", "DGM_DEVICE": "cpu"},
    "gpu": {"DGM_QUICK": "0", "DGM_MODE": "gpu"},  # CUDA, else Apple MPS
}
SMOKE_CARDS = {  # the emulated card of a smoke run, the mode it runs, where its report goes
    "h100": {"env": {"DGM_FAKE_CAPABILITY": "9.0", "DGM_MODE": "gpu"}, "report": "smoke"},
    # a T4 (Colab's free GPU): no native bf16, so by default the cpu mode's recipes
    "t4": {"env": {"DGM_FAKE_CAPABILITY": "7.5"}, "report": "smoke-t4"},
}
STARTUP = """import sys
sys.path.insert(0, {root!r})
from tools import kernel_hooks
kernel_hooks.install()
"""
SAVE = "from tools import kernel_hooks; kernel_hooks.save()"


def notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def notebook(name: str) -> Path:
    """A notebook named on the command line: its path, or the start of its name in notebooks/
    ("05", "05_gan"). An argparse type: a name that fits none, or more than one, stops the run
    before anything is measured, with the names that would do."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_file():
        return path
    found = [p for p in notebooks() if p.stem.startswith(path.stem)] if path.stem else []
    if len(found) != 1:
        raise argparse.ArgumentTypeError(
            f"{name!r} names {'no' if not found else 'more than one'} notebook; give a path or "
            f"the start of a name: {', '.join(p.stem for p in notebooks())}")
    return found[0]


def saved(out: Path, notebook: str) -> Path:
    """Where the harness saves a notebook's results in a run's output folder (its sample grids
    beside it, <notebook>-samples.pt): the one place this name is spelled."""
    return Path(out) / "results" / f"{notebook}.json"


def _ipython_dir() -> Path:
    """An IPython profile whose start-up file attaches the harness (the user's own is untouched)."""
    folder = ROOT / "build" / "ipython"
    startup = folder / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-harness.py").write_text(STARTUP.format(root=str(ROOT)))
    return folder


def sliced(get_msg, step: float = 1.0):
    """A kernel channel's `get_msg` that waits at most `step` seconds at a time, until its own
    timeout. A single long wait on a kernel's socket can miss the arrival of the message it waits
    for and find it only when the wait times out: once in CI, after 06's cell with a slider, the
    next cell started 890 s late, at the cell's timeout (a known fault with widgets: nbclient
    issue #312). In slices, such a message is read within a `step`."""
    async def get(timeout: float | None = None):
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = step if end is None else min(step, max(0.0, end - time.monotonic()))
            try:
                return await get_msg(timeout=left)
            except Empty:
                if end is not None and time.monotonic() >= end:
                    raise
    return get


class Client(NotebookClient):
    """nbclient's client with its kernel's replies and outputs read in slices (`sliced`)."""

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.shell_channel, kc.iopub_channel):
            channel.get_msg = sliced(channel.get_msg)
        return kc


def execute(path: Path, out: Path, env: dict, timeout: int = 900,
            deadline: float | None = None) -> dict:
    """Run one notebook in a fresh kernel with `env` added to the environment; return its status,
    wall time and what its harness saved ({} where it failed before the end). `deadline` (a
    `time.time()`) stops it in the cell it is running then; its executed cells are kept."""
    path, out = Path(path).resolve(), Path(out).resolve()
    results = saved(out, path.stem)
    results.unlink(missing_ok=True)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(SAVE))
    client = Client(nb, timeout=timeout, kernel_name="python3",
                    resources={"metadata": {"path": str(path.parent)}})
    if deadline is not None:  # each cell may run until the run's deadline, at most `timeout`
        client.timeout_func = lambda cell: max(1, min(timeout, deadline - time.time()))
    kernel_env = {**os.environ, **env, "IPYTHONDIR": str(_ipython_dir()),
                  "DGM_HARNESS_NOTEBOOK": path.stem, "DGM_HARNESS_RESULTS": str(results)}
    start = time.perf_counter()
    try:
        _execute(client, nb, kernel_env)
        status = "ok"
    except CellExecutionError as err:
        status = f"failed: {err.ename}: {str(err.evalue)[:300]}"
        print(f"runner: {path.name} failed:\n{str(err)[-3000:]}", file=sys.stderr)
    except Exception as err:  # a dead or stuck kernel (nbclient's timeout)
        reason = (str(err).splitlines() or [""])[0][:300]
        status = f"failed: {type(err).__name__}: {reason}"
        if deadline is not None and time.time() >= deadline - 1:
            code = [c for c in nb.cells[:-1] if c.cell_type == "code"]
            reached = sum(1 for c in code if c.get("execution_count"))
            status = f"stopped at the run's deadline in code cell {reached} of {len(code)}"
    wall = time.perf_counter() - start
    nb.cells.pop()  # the harness's cell is not part of the notebook
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / path.name)
    recorded = json.loads(results.read_text()) if results.exists() else {}
    return {"metrics": {}, "targets": {}, "training": {}, "families": [], **recorded,
            "notebook": path.stem, "status": status, "wall_time_s": round(wall, 1)}


def _execute(client: Client, nb, env: dict, attempts: int = 3) -> None:
    """Execute, starting the kernel again where it failed before its first cell ran: kernels
    started side by side by separate processes can pick the same free port ("Address already in
    use"), whatever words the kernel client then uses for it."""
    for attempt in range(1, attempts + 1):
        try:
            client.execute(env=env)
            return
        except RuntimeError as err:
            started = any(c.get("execution_count") for c in nb.cells if c.cell_type == "code")
            if started or attempt == attempts:
                raise  # a cell ran (never run a notebook twice), or no tries left
            print(f"runner: the kernel died on start ({err}); starting it again", file=sys.stderr)


def settings(mode: str | None = None, retrain: bool = False, emulate: str | None = None,
             smoke: bool | str = False, jobs: int = 1, compile_check: bool = False) -> dict:
    """The kernels' environment for a run: the mode's settings, DGM_RETRAIN, the emulated device,
    the smoke run (`SMOKE_CARDS`: True or "h100", or "t4"; its mode's sizes with quick counts,
    measured into build/smoke or build/smoke-t4), an equal share of the cores (at least one
    thread, for OpenMP and for compiling) per kernel when `jobs` kernels share them;
    `compile_check`: every compiled training step traced on the CPU (tools/kernel_hooks.py,
    check_compiled_steps)."""
    env = dict(MODES[mode])
    if retrain:
        env["DGM_RETRAIN"] = "1"
    if compile_check:
        env["DGM_COMPILE_CHECK"] = "1"
    if emulate:
        env["DGM_EMULATE"] = emulate
    if smoke:
        card = SMOKE_CARDS[smoke if isinstance(smoke, str) else "h100"]
        env.pop("DGM_DEVICE", None)
        env.pop("DGM_MODE", None)
        env.update(card["env"], DGM_QUICK="0", DGM_SMOKE="1",
                   DGM_EMULATE_REPORT=str(ROOT / "build" / card["report"]))
    if jobs > 1:  # also torch.compile's worker processes (a pool per kernel otherwise)
        share = str(max(1, (os.cpu_count() or 1) // jobs))
        env["OMP_NUM_THREADS"] = env["TORCHINDUCTOR_COMPILE_THREADS"] = share
    return env


def execute_all(paths, out: Path, env: dict, jobs: int = 1, timeout: int = 900,
                after=None, deadline: float | None = None) -> list[dict]:
    """Run the notebooks, `jobs` at a time (each in its own process and kernel), started in order
    of the list; `after(row)` is called as each finishes, in the order they finish (the benchmark
    saves its report there, so a run cut short keeps every notebook that had ended). At
    `deadline` (a `time.time()`) the notebooks still running stop (`execute`). The rows come back
    in the order of the list."""
    rows = {}
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(execute, p, out, env, timeout, deadline): p for p in paths}
        for future in as_completed(futures):
            row = rows[futures[future]] = future.result()
            print(f"runner: {Path(futures[future]).name}: {row['status']}, "
                  f"{row['wall_time_s']} s", flush=True)
            if after:
                after(row)
    return [rows[p] for p in paths]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=notebook, default=notebooks())
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", choices=["quick", "cpu", "gpu"])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--emulate", choices=["cuda", "mps"])
    parser.add_argument("--smoke", nargs="?", const="h100", choices=sorted(SMOKE_CARDS),
                        help="the emulated card's mode and sizes with quick counts, measured "
                        "for tools/gpu_budget.py (default h100: gpu mode; t4: its default, cpu)")
    parser.add_argument("--compile-check", action="store_true",
                        help="trace every step that gpu mode compiles, on the CPU")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    env = settings(args.mode, args.retrain, args.emulate, args.smoke, args.jobs,
                   args.compile_check)
    rows = execute_all(args.notebooks or notebooks(), args.out, env, args.jobs, args.timeout)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
