"""The benchmark behind `make bench MODE=...`: run every notebook headless in one mode, collect the
figures each recorded with `evaluate.record` (metrics, training throughput, families), measure the
machine's matmul peak, train the peer baseline (tools.peer) for as long as 06's U-Net trained, time
the data path, and write build/bench/<mode>.json, a Markdown report and two pictures
(tools.bench_figures); the report also goes into the README between its bench markers, and the
pictures of the cpu and gpu modes into docs/.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import torch
import torch.nn.functional as F
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from torch import nn

from helpers import data, places, runtime
from tools import bench_figures, peer

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
            "metrics": recorded.get("metrics", {}), "targets": recorded.get("targets", {}),
            "training": recorded.get("training", {}), "families": recorded.get("families", [])}


def matmul_peak(device: torch.device) -> dict:
    """The machine's practical limit: GFLOP/s of a large square matmul in the precision the
    notebooks train in (bf16 where the GPU has it, else float32), mean of 5 after 2 warm-ups."""
    dtype = runtime.autocast_dtype(device) or torch.float32
    n = 2048 if device.type == "cpu" else 8192
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    runtime.synchronize(device)
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    runtime.synchronize(device)
    rate = 5 * 2 * n**3 / (time.perf_counter() - start) / 1e9
    return {"gflop_per_s": round(rate, 1), "dtype": str(dtype).removeprefix("torch."), "n": n,
            "threads": torch.get_num_threads()}


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
    return "\n".join(lines + throughput_lines(report) + peer_lines(report)) + "\n"


def throughput_lines(report: dict) -> list[str]:
    """Training images/s and achieved GFLOP/s of every model trained, against the matmul peak."""
    peak = report.get("peak")
    rows = [(r["notebook"], name, t) for r in report["notebooks"]
            for name, t in r.get("training", {}).items() if t]
    if not peak or not rows:
        return []
    threads = "" if report["machine"]["gpu"] else f" ({peak['threads']} threads)"
    lines = ["", f"Training throughput against this machine's peak, a {peak['n']}² {peak['dtype']} "
             f"matmul at **{peak['gflop_per_s']:,.0f} GFLOP/s**{threads}; "
             "FLOPs of the forward and backward passes counted by PyTorch's FlopCounterMode:", "",
             "| notebook | model | steps | seconds | images/s | GFLOP per image | GFLOP/s "
             "| of peak |",
             "|---|---|---|---|---|---|---|---|"]
    for notebook, name, t in rows:
        share = t["gflop_per_s"] / peak["gflop_per_s"]
        share = f"{share:.0%}" if share >= 0.1 else f"{100 * share:.2g}%"
        lines.append(f"| {notebook} | {name} | {t['steps']:,} | {t['seconds']:.0f} | "
                     f"{t['images_per_s']:,.0f} | {t['gflop_per_image']:.3g} | "
                     f"{t['gflop_per_s']:,.1f} | {share} |")
    return lines


def peer_lines(report: dict) -> list[str]:
    """The peer baseline's figures and the two pictures."""
    lines, p = [], report.get("peer")
    if p:
        r = p["ratio"]
        lines += ["", f"Peer baseline: Hugging Face diffusers' `UNet2DModel` ({p['parameters']:,} "
                  f"parameters) + `DDPMScheduler`, trained {p['train_seconds']:.0f} s on this "
                  f"machine (06's U-Net trained as long), sampled with `DDIMScheduler` at 50 steps "
                  f"({p['n']} images), scored with the same kit (`tools/peer.py`):", "",
                  "| | course (06, DDIM 50) | diffusers | ratio course / diffusers |",
                  "|---|---|---|---|",
                  f"| inception score | {p['ours']['inception_score']:.2f} | "
                  f"{p['inception_score']:.2f} | **{r['inception_score']:.2f}** |",
                  f"| training images/s | {p['ours']['train_images_per_s']:,.0f} | "
                  f"{p['train_images_per_s']:,.0f} | **{r['train_images_per_s']:.2f}** |",
                  f"| FID / floor (lower is better) | {p['ours']['fid_over_floor']:.2f} | "
                  f"{p['fid_over_floor']:.2f} | {r['fid_over_floor']:.2f} |"]
    for kind, alt in (("families", "every family: quality against sampling time, and NLL"),
                      ("samples", "16 samples of every family")):
        if report.get("figures", {}).get(kind):
            lines += ["", f"![{alt}]({report['figures'][kind]})"]
    return lines


def figures(report: dict, out: Path, docs: Path) -> dict:
    """Draw the two pictures into `out`; for the cpu and gpu modes copy them into `docs` too (the
    README shows them). Returns their paths as the README links them."""
    mode, m = report["mode"], report["machine"]
    families, grids = bench_figures.collect(out / mode / "results", mode)
    peer_grid = out / mode / "peer-samples.pt"
    if report.get("peer"):
        families.append(report["peer"])
        if peer_grid.exists():
            grids[report["peer"]["name"]] = torch.load(peer_grid, weights_only=True)
    if not families:
        return {}
    where = m["gpu"] or f"{m['cpu_cores']}-core {m['processor']} CPU"
    title = f"make bench MODE={mode} · {where} · {report['date']}"
    drawn = {"families": bench_figures.draw_families(families, title,
                                                      out / f"{mode}-families.png"),
             "samples": bench_figures.draw_samples(grids, title, out / f"{mode}-samples.png")}
    if mode == "quick":
        return {}
    docs.mkdir(exist_ok=True)
    for kind, path in drawn.items():
        shutil.copy(path, docs / f"bench-{mode}-{kind}.png")
    return {kind: f"docs/bench-{mode}-{kind}.png" for kind in drawn}


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
                        default=sorted((places.REPO / "notebooks").glob("*.ipynb")))
    parser.add_argument("--out", type=Path, default=places.REPO / "build" / "bench")
    parser.add_argument("--readme", type=Path, default=places.REPO / "README.md")
    parser.add_argument("--timeout", type=int, default=900,
                        help="seconds per cell")
    parser.add_argument("--no-peer", action="store_true", help="skip the peer baseline")
    args = parser.parse_args(argv)
    if args.mode == "gpu" and not torch.cuda.is_available():
        print("bench: MODE=gpu needs a CUDA GPU; use MODE=cpu or MODE=quick here.", file=sys.stderr)
        return 2
    report_path = args.out / f"{args.mode}.json"
    today = datetime.date.today().isoformat()
    report, done = {"mode": args.mode, "date": today, "machine": machine()}, []
    previous = json.loads(report_path.read_text()) if report_path.exists() else {}

    def save():  # after every notebook: a run stopped half-way keeps what it measured
        report["notebooks"] = merge(report_path, done)
        report["total_wall_time_s"] = round(sum(r["wall_time_s"] for r in report["notebooks"]), 1)
        args.out.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2))

    for path in args.notebooks:
        print(f"bench: {path.name} in {args.mode} mode ...", flush=True)
        done.append({**run_notebook(path, args.mode, args.out / args.mode, args.timeout),
                     "date": today})
        print(f"bench: {path.name}: {done[-1]['status']}, {done[-1]['wall_time_s']} s")
        save()
    device = runtime.pick_device() if args.mode != "cpu" else torch.device("cpu")
    report["data_path"] = data_path_comparison(args.mode)
    report["peak"] = matmul_peak(device)
    report["peer"] = None if args.no_peer else peer.compare(done, device)
    if report["peer"]:  # its samples, for the picture of every family's samples
        (args.out / args.mode).mkdir(parents=True, exist_ok=True)
        torch.save(report["peer"].pop("grid"), args.out / args.mode / "peer-samples.pt")
    elif not args.no_peer:  # 06 not run this time: keep the last peer baseline
        report["peer"] = previous.get("peer")
    report["figures"] = figures(report, args.out, args.readme.parent / "docs")
    save()
    table = markdown(report)
    (args.out / f"{args.mode}.md").write_text(table)
    print(table)
    if args.readme.exists() and update_readme(args.readme, args.mode, table):
        print(f"bench: updated the {args.mode} table in {args.readme.name}")
    return 0 if all(r["status"] == "ok" for r in done) else 1


if __name__ == "__main__":
    sys.exit(main())
