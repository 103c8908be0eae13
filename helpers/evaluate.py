"""The evaluation kit: FID on the reference classifier's features (helpers.classifier) with its
real-data floor, the inception score, label statistics, NLL units, and `report`, which prints a
notebook's final figures against its targets and returns them as the notebook's `results`. Every
metric runs on the CPU, whatever device the samples come from. 05_gan explains FID and the
inception score.
"""

import math
from functools import lru_cache
from typing import NamedTuple

import torch

from . import data
from .classifier import (
    CPU,
    Classifier,
    on_cpu,
    predict,
    reference_classifier,
)

__all__ = ["Floor", "bits_per_dim", "family", "features", "fid", "fid_floor", "frechet_distance",
           "inception_score", "label_stats", "predict", "reference_classifier",
           "report"]


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
    """Predicted-label statistics: digits covered (>= 1% of samples each), the share of the most
    common digit (0.1 when even, 1 when collapsed), entropy of the label histogram in nats
    (log 10 = 2.303 is perfectly even) and, given labels, label accuracy."""
    images, model = _check_images(samples)
    pred = predict(model, images).argmax(1)
    share = torch.bincount(pred, minlength=10).double() / len(pred)
    stats = {"classes_covered": int((share >= 0.01).sum()), "largest_share": float(share.max()),
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


def report(rt, metrics: dict, targets: dict | None = None, families: list[dict] = ()) -> dict:
    """Print this run's figures, each against its target for the current mode, and the models'
    FID, floor, inception score and sampling time; return them as a dict (the notebook keeps it
    as `results`, its figures in one place).

    `targets` maps a metric to (op, value), e.g. {"nll_nats": ("<=", 100)}: the notebook is the one
    place its targets are stated. `families`: entries made by `family`.
    """
    ops = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    metrics = {k: float(v) for k, v in metrics.items()}
    unknown = set(targets or {}) - set(metrics)
    if unknown:
        raise ValueError(f"targets for figures that are not reported: {sorted(unknown)}")
    checked = {k: {"op": op, "value": v, "met": bool(ops[op](metrics[k], v))}
               for k, (op, v) in (targets or {}).items()}
    print(f"mode {rt.mode} · {rt.elapsed():.0f} s so far")
    for k, v in metrics.items():
        t = checked.get(k)
        goal = f"  (target {t['op']} {t['value']}: {'met' if t['met'] else 'NOT met'})" if t else ""
        print(f"  {k:<28} {v:10.4g}{goal}")
    if families:
        print(f"  {'model':<24}{'FID':>8}{'floor':>8}{'IS':>7}{'ms/image':>10}{'NLL':>8}")
    for f in families:
        nll = f"{f['nll_nats']:8.2f}" if f["nll_nats"] is not None else f"{'-':>8}"
        print(f"  {f['name']:<24}{f['fid']:8.2f}{f['floor']:8.2f}{f['inception_score']:7.2f}"
              f"{f['ms_per_image']:10.2f}{nll}")
    return {"mode": rt.mode, "metrics": metrics, "targets": checked, "families": list(families)}
