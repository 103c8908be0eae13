"""The evaluation kit: FID on the reference classifier's features (helpers.classifier) with its
real-data floor, the inception score, label statistics, NLL units, and `record`, which stores a
notebook's final figures, with the instrument that measured them, for the benchmark. Every metric
runs on the CPU, whatever device the samples come from. 05_gan explains FID and the inception
score.
"""

import json
import math
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import torch

from . import data, runtime
from .classifier import (
    CPU,
    Classifier,
    instrument,
    measured_by,
    on_cpu,
    predict,
    reference_classifier,
)

__all__ = ["Floor", "bits_per_dim", "family", "features", "fid", "fid_floor", "frechet_distance",
           "inception_score", "instrument", "label_stats", "predict", "record",
           "reference_classifier", "results_dir"]


def _check_images(images: torch.Tensor) -> tuple[torch.Tensor, Classifier]:
    """Validated images in [0, 1], copied to the CPU in float32, and the reference classifier."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected MNIST-shaped images (N, 1, 28, 28), got {tuple(images.shape)}")
    images = images.detach().to(CPU, torch.float32)
    if not torch.isfinite(images).all():
        raise ValueError("the images contain NaN or inf values")
    return images.clamp(0, 1), on_cpu()


@torch.no_grad()
def features(images: torch.Tensor) -> torch.Tensor:
    """The classifier's 128-d features, float64 on the CPU (what FID compares)."""
    images, model = _check_images(images)
    return torch.cat([model.features(b) for b in images.split(2000)]).double()


def frechet_distance(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two feature sets (Heusel et al.)."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = torch.cov(f1.T), torch.cov(f2.T)
    w, v = torch.linalg.eigh(s1)
    root1 = v @ torch.diag(w.clamp(min=0).sqrt()) @ v.T
    # Tr (S1 S2)^(1/2) = sum of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2)
    tr_sqrt = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * tr_sqrt)


def fid(samples: torch.Tensor) -> float:
    """FID of samples against as many real MNIST test images, on the classifier's features."""
    real, _ = data.load("mnist", "test", device=CPU, n=len(samples))
    if len(real) < len(samples):
        raise ValueError(f"FID uses at most {len(real)} samples, got {len(samples)}")
    return frechet_distance(features(samples), features(real))


class Floor(NamedTuple):
    """FID of real images against the test images: its mean and standard deviation over `pairs`
    disjoint sets of real training images."""
    mean: float
    sd: float
    pairs: int

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.sd:.2f}"


@lru_cache(maxsize=8)
def fid_floor(n: int, pairs: int = 5) -> Floor:
    """What a perfect generator would get with n samples (FID is biased upwards for small n, so
    compare against this floor): FID of n real training images against the n test images that
    `fid` uses, for up to `pairs` disjoint sets of training images. One set alone can be off by
    a factor of two, so targets use the mean and figures show the band."""
    train_x, _ = data.load("mnist", "train", device=CPU)
    pairs = min(pairs, len(train_x) // n)
    if pairs < 2:
        raise ValueError(f"the floor needs two disjoint sets of {n} training images; use n <= "
                         f"{len(train_x) // 2}")
    test = features(data.load("mnist", "test", device=CPU, n=n)[0])  # what fid() compares with
    values = torch.tensor([frechet_distance(features(chunk), test)
                           for chunk in train_x[: pairs * n].split(n)])
    return Floor(float(values.mean()), float(values.std()), pairs)


def inception_score(samples: torch.Tensor) -> float:
    """exp E_x KL(p(y|x) || p(y)): 10 for confident, evenly spread digits, 1 for one class."""
    images, model = _check_images(samples)
    p_yx = predict(model, images).double()
    p_y = p_yx.mean(0, keepdim=True)
    kl = (p_yx * (p_yx.clamp_min(1e-12).log() - p_y.clamp_min(1e-12).log())).sum(1)
    return float(kl.mean().exp())


def label_stats(samples: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
    """Predicted-label statistics: digits covered (>= 1% of samples each), entropy of the label
    histogram in nats (log 10 = 2.303 is perfectly even) and, given labels, label accuracy."""
    images, model = _check_images(samples)
    pred = predict(model, images).argmax(1)
    share = torch.bincount(pred, minlength=10).double() / len(pred)
    stats = {"classes_covered": int((share >= 0.01).sum()),
             "label_entropy": float(-(share * share.clamp_min(1e-12).log()).sum())}
    if labels is not None:
        stats["label_accuracy"] = float((pred == labels.cpu()).double().mean())
    return stats


def bits_per_dim(nll_nats: float, num_dims: int = 784) -> float:
    """Convert an NLL per image in nats to bits per dimension: nats / (D ln 2)."""
    return nll_nats / (num_dims * math.log(2))


def family(name: str, samples: torch.Tensor, seconds: float, nll_nats: float | None = None,
           nll_is_bound: bool = False) -> dict:
    """One model's entry in the benchmark's comparison of the families: FID against real test
    images with its floor, the inception score, the sampling time per image (`seconds` for all the
    samples) and, where the family has one, the test NLL in nats (`nll_is_bound`: an upper bound,
    like the -ELBO). `samples`: (N, 784) or (N, 1, 28, 28) in [0, 1]; 16 of them, evenly spaced
    (so that samples drawn prompt by prompt show every prompt), are kept in "grid" (uint8) for
    the benchmark's picture of every family's samples."""
    images = samples.detach().reshape(-1, 1, 28, 28)
    score, floor = fid(images), fid_floor(len(images))
    spread = torch.linspace(0, len(images) - 1, min(16, len(images))).long()  # across prompts
    return {"name": name, "n": len(images), "fid": score, "floor": floor.mean, "floor_sd": floor.sd,
            "fid_over_floor": score / floor.mean, "inception_score": inception_score(images),
            "ms_per_image": 1e3 * seconds / len(images), "nll_nats": nll_nats,
            "nll_is_bound": nll_is_bound,
            "grid": (images[spread].float().clamp(0, 1) * 255).round().to(CPU, torch.uint8)}


def results_dir() -> Path:
    """Where `record` writes: $DGM_RESULTS (the benchmark and the test suite set it), else
    <repo>/build/results."""
    return data.from_repo(os.environ.get("DGM_RESULTS") or "build/results")


def record(rt: runtime.Runtime, notebook: str, metrics: dict, targets: dict | None = None,
           families: list[dict] = ()) -> None:
    """Store the notebook's final figures in <results_dir()>/<notebook>-<mode>.json with the
    instrument that measured them and the throughput of what it trained (`rt.training`), and print
    them (returning nothing, so that the cell shows the table once).

    `targets` maps a metric to a (op, value) pair, e.g. {"nll_nats": ("<=", 100)}. `families`:
    entries made by `family`, whose sample grids go to <notebook>-<mode>-samples.pt.
    """
    ops = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    targets = targets or {}
    result = {
        "notebook": notebook, "mode": rt.label, "device": str(rt.device),
        "device_name": runtime.device_name(rt.device), "precision": rt.precision,
        "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "wall_time_s": round(rt.elapsed(), 1), **measured_by(), "training": rt.training,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "targets": {k: {"op": op, "value": v, "met": bool(ops[op](float(metrics[k]), v))}
                    for k, (op, v) in targets.items()},
        "families": [{k: v for k, v in f.items() if k != "grid"} for f in families],
    }
    out = results_dir() / f"{notebook}-{rt.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    if families:
        torch.save({f["name"]: f["grid"] for f in families},
                   out.with_name(f"{notebook}-{rt.label}-samples.pt"))
    print(f"{notebook} · mode {rt.label} · {result['wall_time_s']} s so far")
    for k, v in result["metrics"].items():
        t = result["targets"].get(k)
        goal = f"  (target {t['op']} {t['value']}: {'met' if t['met'] else 'NOT met'})" if t else ""
        print(f"  {k:<28} {v:10.4g}{goal}")
