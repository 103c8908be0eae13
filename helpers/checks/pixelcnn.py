"""Check for 02's PixelCNN mask: which positions of a k x k kernel a masked convolution may read.

The reference: with the kernel centred on the pixel being predicted, the pixels before it in
raster order are the rows above the centre and, in the centre row, the columns to its left; mask A
reads exactly those, mask B also the centre.
"""

import torch

from .core import Exercise, ok

_RULE = ("a position may be read when its pixel comes before the centre's in raster order (row "
         "by row, each left to right); mask B also reads the centre")


_CENTRE = {  # mask type -> k -> (problem, why), when the mask gets the centre wrong
    "A": lambda k: (f"mask A for k = {k} reads the centre", "the first layer would see the pixel "
                    "it predicts: mask A hides the centre"),
    "B": lambda k: (f"mask B for k = {k} hides the centre", "after the first layer the centre's "
                    "features hold only earlier pixels: mask B reads them"),
}


def _reference(k: int, mask_type: str) -> torch.Tensor:
    row, col = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
    centre = k // 2
    before = (row < centre) | ((row == centre) & (col < centre))
    return (before | ((row == centre) & (col == centre) & (mask_type == "B"))).float()


def _first_difference(ex: Exercise, got: torch.Tensor, want: torch.Tensor, k: int,
                      mask_type: str) -> None:
    centre = k // 2
    if torch.equal(got, want.T) and k > 1:
        ex.fail(f"mask {mask_type} for k = {k} is the right mask transposed",
                "raster order runs along rows: the open rows are above the centre")
    opened = (got > want).nonzero()
    opened = opened[(opened != centre).any(1)]  # the centre has its own message
    if len(opened):
        r, c = (int(i) for i in opened[0])
        where = "a row below the centre" if r > centre else "the centre row, right of the centre"
        ex.fail(f"mask {mask_type} for k = {k} opens position ({r}, {c}), in {where}",
                "those pixels come later in raster order: the model would see the future")
    if got[centre, centre] != want[centre, centre]:
        ex.fail(*_CENTRE[mask_type](k))
    r, c = (int(i) for i in (got < want).nonzero()[0])
    ex.fail(f"mask {mask_type} for k = {k} closes position ({r}, {c}), which comes before the "
            "centre", "a closed position is context the model may read but never sees")


def check_pixelcnn_mask(pixelcnn_mask) -> None:
    """pixelcnn_mask(k, mask_type "A" or "B") -> a (k, k) float32 mask of 0s and 1s."""
    ex = Exercise(pixelcnn_mask, "pixelcnn_mask", _RULE)
    for k in (3, 7, 1, 5, 9):  # 7 (mask A) and 3 (mask B): the notebook's
        for mask_type in "AB":
            what = f"mask {mask_type} for k = {k}"
            answer = ex.call(k, mask_type)
            got = ex.tensor(answer, (k, k), what, binary=True)
            if answer.dtype != torch.float32:
                ex.fail(f"{what} has dtype {answer.dtype}; the float32 weights it multiplies "
                        "need float32", hint="torch.ones(k, k) is float32; or .float() at the end")
            want = _reference(k, mask_type)
            if not torch.equal(got.float(), want):
                _first_difference(ex, got.float(), want, k, mask_type)
    ok("pixelcnn_mask: masks A and B read exactly the pixels before the centre in raster order "
       "(B also the centre), for kernels of 1 to 9")
