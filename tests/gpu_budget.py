"""Estimated gpu-mode wall time and peak GPU memory of each notebook on a T4 and an H100, from what
`make test-gpu-smoke` measured on the emulated CUDA GPU (build/smoke/<notebook>.json): the gpu
mode's models and batch sizes, with the quick mode's counts of steps and samples.

    python tests/gpu_budget.py build/smoke      # prints a Markdown table

How the estimate is made:
- The emulator counts every operation on the device (one kernel launch each) and its FLOPs
  (the formulas of torch.utils.flop_counter, for matmuls, convolutions and attention).
- Training is measured per `fit` call and scaled exactly: FLOPs and launches per step times the
  gpu mode's number of steps (each smoke count remembers its full value).
- Everything else (sampling, evaluation, 05's hand-written GAN loop) is measured per notebook
  cell and scaled by the ratio of the gpu to the quick counts that drive that cell (SCALE below,
  read off the set-up cells; where two counts multiply, so do their ratios): FLOPs by the ratio
  of images processed, launches by the ratio of batched passes.
- Time of each part = max(FLOPs / sustained throughput, launches x cost per launch): small models
  on a fast GPU are bound by launching kernels from Python, not by arithmetic. Plus a fixed
  START for the kernel, imports and data, and the evaluation kit, which runs on the CPU.
- Peak memory: the emulator's peak of live device bytes at gpu sizes. The smoke run holds fewer
  samples than a gpu run (under 30 MB more at gpu counts), so it is close to the gpu peak.
- The CIFAR-10 options are not included (off unless DGM_CIFAR10=1).
"""

import json
import sys
from pathlib import Path

GPUS = {  # sustained rates on these small models, stated as assumptions
    "T4": {"flops": 4e12, "launch": 25e-6},  # float32 (no native bf16): half of 8.1 TFLOP/s peak;
    #                                          Colab's slow host CPU launches ~25 us per op
    "H100": {"flops": 150e12, "launch": 10e-6},  # bf16 autocast: ~15% of the 990 TFLOP/s peak
}
START = 20.0  # seconds: kernel start, imports, MNIST onto the GPU, the CPU-side metrics

# (text found in the cell, FLOP factor, launch factor, why): how much more the gpu run does than
# the smoke run in that cell. FLOPs grow with the images processed; launches with the number of
# batched passes (a batch of 5,000 samples is 5 passes of 1,000, not 625 passes of 8).
SCALE = {
    "01_distributions": [("def sample_markov", 5000 / 400, 1, "n_samples, one batch"),
                         ("N = len(x_train)", 60_000 / 10_000, 1, "n_train, one batch")],
    "02_autoregressive": [
        ("def pixelcnn_logits", 64 / 4, 1, "n_samples, one batch of 784 passes"),
        ("def time_both", sum(n**4 for n in [4, 8, 12, 16, 20, 28]) / sum(n**4 for n in [4, 8, 12]),
         sum(n**2 for n in [4, 8, 12, 16, 20, 28]) / sum(n**2 for n in [4, 8, 12]),
         "timing sizes: n^2 passes over n^2 pixels"),
        ("def nll_loss", 10_000 / 500, 10, "n_test, chunks of 1,000"),
        ("pixelcnn_history = fit_model", 10_000 / 500, 20, "n_test, chunks of 500")],
    "04_vae_elbo": [("iwae_bound(xb", 10_000 * (1 + 10 + 100 + 5000) / (100 * (1 + 10 + 50 + 100)),
                     (10_000 * 5111 // 20_000) / 4, "iwae_images x sum of k; 20,000 z per pass")],
    "05_gan": [("G, history = train_dcgan(x_train", 12_000 / 40, 12_000 / 40, "gan_steps"),
               ("samples = generate(G, n_eval)", 10_000 / 500, 10, "n_eval, chunks of 1,000"),
               ("fid, floor = evaluate.fid", 10_000 / 500, 5, "n_eval, chunks of 2,000")],
    "06_diffusion": [("def draw(noise, steps)",
                      5000 * (1000 + 100 + 50 + 20 + 10) / (8 * 1000 + 64 * (100 + 50 + 20 + 10)),
                      5, "n_full x 1000 + n_eval x 180 steps, chunks of 1,000")],
    "07_text_to_image": [("n_prior = rt.count", 5000 / 200, 1, "n_prior, one batch"),
                         ("prompts = [f\"a {NUMBERS[k]}\"", 50 / 5, 50 / 5, "sample_steps"),
                         ("ATTRIBUTE_PROMPT = {", 50 / 2 * 50 / 5, 50 / 5,
                          "n_per_prompt x sample_steps, one batch per scale"),
                         ("originals = x_test[:6]", 50 / 5, 50 / 5, "sample_steps"),
                         ("n_inpaint = rt.count", 2000 / 16 * 50 / 5, 50 / 5,
                          "n_inpaint x sample_steps, one batch")],
}
OPTIONAL = ("cifar",)  # fits and cells of the CIFAR-10 option


def _seconds(flops: float, launches: float, gpu: dict) -> float:
    return max(flops / gpu["flops"], launches * gpu["launch"])


def estimate(report: dict) -> dict:
    """{'T4': seconds, 'H100': seconds, 'tflops': ..., 'launches': ..., 'peak_gb': ...}."""
    parts = []  # (flops, launches) of the full gpu run, part by part
    for fit in report["fits"]:
        if any(word in fit["desc"].lower() for word in OPTIONAL):
            continue
        scale = fit["full_steps"] / fit["steps"]
        parts.append((fit["flops"] * scale, fit["ops"] * scale))
    rules = SCALE.get(report["notebook"], [])
    for cell in report["cells"]:
        if any(word in cell["source"].lower() for word in ("optional_cifar10",)):
            continue
        flops, launches = next(((f, n) for text, f, n, _ in rules if text in cell["source"]),
                               (1, 1))
        parts.append(((cell["flops"] - cell["fit_flops"]) * flops,
                      (cell["ops"] - cell["fit_ops"]) * launches))
    out = {name: START + sum(_seconds(f, n, gpu) for f, n in parts) for name, gpu in GPUS.items()}
    out["tflops"] = sum(f for f, _ in parts) / 1e12
    out["launches"] = sum(n for _, n in parts)
    out["peak_gb"] = report["peak_bytes"] / 2**30
    return out


def main(folder: str) -> None:
    print("| notebook | peak GPU memory | gpu-mode work | est. T4 (float32) | est. H100 (bf16) |")
    print("|---|---|---|---|---|")
    for path in sorted(Path(folder).glob("*.json")):
        report = json.loads(path.read_text())
        e = estimate(report)
        print(f"| {report['notebook']} | {e['peak_gb']:.2f} GB | {e['tflops']:,.0f} TFLOP, "
              f"{e['launches'] / 1e6:.1f} M launches | {e['T4'] / 60:.1f} min | "
              f"{e['H100'] / 60:.1f} min |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/smoke")
