"""The benchmark behind `make bench MODE=...`: run every notebook headless in one mode through
tools.runner, collect what each one's harness saved (the notebook's `results`: metrics against the
targets the notebook states, families; and the training throughput the harness measured),
measure the machine's matmul rate, train the peer baseline (tools.peer) for as long as its
counterpart (06's U-Net) trained, time the data path, and write build/bench/<mode>.json and two
pictures (tools.bench_figures). The report is written whole to docs/results-<mode>.md, with the
pictures beside it for the cpu and gpu modes.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from helpers import data, places, runtime
from tools import bench_figures, peer, runner


def bench_device(mode: str) -> torch.device:
    """The device a mode's notebooks run on: the CPU in quick and cpu mode, else the best one."""
    return torch.device("cpu") if mode in ("quick", "cpu") else runtime.pick_device()


def machine(device: torch.device) -> dict:
    gpu = runtime.device_name(device) if device.type != "cpu" else None
    return {"platform": platform.platform(terse=True), "processor": platform.machine(),
            "cpu_cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "torchvision": metadata.version("torchvision"), "python": platform.python_version(),
            "precision": runtime.precision(device)}


def matmul_peak(device: torch.device, dtype: torch.dtype | None = None) -> dict:
    """GFLOP/s of a large square matmul, mean of 5 after 2 warm-ups, in `dtype`; by default in
    float32 on a CPU (the yardstick cpu budgets are stated in: "<= 5 min at >= 140 GFLOP/s"),
    and on a GPU in the precision its notebooks train in (bf16 where it has it): its peak."""
    if dtype is None:
        dtype = torch.float32 if device.type == "cpu" else runtime.autocast_dtype(device)
    dtype = dtype or torch.float32
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
    """A fixed MLP autoencoder (about the size of 04_vae_elbo's cpu-mode VAE) used only to time
    the two data paths."""

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


def data_path_comparison(mode: str, device: torch.device) -> dict:
    """The same model, the same steps: tensors-on-device batching vs Dataset + DataLoader."""
    steps, batch_size = {"quick": 30, "cpu": 300, "gpu": 1000}[mode], 128
    x, _ = data.load("mnist", "train", device=device)
    on_device = _images_per_s(data.batches(x, batch_size=batch_size), steps, batch_size, device)
    import torchvision  # only here: its import takes seconds

    dataset = torchvision.datasets.MNIST(str(data.data_root()), train=True,
                                         transform=torchvision.transforms.ToTensor())
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                         num_workers=2, pin_memory=device.type != "cpu",
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
    peak = report.get("peak") or {}
    trains = f"; training in {m['precision']}" if m.get("precision") else ""
    rate = f" ({peak['n']}² {peak['dtype']} matmul at {peak['gflop_per_s']:,.0f} GFLOP/s{trains})" \
        if peak else ""
    vision = f", torchvision {m['torchvision']}" if m.get("torchvision") else ""
    lines = [f"Mode **{report['mode']}** on {where}{rate}, Python {m['python']}, torch "
             f"{m['torch']}{vision}, {report['date']}.",
             "",
             "| notebook | status | wall time | matmul GFLOP/s | figures (target: met / missed) |",
             "|---|---|---|---|---|"]
    if any(_run(r) != _run(report) for r in report["notebooks"]):
        lines.insert(1, "\nRows whose notebook was not run this time come from an earlier run "
                        "(`date` in the JSON report), their throughput against that run's peak.")
    for r in report["notebooks"]:
        figures = []
        for name, value in r["metrics"].items():
            t = r["targets"].get(name)
            goal = f" ({t['op']} {t['value']}: {'met' if t['met'] else 'MISSED'})" if t else ""
            figures.append(f"{name} {value + 0.0:.4g}{goal}")  # + 0.0: no "-0"
        rate = r.get("matmul_gflop_per_s")
        lines.append(f"| {r['notebook']} | {r['status'][:60]} | {r['wall_time_s']:.0f} s | "
                     f"{f'{rate:,.0f}' if rate else '-'} | {'; '.join(figures)} |")
    d = report.get("data_path")
    if d:
        lines += ["", f"Data path ({d['model']}, {d['steps']} steps of {d['batch_size']} on "
                  f"{d['device']}): tensors on the device {d['tensors_on_device_images_per_s']:,} "
                  f"images/s, Dataset + DataLoader (2 workers) {d['dataloader_images_per_s']:,} "
                  f"images/s: **{d['speedup']}x**."]
    return "\n".join(lines + throughput_lines(report) + peer_lines(report)) + "\n"


def _run(entry: dict) -> str:
    """Which run measured a report or a row: its start, or (older reports) its date."""
    return entry.get("run") or entry.get("date", "")


def _training_peak(report: dict) -> dict | None:
    return report.get("train_peak") or report.get("peak")  # a CPU training in bf16: its bf16 rate


def throughput_lines(report: dict) -> list[str]:
    """Training images/s and achieved GFLOP/s of every model trained, against the matmul peak of
    the run that trained it (a row kept from an earlier run keeps its own)."""
    peak = _training_peak(report)
    rows = [(r["notebook"], name, t, r.get("peak") or peak) for r in report["notebooks"]
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
    uncounted = []
    for notebook, name, t, row_peak in rows:
        share = t["gflop_per_s"] / row_peak["gflop_per_s"]
        share = f"{share:.0%}" if share >= 0.1 else f"{100 * share:.2g}%"
        flops = f"{t['gflop_per_image']:.3g} | {t['gflop_per_s']:,.1f} | {share}"
        if not t["gflop_per_image"]:
            flops, uncounted = "— | — | —", uncounted + [name]
        lines.append(f"| {notebook} | {name} | {t['steps']:,} | {t['seconds']:.0f} | "
                     f"{t['images_per_s']:,.0f} | {flops} |")
    if uncounted:
        lines += ["", f"—: the step of {', '.join(uncounted)} has no matmul or convolution (only "
                  "elementwise work, such as NADE's running activation), and FlopCounterMode "
                  "counts only those."]
    return lines


def peer_baseline(done: list[dict], device, previous: dict, run: bool) -> dict | None:
    """The peer baseline measured now (`run`, with its counterpart among this run's notebooks),
    else the last one measured: a partial run, or one with --no-peer, keeps it as it keeps the
    rows of the notebooks it did not run. A peer that fails (its package against this machine's
    torch, say) is reported and leaves the notebooks' results as they are."""
    measured = None
    if run:
        try:
            measured = peer.compare(done, device)
        except Exception as err:  # noqa: BLE001 (the peer is not the course)
            print(f"bench: the peer baseline failed ({type(err).__name__}: {err}); the last one "
                  "measured is kept", file=sys.stderr)
    return measured or previous.get("peer")


def peer_lines(report: dict) -> list[str]:
    """The peer baseline's figures and the two pictures."""
    lines, p = [], report.get("peer")
    if p:
        r = p["ratio"]
        lines += ["", f"Peer baseline: Hugging Face diffusers' `UNet2DModel` ({p['parameters']:,} "
                  f"parameters) + `DDPMScheduler`, trained {p['train_seconds']:.0f} s on this "
                  f"machine (as long as 06's U-Net trained), sampled with `DDIMScheduler` at 50 "
                  f"steps "
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
    """Draw the two pictures into `out`; for the cpu and gpu modes copy them into `docs` too
    (beside the report). Returns their file names as the report links them."""
    mode, m = report["mode"], report["machine"]
    families, grids = bench_figures.collect(out / mode / "results")
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
    return {kind: f"bench-{mode}-{kind}.png" for kind in drawn}


def document(report: dict) -> str:
    """docs/results-<mode>.md, whole."""
    mode = report["mode"]
    return (f"# Benchmark: {mode} mode\n\n_Written whole by `make bench MODE={mode}`; do not edit "
            f"by hand._\n\n{markdown(report)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run every notebook in one mode and report.")
    parser.add_argument("--mode", choices=["quick", "cpu", "gpu"], required=True)
    parser.add_argument("--notebooks", nargs="*", type=runner.notebook,
                        default=runner.notebooks())
    parser.add_argument("--out", type=Path, default=places.REPO / "build" / "bench")
    parser.add_argument("--docs", type=Path, default=places.REPO / "docs",
                        help="where results-<mode>.md and the pictures go")
    parser.add_argument("--jobs", type=int, help="notebooks run at once (default: one at a time "
                        "on the CPU; in gpu mode all of them, sharing the one GPU)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--deadline", type=float, help="seconds for the whole run (a machine "
                        "lent for minutes): notebooks still running then stop in their current "
                        "cell, and the report, its page and pictures are still written")
    parser.add_argument("--no-peer", action="store_true",
                        help="do not run the peer baseline (the last one measured is kept)")
    parser.add_argument("--smoke", action="store_true", help="gpu mode's sizes with quick mode's "
                        "counts on the emulated CUDA GPU (make test-gpu-smoke): the gpu "
                        "benchmark's whole path, notebooks side by side, without a GPU")
    args = parser.parse_args(argv)
    deadline = time.time() + args.deadline if args.deadline else None
    device = bench_device(args.mode)
    args.jobs = args.jobs or (len(args.notebooks) if args.mode == "gpu" else 1)
    if args.mode == "gpu" and device.type == "cpu" and not args.smoke:
        print("bench: MODE=gpu needs a GPU; use MODE=cpu or MODE=quick here.", file=sys.stderr)
        return 2
    report_path = args.out / f"{args.mode}.json"
    today = datetime.date.today().isoformat()
    report = {"mode": args.mode, "date": today, "machine": machine(device),
              "run": datetime.datetime.now().isoformat(timespec="seconds"),
              "peak": matmul_peak(device)}  # this machine's rate now, before the notebooks run
    if device.type == "cpu" and runtime.autocast_dtype(device):  # AMX: training runs in bf16
        report["train_peak"] = matmul_peak(device, runtime.autocast_dtype(device))
    if args.smoke:
        report["machine"]["gpu"] = "emulated CUDA GPU (smoke run: quick counts)"
        report["machine"]["precision"] = "bf16 autocast"  # the emulated card's (capability 9.0)
    print("bench: " + " · ".join(f"{k} {v}" for k, v in report["machine"].items()), flush=True)
    previous = json.loads(report_path.read_text()) if report_path.exists() else {}
    done = []

    def save(row=None):  # after every notebook: a run stopped half-way keeps what it measured
        if row is not None:
            done.append({**row, "date": today, "run": report["run"],
                         "peak": _training_peak(report)})
        report["notebooks"] = merge(report_path, done)
        report["total_wall_time_s"] = round(sum(r["wall_time_s"] for r in report["notebooks"]), 1)
        args.out.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2))
        (args.out / f"{args.mode}.md").write_text(document(report))  # readable so far

    env = runner.settings(args.mode, retrain=True, jobs=args.jobs,  # times include training
                          emulate="cuda" if args.smoke else None, smoke=args.smoke)
    if args.jobs == 1:  # each kernel measures the matmul rate as it ends: a machine of one kind
        env["DGM_HARNESS_RATE"] = "1"  # can run at half the rate of another, or of itself later
    runner.execute_all(args.notebooks, args.out / args.mode, env, args.jobs, args.timeout, save,
                       deadline)
    late = deadline is not None and time.time() >= deadline  # only what is left: the report
    if not late:
        report["data_path"] = data_path_comparison("quick" if args.smoke else args.mode, device)
    report["peer"] = peer_baseline(done, device, previous, run=not (args.no_peer or late))
    if report["peer"] and "grid" in report["peer"]:  # measured now: its samples, for the picture
        (args.out / args.mode).mkdir(parents=True, exist_ok=True)
        torch.save(report["peer"].pop("grid"), args.out / args.mode / "peer-samples.pt")
    report["figures"] = figures(report, args.out, args.docs)
    save()
    text = document(report)
    (args.out / f"{args.mode}.md").write_text(text)
    print(text)
    args.docs.mkdir(parents=True, exist_ok=True)
    (args.docs / f"results-{args.mode}.md").write_text(text)
    print(f"bench: wrote {args.docs / f'results-{args.mode}.md'}")
    return 0 if all(r["status"] == "ok" for r in done) else 1


if __name__ == "__main__":
    sys.exit(main())
