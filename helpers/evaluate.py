"""The evaluation kit: a reference MNIST classifier, FID on its features, inception score, label
statistics, NLL units, and `record`, which stores a notebook's final figures for the benchmark.

The classifier is the measuring instrument, so it is the same on every machine and in every run
mode: trained once on the CPU in float32 from a fixed seed (about 40 s on two cores, >= 99% test
accuracy), cached in data/checkpoints/, and every metric runs it on the CPU, whatever device the
samples come from. 01_distributions and 05_gan use it; 05_gan explains FID and the inception score.
"""

import copy
import hashlib
import json
import math
import sys
import time
import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from . import data, runtime, train

CLASSIFIER = dict(channels=(16, 32), hidden=128, epochs=4, batch_size=128, lr=3e-3, seed=0,
                  trained_on="cpu, float32")
CPU = torch.device("cpu")


class Classifier(nn.Module):
    """A small LeNet-style CNN; `features` is its 128-d penultimate layer, used by FID."""

    def __init__(self, channels=(16, 32), hidden=128):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 7, 7)
            nn.Flatten(), nn.Linear(c2 * 49, hidden), nn.ReLU(),          # (B, hidden)
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.head(self.features(x))


def _train_classifier(model) -> dict:
    cfg = CLASSIFIER
    x, y = data.load("mnist", "train", device=CPU)
    steps = cfg["epochs"] * len(x) // cfg["batch_size"]
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps)
    shifts = torch.Generator().manual_seed(cfg["seed"])

    def loss_fn(model, batch):
        xb, yb = batch
        dx, dy = torch.randint(-2, 3, (2,), generator=shifts).tolist()  # shift up to 2 pixels
        return F.cross_entropy(model(torch.roll(xb, (dx, dy), dims=(2, 3))), yb)

    batches = data.batches(x, y, batch_size=cfg["batch_size"], seed=cfg["seed"])
    return train.fit(model, loss_fn, batches, steps, optimizer=opt, scheduler=sched,
                     desc="reference classifier", log_every=50)


@lru_cache(maxsize=1)
def _classifier_on_cpu() -> Classifier:
    """The reference classifier, loaded from the cache or trained once on the CPU in float32."""
    digest = hashlib.sha1(json.dumps(CLASSIFIER, sort_keys=True).encode()).hexdigest()[:10]
    filename = f"evaluate-classifier-{digest}.pt"
    path = train.find(filename)
    with torch.random.fork_rng(devices=[]):  # the notebook's random stream is left untouched
        torch.manual_seed(CLASSIFIER["seed"])  # before the weights are drawn: the same every time
        model = Classifier(CLASSIFIER["channels"], CLASSIFIER["hidden"])
        if path is not None:
            try:
                model.load_state_dict(train.load(path)["model"])
                return model.eval().requires_grad_(False)
            except Exception as err:
                reason = str(err).splitlines()[0][:200]
                warnings.warn(f"could not load the reference classifier ({path}: {reason}); "
                              "training it again", stacklevel=2)
                torch.manual_seed(CLASSIFIER["seed"])  # not from weights half loaded
                model = Classifier(CLASSIFIER["channels"], CLASSIFIER["hidden"])
        print("Training the reference MNIST classifier once on the CPU (cached afterwards)...")
        history = _train_classifier(model)
    model.eval()
    xt, yt = data.load("mnist", "test", device=CPU)
    accuracy = float((predict(model, xt).argmax(1) == yt).float().mean())
    print(f"reference classifier: test accuracy {accuracy:.2%}")
    train.store(filename, {"model": model.state_dict(), "config": CLASSIFIER, "history": history,
                           "metrics": {"test_accuracy": accuracy}})
    return model.requires_grad_(False)


def reference_classifier(device=None) -> Classifier:
    """The reference classifier, as a copy on `device` for a notebook's own use (e.g. reading
    the digit of samples on the GPU); the metrics below always run the CPU original."""
    model = _classifier_on_cpu()
    if device is None or torch.device(device).type == "cpu":
        return model
    return copy.deepcopy(model).to(device)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Class probabilities for images of shape (N, 1, 28, 28) in [0, 1]."""
    return torch.cat([model(b).softmax(1) for b in images.split(batch_size)])


def _check_images(images: torch.Tensor) -> tuple[torch.Tensor, Classifier]:
    """Validated images in [0, 1], copied to the CPU in float32, and the reference classifier."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected MNIST-shaped images (N, 1, 28, 28), got {tuple(images.shape)}")
    images = images.detach().to(CPU, torch.float32)
    if not torch.isfinite(images).all():
        raise ValueError("the images contain NaN or inf values")
    return images.clamp(0, 1), _classifier_on_cpu()


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


@lru_cache(maxsize=8)
def fid_floor(n: int) -> float:
    """FID between n real training and n real test images: what a perfect generator would get
    with n samples (FID is biased upwards for small n, so compare against this floor)."""
    train_x, _ = data.load("mnist", "train", device=CPU, n=n)
    return fid(train_x)


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


def record(notebook: str, metrics: dict, targets: dict | None = None) -> None:
    """Store the notebook's final figures in build/results/<notebook>-<mode>.json and print them
    (returning nothing, so that the cell shows the table once).

    `targets` maps a metric to a (op, value) pair, e.g. {"nll_nats": ("<=", 100)}.
    """
    rt = runtime.current()
    ops = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    targets = targets or {}
    result = {
        "notebook": notebook, "mode": rt.label, "device": str(rt.device),
        "device_name": runtime.device_name(rt.device), "precision": rt.precision,
        "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "wall_time_s": round(runtime.elapsed(), 1),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "targets": {k: {"op": op, "value": v, "met": bool(ops[op](float(metrics[k]), v))}
                    for k, (op, v) in targets.items()},
    }
    out = data.REPO / "build" / "results" / f"{notebook}-{rt.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"{notebook} · mode {rt.label} · {result['wall_time_s']} s so far")
    for k, v in result["metrics"].items():
        t = result["targets"].get(k)
        goal = f"  (target {t['op']} {t['value']}: {'met' if t['met'] else 'NOT met'})" if t else ""
        print(f"  {k:<28} {v:10.4g}{goal}")


if __name__ == "__main__":  # `make classifier`: train and cache it ahead of the notebooks
    model = reference_classifier()
    xt, yt = data.load("mnist", "test")
    accuracy = (predict(model, xt).argmax(1) == yt).float().mean()
    print(f"reference classifier ready: test accuracy {accuracy:.2%}")
    sys.exit(0 if accuracy >= 0.99 else 1)
