"""Estimated wall time and peak GPU memory of each notebook on a T4 and an H100, from what a smoke
run measured on the emulated CUDA GPU (<folder>/<notebook>.json, written by
tools/kernel_hooks.py): a mode's models and batch sizes, with the quick mode's amounts of work
(`rt.count`). `make test-gpu-smoke` measures gpu mode (build/smoke: estimated for both cards) and
a T4's default, the cpu mode's recipes (build/smoke-t4: estimated for the T4).

    python -m tools.gpu_budget build/smoke      # prints a Markdown table

How the estimate is made:
- The emulator counts every operation on the device (one kernel launch each) and its FLOPs
  (the formulas of torch.utils.flop_counter, for matmuls, convolutions and attention).
- Training is measured per `fit` call and scaled exactly: FLOPs and launches per step times the
  gpu mode's number of steps (each smoke count remembers its gpu value).
- Everything else (sampling, evaluation, 05's own GAN loop) is measured per notebook cell: its
  FLOPs scaled by the largest gpu / quick ratio among the counts that the cell reads (by name, or
  through the notebook's functions it calls), its launches not scaled (the samples of a gpu run
  go through in larger batches, not in more passes). Known errors: a cell whose counts are
  alternatives (06's 5,000 DDPM or DDIM samples) is overestimated, one whose counts multiply
  (07: samples per prompt x sampling steps) underestimated by the smaller ratio, and a cell that
  needs more passes at gpu counts (chunks of 1,000 samples) launches more than counted.
- Time of each part = max(FLOPs / sustained throughput, launches x cost per launch): small models
  on a fast GPU are bound by launching kernels from Python, not by arithmetic. Plus a fixed
  START for the kernel, imports and data, and the evaluation kit, which runs on the CPU.
- Peak memory: the emulator's peak of live device bytes at gpu sizes.
- The CIFAR-10 options are not included (off unless DGM_CIFAR10=1).
"""

import json
import sys
from pathlib import Path

GPUS = {  # sustained rates on these small models, stated as assumptions
    # T4: float32 (no native bf16), half of its 8.1 TFLOP/s peak; Colab's slow host CPU
    # launches ~25 us per op
    "T4": {"flops": 4e12, "launch": 25e-6, "precision": "float32"},
    # H100: bf16 autocast, ~15% of its 990 TFLOP/s peak
    "H100": {"flops": 150e12, "launch": 10e-6, "precision": "bf16"},
}
START = 20.0  # seconds: kernel start, imports, MNIST onto the GPU, the CPU-side metrics

OPTIONAL = ("cifar",)  # fits and cells of the CIFAR-10 option


def _seconds(flops: float, launches: float, gpu: dict) -> float:
    return max(flops / gpu["flops"], launches * gpu["launch"])


def cards(report: dict) -> dict:
    """The GPUs whose time a report tells: gpu mode's, both; any other mode's (cpu, a T4's
    default), the T4's (an H100 runs gpu mode)."""
    return GPUS if report.get("mode", "gpu") == "gpu" else {"T4": GPUS["T4"]}


def estimate(report: dict) -> dict:
    """{'T4': seconds, 'H100': seconds (gpu mode only), 'tflops': ..., 'launches': ...,
    'peak_gb': ...}."""
    parts = []  # (flops, launches) of the mode's full run, part by part
    for fit in report["fits"]:
        if any(word in fit["desc"].lower() for word in OPTIONAL):
            continue
        scale = fit["full_steps"] / fit["steps"]
        parts.append((fit["flops"] * scale, fit["ops"] * scale))
    for cell in report["cells"]:
        if "optional_cifar10" in cell["source"].lower():
            continue
        factor = max(cell.get("counts", {}).values(), default=1)
        parts.append(((cell["flops"] - cell["fit_flops"]) * factor, cell["ops"] - cell["fit_ops"]))
    out = {name: START + sum(_seconds(f, n, gpu) for f, n in parts)
           for name, gpu in cards(report).items()}
    out["tflops"] = sum(f for f, _ in parts) / 1e12
    out["launches"] = sum(n for _, n in parts)
    out["peak_gb"] = report["peak_bytes"] / 2**30
    return out


def main(folder: str) -> None:
    reports = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    if not reports:
        sys.exit(f"gpu_budget: no smoke reports in {folder}; run `make test-gpu-smoke` first")
    names = list(cards(reports[0]))
    print(f"{reports[0].get('mode', 'gpu')} mode's recipes, estimated:\n")
    print("| notebook | peak GPU memory | work | "
          + " | ".join(f"est. {n} ({GPUS[n]['precision']})" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for report in reports:
        e = estimate(report)
        print(f"| {report['notebook']} | {e['peak_gb']:.2f} GB | {e['tflops']:,.0f} TFLOP, "
              f"{e['launches'] / 1e6:.1f} M launches | "
              + " | ".join(f"{e[n] / 60:.1f} min" for n in names) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/smoke")
