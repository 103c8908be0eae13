"""The figure helpers draw what they are given: grids of the right size, curves, densities."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.distributions import Normal  # noqa: E402

from helpers import plot  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_show_images_lays_out_a_grid_with_a_frame():
    ax = plot.show_images(torch.rand(12, 1, 28, 28), nrow=4, title="t")
    grid = ax.get_images()[0].get_array()
    assert grid.shape == (3 * 29 + 1, 4 * 29 + 1, 3)  # 28 pixels + 1 frame per image
    ax = plot.show_images(torch.rand(5, 3, 32, 32), nrow=5)  # colour images stay colour
    assert ax.get_images()[0].get_array().shape == (34, 5 * 33 + 1, 3)


def test_rows_curves_and_history():
    fig = plot.show_image_rows({"a": torch.rand(4, 1, 8, 8), "b": torch.rand(4, 1, 8, 8)}, nrow=2)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    ax = plot.plot_curves({"train": ([1, 2, 3], [3, 2, 1]), "test": ([1, 2, 3], [4, 3, 2])},
                          logx=True)
    assert len(ax.lines) == 2 and ax.get_xscale() == "log"
    fig = plot.plot_history({"step": [1, 2], "loss": [2.0, 1.0], "kl": [0.5, 0.4]})
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "kl"]


def test_density_2d_peaks_where_the_density_does():
    ax = plot.plot_density_2d(lambda g: Normal(torch.tensor([1.0, 0.0]), 0.5).log_prob(g).sum(1),
                              lim=3, n=61, points=torch.randn(10, 2))
    image = torch.as_tensor(ax.get_images()[0].get_array())
    row, col = divmod(int(image.argmax()), 61)
    assert (row, col) == (30, 40)  # y = 0, x = 1 on a grid from -3 to 3 in steps of 0.1


def test_strip_puts_frames_in_columns():
    frames = [torch.full((2, 1, 8, 8), v) for v in (0.0, 0.5, 1.0)]
    fig = plot.show_strip(frames, labels=["t=0", "t=1", "t=2"])
    image = fig.axes[0].get_images()[0].get_array()
    assert image.shape[:2] == (2 * 9 + 1, 3 * 9 + 1)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["t=0", "t=1", "t=2"]
