"""The two pictures of `make bench`: every generative family of the course compared (sample quality
against sampling time, and the test NLL where the family has one), and a grid of samples, one row
per family at the same size. Both are drawn from what the notebooks recorded with
`evaluate.report(..., families=[evaluate.family(...)])`, plus the peer baseline.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, also without a display
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def collect(results: Path) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """The families the notebooks of a run reported (in notebook order) and their grids."""
    families, grids = [], {}
    for path in sorted(results.glob("*.json")):
        entries = json.loads(path.read_text()).get("families", [])
        families += [{**f, "notebook": path.stem} for f in entries]
        samples = path.with_name(f"{path.stem}-samples.pt")
        if entries and samples.exists():
            grids.update(torch.load(samples, weights_only=True))
    return families, grids


def draw_families(families: list[dict], title: str, out: Path) -> Path:
    """Three panels: FID / real floor and inception score against sampling ms per image (log
    axes), and the test NLL in nats of the families that have one (hatched: an upper bound)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, f in enumerate(families):
        style = dict(color=colours[i % len(colours)], s=40, zorder=3,
                     marker="*" if f.get("peer") else "o")
        for ax, key in zip(axes[:2], ("fid_over_floor", "inception_score"), strict=True):
            ax.scatter(f["ms_per_image"], f[key], **style)
            ax.annotate(f["name"], (f["ms_per_image"], f[key]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
    axes[0].set(xscale="log", yscale="log", xlabel="sampling time per image (ms)",
                ylabel="FID / real-data floor (1 = perfect)", title="sample quality: FID")
    axes[1].set(xscale="log", xlabel="sampling time per image (ms)",
                ylabel="inception score (10 = best)", title="sample quality: inception score")
    with_nll = [f for f in families if f.get("nll_nats") is not None]
    bars = axes[2].barh([f["name"] for f in with_nll], [f["nll_nats"] for f in with_nll],
                        color=[colours[families.index(f) % len(colours)] for f in with_nll])
    for bar, f in zip(bars, with_nll, strict=True):
        bar.set_hatch("//" if f.get("nll_is_bound") else "")
        axes[2].annotate(f"{f['nll_nats']:.1f}", (f["nll_nats"], bar.get_y() + 0.4), fontsize=7,
                         xytext=(3, -3), textcoords="offset points")
    axes[2].invert_yaxis()
    axes[2].set(xlabel="test NLL, nats (hatched: a bound)",
                title="likelihood (where defined)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def draw_samples(grids: dict[str, torch.Tensor], title: str, out: Path) -> Path:
    """One row of up to 16 samples per family, all at 28 x 28."""
    fig, axes = plt.subplots(len(grids), 1, figsize=(8, 0.62 * len(grids) + 0.5), squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], grids.items(), strict=True):
        row = torch.full((28, 16 * 30 - 2), 255, dtype=torch.uint8)  # white between images
        for k, img in enumerate(images[:16]):
            row[:, 30 * k:30 * k + 28] = img.reshape(28, 28)
        ax.imshow(row.numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def _save(fig, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
