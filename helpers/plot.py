"""Figures the notebooks share: image grids, training curves, 2-D densities and sample strips.

Every figure is at most MAX_WIDTH inches wide, so that with the course style (course.mplstyle,
90 dpi) it fits JupyterLab's notebook column unshrunk.
"""

import matplotlib.pyplot as plt
import torch

MAX_WIDTH = 10.0  # inches: 900 pixels at the course style's 90 dpi


def within_width(width: float, height: float) -> tuple[float, float]:
    """A figure size no wider than MAX_WIDTH, with the same aspect ratio."""
    scale = min(1.0, MAX_WIDTH / width)
    return width * scale, height * scale


def _to_grid(images: torch.Tensor, nrow: int):
    """(N, C, H, W) in [0, 1] to one RGB image (H', W', 3), rows of `nrow`, with a 1-pixel grey
    frame around each image."""
    x = images.detach().float().cpu().clamp(0, 1).expand(-1, 3, -1, -1)  # grey to 3 channels
    n, _, h, w = x.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    cells = torch.full((rows * cols, 3, h + 1, w + 1), 0.5)  # each image with a right/bottom frame
    cells[:n, :, 1:, 1:] = x
    grid = cells.view(rows, cols, 3, h + 1, w + 1).permute(2, 0, 3, 1, 4).reshape(
        3, rows * (h + 1), cols * (w + 1))
    grid = torch.nn.functional.pad(grid, (0, 1, 0, 1), value=0.5)  # the outer right/bottom frame
    return grid.permute(1, 2, 0).numpy()


def show_images(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None):
    """Show a batch of images (N, C, H, W) with values in [0, 1] as one grid."""
    if images.ndim == 3:
        images = images.unsqueeze(1)  # (N, 1, H, W)
    ax = ax or plt.figure(figsize=within_width(min(nrow, 12) * 0.6 + 0.5,
                                      0.6 * -(-len(images) // nrow) + 0.6)).gca()
    ax.imshow(_to_grid(images, nrow), vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_image_rows(rows: dict[str, torch.Tensor], nrow: int = 10):
    """Several labelled grids side by side, e.g. {"data": x, "independent": s1, "Markov": s2}."""
    fig, axes = plt.subplots(1, len(rows), figsize=within_width(4.2 * len(rows), 4.4))
    for ax, (name, images) in zip(axes if len(rows) > 1 else [axes], rows.items(), strict=True):
        show_images(images, nrow=nrow, title=name, ax=ax)
    fig.tight_layout()
    return fig


def plot_curves(curves: dict[str, tuple], xlabel: str = "step", ylabel: str = "loss",
                title: str | None = None, logx: bool = False, logy: bool = False, ax=None):
    """Line plot of named (x, y) pairs, e.g. {"train": (steps, losses), "test": (...)}."""
    ax = ax or plt.figure(figsize=(6, 3.5)).gca()
    for name, (x, y) in curves.items():
        ax.plot(x, y, label=name, marker="o" if len(x) <= 12 else None)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.set_xscale("log" if logx else "linear")
    ax.set_yscale("log" if logy else "linear")
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    return ax


def plot_history(history: dict[str, list[float]], keys=None, title: str | None = None):
    """Training curves from `train.fit`'s history: one panel per logged term."""
    keys = keys or [k for k in history if k != "step"]
    fig, axes = plt.subplots(1, len(keys), figsize=within_width(4.5 * len(keys), 3.2),
                             squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        plot_curves({key: (history["step"], history[key])}, ylabel=key, ax=ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def square_grid(lim: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(xs (n,), points (n*n, 2)): an n x n grid over [-lim, lim]^2, rows of constant y."""
    xs = torch.linspace(-lim, lim, n)
    return xs, torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)


def plot_density_2d(log_prob, lim: float = 4.0, n: int = 200, ax=None, title: str | None = None,
                    points: torch.Tensor | None = None):
    """Heat map of exp(log_prob) on a square grid, optionally with sample points on top."""
    _, grid = square_grid(lim, n)
    with torch.no_grad():
        density = log_prob(grid).exp().reshape(n, n).cpu().numpy()
    ax = ax or plt.figure(figsize=(4, 4)).gca()
    ax.imshow(density, origin="lower", extent=(-lim, lim, -lim, lim), cmap="viridis")
    if points is not None:
        pts = points.detach().cpu().numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=2, c="white", alpha=0.5)
    ax.set(title=title, xlim=(-lim, lim), ylim=(-lim, lim))
    return ax


def show_strip(frames: list[torch.Tensor], labels: list[str] | None = None,
               title: str | None = None):
    """A row of snapshots of the same images, e.g. pixel-by-pixel sampling or denoising steps.

    Each frame is (N, C, H, W); the strip shows the N images as rows and the frames as columns.
    """
    stacked = torch.stack([f.detach().float().cpu() for f in frames], 1)  # (N, T, C, H, W)
    n, t = stacked.shape[:2]
    fig, ax = plt.subplots(figsize=within_width(0.9 * t + 0.5, 0.9 * n + 0.6))
    show_images(stacked.flatten(0, 1), nrow=t, ax=ax, title=title)
    if labels:
        step = stacked.shape[-1] + 1
        ax.set_axis_on()
        ax.set_xticks([step * (i + 0.5) for i in range(t)], labels, fontsize=8)
        ax.set_yticks([])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    return fig


def show_pipeline(stages: list[str], arrows: list[str], title: str | None = None):
    """A row of boxes joined by labelled arrows: stages[i] -> (arrows[i]) -> stages[i + 1]."""
    if len(arrows) != len(stages) - 1:
        raise ValueError(f"{len(stages)} stages need {len(stages) - 1} arrow labels, "
                         f"got {len(arrows)}")
    fig, ax = plt.subplots(figsize=within_width(2.1 * len(stages), 1.6))
    ax.set(xlim=(-0.6, len(stages) - 0.4), ylim=(-0.6, 0.6))
    ax.axis("off")
    for i, stage in enumerate(stages):
        ax.text(i, 0, stage, ha="center", va="center", fontsize=8, wrap=True,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": "#eef3fb", "edgecolor": "#4a6fa5"})
    for i, label in enumerate(arrows):
        ax.annotate("", xy=(i + 0.62, 0), xytext=(i + 0.38, 0),
                    arrowprops={"arrowstyle": "->", "color": "#333333"})
        ax.text(i + 0.5, 0.22, label, ha="center", va="bottom", fontsize=7, color="#333333")
    if title:
        ax.set_title(title, fontsize=9)
    return fig
