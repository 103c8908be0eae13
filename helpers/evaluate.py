"""The evaluation kit: FID on the reference classifier's features (helpers.classifier) against
all 10,000 test images, with its real-data floor at the same sample count, the inception score
beside real images' at that count (binarised real images for a model of binarised digits),
label statistics, NLL units, and `report`, which prints a notebook's final figures against its
targets and returns them as the notebook's `results`. Every metric runs on the CPU, whatever
device the samples come from. 05_gan explains FID and the inception score.
"""

import math
from functools import lru_cache
from typing import NamedTuple

import torch

from . import checkpoints, data
from .classifier import (
    CPU,
    Classifier,
    on_cpu,
    predict,
    reference_classifier,
    weights_hash,
)

__all__ = ["Band", "bits_per_dim", "family", "features", "fid", "fid_floor", "frechet_distance",
           "gaussian", "inception_score", "label_stats", "predict", "real_inception_score",
           "reference", "reference_classifier", "report"]


def _check_images(images: torch.Tensor) -> tuple[torch.Tensor, Classifier]:
    """Validated images in [0, 1], copied to the CPU in float32, and the reference classifier.
    Rounding past the ends (up to 0.01) is clipped; images in another range are refused, since
    a classifier fed [-1, 1] images would measure something else without a word."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected MNIST-shaped images (N, 1, 28, 28), got {tuple(images.shape)}")
    images = images.detach().to(CPU, torch.float32)
    if not torch.isfinite(images).all():
        raise ValueError("the images contain NaN or inf values")
    low, high = images.min().item(), images.max().item()
    if low < -0.01 or high > 1.01:
        raise ValueError(f"the images should lie in [0, 1], but they range from {low:.3g} to "
                         f"{high:.3g}: map tanh outputs in [-1, 1] with (x + 1) / 2, and "
                         "logits through a sigmoid")
    return images.clamp(0, 1), on_cpu()


@torch.no_grad()
def features(images: torch.Tensor) -> torch.Tensor:
    """The classifier's 128-d features, float64 on the CPU (what FID compares)."""
    images, model = _check_images(images)
    return torch.cat([model.features(b) for b in images.split(2000)]).double()


def gaussian(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of features (N, D): the Gaussian that FID fits to them."""
    return f.mean(0), torch.cov(f.T)


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians (Heusel et al.),
    computed in float64."""
    mu1, s1, mu2, s2 = (t.double() for t in (mu1, s1, mu2, s2))
    w, v = torch.linalg.eigh(s1)
    root1 = v @ torch.diag(w.clamp(min=0).sqrt()) @ v.T
    # Tr (S1 S2)^(1/2) = sum of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2)
    tr_sqrt = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * tr_sqrt)


def _cached(name: str, compute) -> dict:
    """`compute()` (a dict of tensors), kept in the checkpoint folder as `name`, a file per
    instrument: the first notebook to need it computes it, the others load it."""
    filename = f"yardstick-{weights_hash(on_cpu())}-{name}.pt"
    found = checkpoints.find(filename)
    if found is not None:
        return checkpoints.load(found)
    value = compute()
    checkpoints.store(filename, value)
    return value


@lru_cache(maxsize=1)
def reference() -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of the features of all 10,000 MNIST test images: what every FID is
    measured against, whatever the sample count (the test set's two halves differ: FID 22
    between them, so a reference made of the first n test images moves with n)."""
    def compute():
        mu, cov = gaussian(features(data.load("mnist", "test", device=CPU)[0]))
        return {"mu": mu, "cov": cov}
    ref = _cached("test-reference", compute)
    return ref["mu"], ref["cov"]


def fid(samples: torch.Tensor) -> float:
    """FID of samples against all the MNIST test images, on the classifier's features. FID is
    biased upwards for few samples: compare it with `fid_floor(len(samples))`."""
    if len(samples) < 2:
        raise ValueError(f"FID needs at least 2 samples, got {len(samples)}")
    return frechet_distance(*gaussian(features(samples)), *reference())


class Band(NamedTuple):
    """A real-data figure at a sample count: its mean and standard deviation over `sets`
    disjoint sets of real training images."""
    mean: float
    sd: float
    sets: int

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.sd:.2f}"


def _real_sets(n: int, binary: bool = False, most: int = 5) -> torch.Tensor:
    """Up to `most` disjoint sets of n real training images, (sets, n, 1, 28, 28); `binary`:
    binarised as the models of binarised MNIST see them (data.binarize, a fixed seed)."""
    train_x, _ = data.load("mnist", "train", device=CPU)
    sets = min(most, len(train_x) // n)
    if sets < 2:
        raise ValueError(f"a real-data band needs two disjoint sets of {n} training images; use "
                         f"n <= {len(train_x) // 2}")
    images = train_x[: sets * n]
    if binary:
        images = data.binarize(images, torch.Generator().manual_seed(0))
    return images.view(sets, n, 1, 28, 28)


def _band(values: torch.Tensor) -> Band:
    return Band(float(values.mean()), float(values.std()), len(values))


@lru_cache(maxsize=16)
def fid_floor(n: int, binary: bool = False) -> Band:
    """What a perfect generator would get with n samples: the FID of n real training images
    against the test reference, over up to 5 disjoint sets (one set alone can be off by half its
    value, so targets use the mean and figures show the band). `binary`: a perfect model of
    binarised MNIST, whose samples are binarised digits (their floor is higher: the reference
    is the grey test images). Cached per instrument."""
    def compute():
        return {"values": torch.tensor([fid(s) for s in _real_sets(n, binary)],
                                       dtype=torch.float64)}
    return _band(_cached(f"fid-floor-{'binary-' * binary}{n}", compute)["values"])


@lru_cache(maxsize=16)
def real_inception_score(n: int, binary: bool = False) -> Band:
    """The inception score of n real training images (`binary`: binarised), over up to 5
    disjoint sets: what a perfect generator scores at that count (real digits score about 9.4 to
    9.7, more with more images, not 10). Cached."""
    def compute():
        return {"values": torch.tensor([inception_score(s) for s in _real_sets(n, binary)],
                                       dtype=torch.float64)}
    return _band(_cached(f"real-is-{'binary-' * binary}{n}", compute)["values"])


def inception_score(samples: torch.Tensor) -> float:
    """exp E_x KL(p(y|x) || p(y)): 10 for confident, evenly spread digits, 1 for one class."""
    images, model = _check_images(samples)
    p_yx = predict(model, images).double()
    p_y = p_yx.mean(0, keepdim=True)
    kl = (p_yx * (p_yx.clamp_min(1e-12).log() - p_y.clamp_min(1e-12).log())).sum(1)
    return float(kl.mean().exp())


def label_stats(samples: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
    """Predicted-label statistics: each digit's share of the samples ("shares", ten floats),
    digits covered (>= 1% of samples each), the share of the most common digit (0.1 when even, 1
    when collapsed), entropy of the label histogram in nats (log 10 = 2.303 is perfectly even)
    and, given labels, label accuracy."""
    images, model = _check_images(samples)
    pred = predict(model, images).argmax(1)
    share = torch.bincount(pred, minlength=10).double() / len(pred)
    stats = {"classes_covered": int((share >= 0.01).sum()), "largest_share": float(share.max()),
             "label_entropy": float(-(share * share.clamp_min(1e-12).log()).sum()),
             "shares": share.tolist()}
    if labels is not None:
        stats["label_accuracy"] = float((pred == labels.cpu()).double().mean())
    return stats


def bits_per_dim(nll_nats: float, num_dims: int = 784) -> float:
    """Convert an NLL per image in nats to bits per dimension: nats / (D ln 2)."""
    return nll_nats / (num_dims * math.log(2))


def family(name: str, samples: torch.Tensor, seconds: float, nll_nats: float | None = None,
           nll_is_bound: bool = False) -> dict:
    """One model's entry in the benchmark's comparison of the families: FID against the test
    reference with its floor, the inception score beside real images' at the same count, the
    sampling time per image (`seconds` for all the
    samples) and, where the family has one, the test NLL in nats (`nll_is_bound`: an upper bound,
    like the -ELBO). `samples`: (N, 784) or (N, 1, 28, 28) in [0, 1]; samples that are all 0 or 1
    (a model of binarised MNIST) are compared with binarised real images ("binary"). 16 of them,
    evenly spaced (so that samples drawn prompt by prompt show every prompt), are kept in "grid"
    (uint8) for the benchmark's picture of every family's samples."""
    images = samples.detach().reshape(-1, 1, 28, 28)
    binary = bool(((images == 0) | (images == 1)).all())
    score, n = fid(images), len(images)
    floor, real = fid_floor(n, binary), real_inception_score(n, binary)
    inception = inception_score(images)
    spread = torch.linspace(0, len(images) - 1, min(16, len(images))).long()  # across prompts
    return {"name": name, "n": len(images), "fid": score, "floor": floor.mean, "floor_sd": floor.sd,
            "fid_over_floor": score / floor.mean, "inception_score": inception,
            "real_inception_score": real.mean, "is_over_real": inception / real.mean,
            "ms_per_image": 1e3 * seconds / len(images), "nll_nats": nll_nats,
            "nll_is_bound": nll_is_bound, "binary": binary,
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
        print(f"  {'model':<24}{'n':>6}{'FID':>8}{'floor':>8}{'IS':>7}{'real':>7}{'ms/image':>10}"
              f"{'NLL':>8}")
    for f in families:
        nll = f"{f['nll_nats']:8.2f}" if f["nll_nats"] is not None else f"{'-':>8}"
        print(f"  {f['name']:<24}{f['n']:6d}{f['fid']:8.2f}{f['floor']:8.2f}"
              f"{f['inception_score']:7.2f}{f['real_inception_score']:7.2f}"
              f"{f['ms_per_image']:10.2f}{nll}")
    if any(f.get("binary") for f in families):
        print("  (a model of binarised digits: its floor and real IS are binarised real digits')")
    return {"mode": rt.mode, "metrics": metrics, "targets": checked, "families": list(families)}
