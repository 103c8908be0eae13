"""The benchmark behind `make bench MODE=...`: run every notebook headless in one mode, collect the
figures each recorded with `evaluate.record`, time the data path, and write build/bench/<mode>.json
and a Markdown table (also put into the README between its bench markers).
"""

import argparse
import datetime
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import nbformat
import torch
import torch.nn.functional as F
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from torch import nn

from helpers import data, datafiles, runtime

ENV = {  # the kernels' environment per mode; DGM_RETRAIN=1: the times include the training
    "quick": {"DGM_QUICK": "1", "DGM_RETRAIN": "1"},
    "cpu": {"DGM_QUICK": "0", "DGM_DEVICE": "cpu", "DGM_RETRAIN": "1"},
    "gpu": {"DGM_QUICK": "0", "DGM_MODE": "gpu", "DGM_RETRAIN": "1"},  # CUDA, else Apple MPS
}


def machine() -> dict:
    device = runtime.pick_device()
    gpu = runtime.device_name(device) if device.type != "cpu" else None
    return {"platform": platform.platform(terse=True), "processor": platform.machine(),
            "cpu_cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version()}


def run_notebook(path: Path, mode: str, out_dir: Path, timeout: int) -> dict:
    """Execute one notebook in `mode` in a fresh kernel (its start included in the time) and save
    the executed copy in `out_dir`, where its kernel also records its figures (DGM_RESULTS);
    return its wall time, status and those figures."""
    result_file = out_dir / "results" / f"{path.stem}-{mode}.json"
    result_file.unlink(missing_ok=True)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    env = {**os.environ, **ENV[mode], "DGM_RESULTS": str(out_dir / "results")}
    start = time.perf_counter()
    try:
        client.execute(env=env)
        status = "ok"
    except CellExecutionError as err:
        status = f"failed: {err.ename}: {str(err.evalue)[:160]}"
    except Exception as err:  # a dead or stuck kernel (nbclient's timeout) fails this notebook only
        reason = (str(err).splitlines() or [""])[0][:160]
        status = f"failed: {type(err).__name__}: {reason}"
    wall = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    recorded = json.loads(result_file.read_text()) if result_file.exists() else {}
    return {"notebook": path.stem, "status": status, "wall_time_s": round(wall, 1),
            "metrics": recorded.get("metrics", {}), "targets": recorded.get("targets", {})}


class _SmallAutoencoder(nn.Module):
    """A fixed MLP autoencoder (the size of 04_vae_elbo's VAE) used only to time the two data
    paths."""

    def __init__(self, latent_dim=32, hidden=512):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),
                                 nn.Linear(hidden, latent_dim))
        self.dec = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, 784))

    def loss(self, x):
        logits = self.dec(self.enc(x))
        return F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="sum") / len(x)


def _images_per_s(batches, steps: int, batch_size: int, device) -> float:
    torch.manual_seed(0)
    model = _SmallAutoencoder().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i, x in enumerate(batches):
        if i == 5:  # warm-up steps are not timed
            start = time.perf_counter()
        loss = model.loss(torch.bernoulli(x.to(device, non_blocking=True)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i == steps + 4:
            break
    runtime.synchronize(device)
    return steps * batch_size / (time.perf_counter() - start)


def data_path_comparison(mode: str) -> dict:
    """The same model, the same steps: tensors-on-device batching vs Dataset + DataLoader."""
    device = torch.device("cuda" if mode == "gpu" else "cpu")
    steps, batch_size = {"quick": 30, "cpu": 300, "gpu": 1000}[mode], 128
    x, _ = data.load("mnist", "train", device=device)
    on_device = _images_per_s(data.batches(x, batch_size=batch_size), steps, batch_size, device)
    import torchvision  # only here: its import takes seconds

    dataset = torchvision.datasets.MNIST(str(data.data_root()), train=True,
                                         transform=torchvision.transforms.ToTensor())
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                         num_workers=2, pin_memory=device.type == "cuda",
                                         persistent_workers=True)
    loader_batches = (images for _ in range(100) for images, _ in loader)
    dataloader = _images_per_s(loader_batches, steps, batch_size, device)
    return {"model": "MLP autoencoder (784-512-32)", "steps": steps, "batch_size": batch_size,
            "device": str(device), "tensors_on_device_images_per_s": round(on_device),
            "dataloader_images_per_s": round(dataloader),
            "speedup": round(on_device / dataloader, 2)}


def merge(report_path: Path, results: list[dict]) -> list[dict]:
    """This run's rows, plus the rows of the previous report of the same mode for notebooks not
    run this time (`--notebooks` a subset), in notebook order."""
    rows = {r["notebook"]: r for r in results}
    if report_path.exists():
        for old in json.loads(report_path.read_text()).get("notebooks", []):
            rows.setdefault(old["notebook"], old)
    return [rows[name] for name in sorted(rows)]


def markdown(report: dict) -> str:
    m = report["machine"]
    where = m["gpu"] or f"{m['cpu_cores']}-core {m['processor']} CPU"
    lines = [f"Mode **{report['mode']}** on {where}, torch {m['torch']}, {report['date']}.", "",
             "| notebook | status | wall time | figures (target: met / missed) |",
             "|---|---|---|---|"]
    if any(r.get("date", report["date"]) != report["date"] for r in report["notebooks"]):
        lines.insert(1, "\nRows whose notebook was not run this time come from an earlier run "
                        "(`date` in the JSON report).")
    for r in report["notebooks"]:
        figures = []
        for name, value in r["metrics"].items():
            t = r["targets"].get(name)
            goal = f" ({t['op']} {t['value']}: {'met' if t['met'] else 'MISSED'})" if t else ""
            figures.append(f"{name} {value + 0.0:.4g}{goal}")  # + 0.0: no "-0"
        lines.append(f"| {r['notebook']} | {r['status'][:60]} | {r['wall_time_s']:.0f} s | "
                     f"{'; '.join(figures)} |")
    d = report.get("data_path")
    if d:
        lines += ["", f"Data path ({d['model']}, {d['steps']} steps of {d['batch_size']} on "
                  f"{d['device']}): tensors on the device {d['tensors_on_device_images_per_s']:,} "
                  f"images/s, Dataset + DataLoader (2 workers) {d['dataloader_images_per_s']:,} "
                  f"images/s: **{d['speedup']}x**."]
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, mode: str, table: str) -> bool:
    """Replace the text between <!-- bench:MODE --> and <!-- /bench:MODE --> in the README."""
    text = readme.read_text()
    pattern = re.compile(rf"(<!-- bench:{mode} -->\n).*?(<!-- /bench:{mode} -->)", re.S)
    if not pattern.search(text):
        return False
    readme.write_text(pattern.sub(lambda m: m.group(1) + table + m.group(2), text))
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run every notebook in one mode and report.")
    parser.add_argument("--mode", choices=sorted(ENV), required=True)
    parser.add_argument("--notebooks", nargs="*", type=Path,
                        default=sorted((datafiles.REPO / "notebooks").glob("*.ipynb")))
    parser.add_argument("--out", type=Path, default=datafiles.REPO / "build" / "bench")
    parser.add_argument("--readme", type=Path, default=datafiles.REPO / "README.md")
    parser.add_argument("--timeout", type=int, default=900,
                        help="seconds per cell")
    args = parser.parse_args(argv)
    if args.mode == "gpu" and not torch.cuda.is_available():
        print("bench: MODE=gpu needs a CUDA GPU; use MODE=cpu or MODE=quick here.", file=sys.stderr)
        return 2
    results = []
    for path in args.notebooks:
        print(f"bench: {path.name} in {args.mode} mode ...", flush=True)
        results.append(run_notebook(path, args.mode, args.out / args.mode, args.timeout))
        print(f"bench: {path.name}: {results[-1]['status']}, {results[-1]['wall_time_s']} s")
    for r in results:
        r["date"] = datetime.date.today().isoformat()
    report_path = args.out / f"{args.mode}.json"
    results = merge(report_path, results)
    report = {"mode": args.mode, "date": datetime.date.today().isoformat(), "machine": machine(),
              "notebooks": results, "data_path": data_path_comparison(args.mode),
              "total_wall_time_s": round(sum(r["wall_time_s"] for r in results), 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2))
    table = markdown(report)
    (args.out / f"{args.mode}.md").write_text(table)
    print(table)
    if args.readme.exists() and update_readme(args.readme, args.mode, table):
        print(f"bench: updated the {args.mode} table in {args.readme.name}")
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
