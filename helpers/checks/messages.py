"""What the exercise checks say: the advice for errors a student's code raises, for shapes that
do not match, and the sentences that several checks share."""

import math

UNSTABLE = ("log(sigmoid(l)) is log(0) = -inf once sigmoid rounds to 0 or 1 (a confident logit, "
            "|l| > 17 in float32): compute the log-probabilities from the logits themselves "
            "(F.logsigmoid, or the _with_logits loss)")
FRESH = ("do not seed inside the function (torch.manual_seed, a new torch.Generator): the caller "
         "seeds once, and every call must draw new random numbers")
NO_GRAD = ("training learns through this gradient: no .detach(), .item(), .data, .numpy() or "
           "torch.no_grad() on the way, and every input must enter the computation")
ADVICE = [  # (exception type, words in its message, what that mistake usually is)
    (TypeError, "must be real number, not Tensor",
     "math.log, math.exp, math.sqrt take single numbers: use torch.log, torch.exp, torch.sqrt"),
    (ValueError, "only one element tensors can be converted", "a tensor of several values was "
     "used as one number: math.log / math.exp, float() and `if` take single numbers; on tensors "
     "use torch.log, torch.exp, torch.where"),
    (RuntimeError, "p_in >= 0 && p_in <= 1", "torch.bernoulli takes probabilities in [0, 1]: "
     "turn logits into probabilities with torch.sigmoid first"),
    (RuntimeError, "all elements of input should be between 0 and 1",
     "F.binary_cross_entropy takes probabilities; logits need the _with_logits version"),
    (RuntimeError, "same device", "make every new tensor on the inputs' device: "
     "device=x.device, or torch.zeros_like / torch.randn_like"),
    (RuntimeError, "must match the size of tensor", "the shapes do not broadcast: the check "
     "also tries other shapes than the notebook's, so make new tensors with the inputs' own "
     "shape (torch.randn_like(x), x.shape) and line up per-example values with .view(-1, 1, ...)"),
    (RuntimeError, "is invalid for input of size", "a size written into the code (view / "
     "reshape): the check also tries other sizes than the notebook's; use -1 or .flatten(1)"),
    (IndexError, "Dimension out of range", "a dimension that this input does not have: the "
     "check also tries other shapes than the notebook's, so name dimensions from the end "
     "(dim=-1) or flatten all but the first (.flatten(1))"),
    (IndexError, "shape mismatch: indexing tensors", "index tensors of different lengths: a "
     "size written into the code? the check also tries other sizes than the notebook's"),
    (RuntimeError, "cannot be converted to Scalar", "a tensor of several values was used as "
     "one number (.item(), float()): keep the computation in torch"),
    (RuntimeError, "inplace operation", "an in-place change (x += y, x[...] = ..., x.add_(y)) "
     "of a tensor that autograd still needs: compute a new tensor instead (x = x + y)"),
    (RuntimeError, "in-place operation", "an in-place change (x += y, x[...] = ..., x /= n) of "
     "an input or a view: compute a new tensor instead (x = x / n)"),
    (RuntimeError, "A view was created in no_grad mode", "an in-place change (x /= n, "
     "x[...] = ...) of an input: compute a new tensor instead (x = x / n)"),
    (IndexError, "out of bounds", "an index runs past the end: Python counts from 0, so the "
     "last index of a dimension of length n is n - 1"),
    (RuntimeError, "does not require grad", "the result lost its gradient: no .item(), "
     ".detach(), .numpy() or torch.no_grad() inside the exercise"),
    (RuntimeError, "appears to not have been used in the graph", "the result lost its gradient: "
     "no .item(), .detach(), .numpy() or torch.no_grad() inside the exercise"),
]


def shape_advice(got: tuple, want: tuple) -> str:
    if not want:
        return "one number for the whole batch is expected: the average over the examples"
    if len(got) == len(want) + 1 and got[:-1] == want and got[-1] == want[0] > 1:
        return (f"a {want + (1,)} tensor and a {want} tensor broadcast to {got}: give both the "
                f"same shape before combining them")
    if len(got) > len(want) and got[0] == want[0] > 1 and want[0] in got[1:]:
        return (f"the batch size {want[0]} appears twice in {got}: two tensors of different "
                "layouts were broadcast together; line them up before combining them")
    if got[: len(want)] == want and len(got) > len(want) and set(got[len(want):]) == {1}:
        return ("an extra dimension of size 1 (keepdim=True, or a (B, 1) tensor somewhere): "
                "find where it appears, or .squeeze() it")
    if got[: len(want)] == want and len(got) > len(want):
        return (f"the dimension(s) {got[len(want):]} are still there: did a sum over them go "
                "missing?")
    if not got:
        return (f"a single number, where {want} is expected: no reduction over the batch "
                "(.sum() or .mean() without a dim)")
    if len(got) == len(want) and sum(g != w for g, w in zip(got, want, strict=True)) == 1:
        i = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
        return (f"dimension {i} has size {got[i]} where {want[i]} is expected: a reduction over "
                "the wrong dimension? (dim=-1 is the last, whatever the number of dimensions)")
    if math.prod(got) == math.prod(want):
        return "the right number of values in another layout: mind the order of the dimensions"
    return ""
