"""The evaluation kit means something on real data: the classifier is accurate, FID is near its
floor for real images and far above it for noise or one repeated digit, the IS is near 10 for
real digits and 1 for a single one. Also the units and the report."""

import json
import math

import pytest
import torch

from helpers import classifier, data, evaluate, runtime
from tools import instrument

N = 1000


@pytest.fixture(scope="module")
def real():
    runtime.setup(verbose=False)
    x, y = data.load("mnist", "test", n=N)
    return x, y


def test_reference_classifier_reaches_99_percent():
    x, y = data.load("mnist", "test")
    model = evaluate.reference_classifier(torch.device("cpu"))
    assert (evaluate.predict(model, x).argmax(1) == y).float().mean() >= 0.99


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(200_000, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(200_000, 3, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2, 3])
    b = b + torch.tensor([1.0, 0, 0])
    want = 1.0 + (1 - 1) ** 2 + (1 - 2) ** 2 + (1 - 3) ** 2  # |mu|^2 + sum (s1 - s2)^2
    a, b = evaluate.gaussian(a), evaluate.gaussian(b)
    assert evaluate.frechet_distance(*a, *b) == pytest.approx(want, rel=0.02)
    assert evaluate.frechet_distance(*a, *a) == pytest.approx(0, abs=1e-6)


def test_frechet_distance_matches_the_product_form_for_full_covariances():
    """Covariances that do not commute: Tr (S1 S2)^(1/2) is the sum of the square roots of the
    eigenvalues of S1 S2 (real and >= 0), not Tr(S1^(1/2) S2^(1/2))."""
    gen = torch.Generator().manual_seed(1)
    a, b = (torch.randn(8, 8, generator=gen, dtype=torch.float64) for _ in range(2))
    s1, s2 = a @ a.T + 0.1 * torch.eye(8), b @ b.T + 0.1 * torch.eye(8)
    mu1, mu2 = torch.randn(8, generator=gen, dtype=torch.float64), torch.zeros(8)
    roots = torch.linalg.eigvals(s1 @ s2).real.clamp(min=0).sqrt().sum()
    want = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * roots
    got = evaluate.frechet_distance(mu1.float(), s1.float(), mu2, s2)  # float64 inside
    assert got == pytest.approx(float(want), rel=1e-4)
    assert abs(s1 @ s2 - s2 @ s1).max() > 1  # not commuting: the shortcut would differ


def test_fid_is_near_its_floor_for_real_data_and_far_above_it_otherwise(real):
    x, y = real
    floor = evaluate.fid_floor(N)
    assert floor.sets == 5 and 0 < floor.sd < floor.mean
    assert str(floor) == f"{floor.mean:.2f} ± {floor.sd:.2f}"
    floor = floor.mean
    train_x, _ = data.load("mnist", "train", n=6 * N)
    assert evaluate.fid(train_x[5 * N:]) < 1.5 * floor  # real images outside the floor's sets
    noise = torch.rand_like(x)
    one_digit = x[y == 3][:1].expand(N, -1, -1, -1)
    assert evaluate.fid(noise) > 20 * floor
    assert evaluate.fid(one_digit) > 10 * floor


@pytest.fixture
def own_yardstick(tmp_path, monkeypatch):
    """The yardstick's files in a folder of this test's own, its in-memory copies cleared."""
    monkeypatch.setenv("DGM_CHECKPOINTS", str(tmp_path))
    cached = (evaluate.reference, evaluate.fid_floor, evaluate.real_inception_score)
    for f in cached:
        f.cache_clear()
    yield tmp_path
    for f in cached:
        f.cache_clear()


def test_the_floor_does_not_depend_on_which_half_of_the_test_set_comes_first(own_yardstick,
                                                                            monkeypatch):
    """MNIST's two test halves differ (the first is the cleaner one): a yardstick made of the
    first n test images moves with n. The reference is all 10,000, in any order."""
    test_x, _ = data.load("mnist", "test")
    halves = [evaluate.gaussian(evaluate.features(half)) for half in test_x.split(5000)]
    floor = evaluate.fid_floor(5000)
    assert evaluate.frechet_distance(*halves[0], *halves[1]) > 5 * floor.mean  # not alike
    train_x, _ = data.load("mnist", "train", n=5000)
    before = evaluate.fid(train_x), floor.mean
    swapped = torch.cat([test_x[5000:], test_x[:5000]])
    load = data.load
    monkeypatch.setattr(data, "load", lambda name="mnist", split="train", device=None, n=None:
                        (swapped[:n], None) if split == "test" else load(name, split, device, n))
    for f in (evaluate.reference, evaluate.fid_floor):
        f.cache_clear()
    for path in own_yardstick.glob("yardstick-*"):
        path.unlink()
    after = evaluate.fid(train_x), evaluate.fid_floor(5000).mean
    assert after == pytest.approx(before, rel=1e-6)


def test_the_yardstick_is_computed_once_per_instrument_and_kept(own_yardstick):
    floor = evaluate.fid_floor(2000)
    real = evaluate.real_inception_score(2000)
    files = sorted(p.name for p in own_yardstick.iterdir())
    identity = json.loads(classifier.IDENTITY.read_text())["classifier"]
    assert files == [f"yardstick-{identity}-{name}.pt" for name in
                     ("fid-floor-2000", "real-is-2000", "test-reference")]
    assert floor.sets == real.sets == 5 and 9.0 < real.mean < 10 and real.sd > 0
    evaluate.fid_floor.cache_clear()
    evaluate.real_inception_score.cache_clear()
    for path in own_yardstick.iterdir():  # what is kept is what is used
        kept = torch.load(path, weights_only=True)
        for value in kept.values():
            value.mul_(2)
        torch.save(kept, path)
    evaluate.reference.cache_clear()
    assert evaluate.fid_floor(2000).mean == pytest.approx(2 * floor.mean)
    assert evaluate.real_inception_score(2000).mean == pytest.approx(2 * real.mean)


def test_inception_score_and_label_stats(real):
    x, y = real
    assert 9.0 < evaluate.inception_score(x) <= 10.0
    one_digit = x[y == 7][:1].expand(500, -1, -1, -1)
    assert evaluate.inception_score(one_digit) < 1.1
    stats = evaluate.label_stats(x, y)
    assert stats["classes_covered"] == 10 and stats["label_accuracy"] > 0.98
    assert stats["label_entropy"] == pytest.approx(math.log(10), abs=0.02)
    assert stats["largest_share"] == pytest.approx(y.bincount().max().item() / len(y), abs=0.01)
    assert stats["shares"] == pytest.approx((y.bincount(minlength=10) / len(y)).tolist(), abs=0.01)
    assert max(stats["shares"]) == stats["largest_share"]
    collapsed = evaluate.label_stats(one_digit)
    assert collapsed["classes_covered"] == 1 and collapsed["largest_share"] == 1.0
    assert collapsed["shares"] == [float(d == 7) for d in range(10)]


def test_binarised_samples_are_compared_with_binarised_real_digits():
    """A perfect model of binarised MNIST draws binarised digits: against the grey floor its FID
    would look several times the floor; against binarised real digits' it is about 1."""
    train_x, _ = data.load("mnist", "train", n=6 * N)
    perfect = data.binarize(train_x[5 * N:], torch.Generator().manual_seed(1))
    entry = evaluate.family("binarised digits", perfect, 1.0)
    assert entry["binary"] and entry["floor"] == evaluate.fid_floor(N, binary=True).mean
    assert entry["floor"] > 1.5 * evaluate.fid_floor(N).mean  # grey digits' floor is lower
    assert entry["fid_over_floor"] < 1.5 and entry["is_over_real"] > 0.95
    grey = evaluate.family("grey digits", train_x[5 * N:], 1.0)
    assert not grey["binary"] and grey["fid_over_floor"] < 1.5


def test_bad_images_are_refused_clearly():
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        evaluate.inception_score(torch.rand(10, 784))
    with pytest.raises(ValueError, match="NaN"):
        evaluate.fid(torch.full((10, 1, 28, 28), float("nan")))
    with pytest.raises(ValueError, match=r"from -1 to 1: map tanh outputs .* \(x \+ 1\) / 2"):
        evaluate.inception_score(torch.linspace(-1, 1, 7840).view(10, 1, 28, 28))
    assert evaluate.inception_score(torch.full((10, 1, 28, 28), 1.005)) > 0  # rounding: clipped


def test_bits_per_dim():
    assert evaluate.bits_per_dim(784 * math.log(2)) == pytest.approx(1.0)
    assert evaluate.bits_per_dim(3072 * math.log(2) * 3, num_dims=3072) == pytest.approx(3.0)


def test_report_prints_each_figure_against_its_target_and_returns_them(capsys):
    rt = runtime.Runtime(torch.device("cpu"), "cpu", 0)
    returned = evaluate.report(rt, {"nll": 90.0, "is": 8.0},
                               targets={"nll": ("<=", 100), "is": (">=", 9)})
    printed = capsys.readouterr().out
    assert "(target <= 100: met)" in printed and "(target >= 9: NOT met)" in printed
    assert returned["metrics"] == {"nll": 90.0, "is": 8.0} and returned["mode"] == "cpu"
    assert returned["targets"]["nll"]["met"] and not returned["targets"]["is"]["met"]
    with pytest.raises(ValueError, match="not reported.*fid"):
        evaluate.report(rt, {"nll": 90.0}, targets={"fid": ("<=", 3)})


@pytest.mark.slow
def test_two_fresh_trainings_give_the_same_instrument():
    """Trains the classifier twice, one epoch of its four each (a quarter of the full training,
    which takes a few minutes on a slow CPU): CI runs it with `pytest -m slow`. (The same code on
    another CPU or thread count gives other weights: that is why the instrument is shipped, and
    never retrained by a notebook.)"""
    from tools import instrument as maintainer

    first, second = (maintainer.trained(epochs=1) for _ in range(2))
    assert classifier.weights_hash(first) == classifier.weights_hash(second)


BATCH = torch.Generator().manual_seed(0)


def test_the_shipped_instrument_is_the_one_its_identity_names():
    identity = json.loads(classifier.IDENTITY.read_text())
    assert classifier.WEIGHTS.stat().st_size < 1_000_000
    assert instrument.identity() == identity
    assert identity["classifier_test_accuracy"] >= 0.99


@pytest.mark.parametrize("damage", ["missing", "truncated", "other weights"])
def test_a_missing_or_damaged_instrument_stops_every_metric_with_one_message(damage, tmp_path,
                                                                            monkeypatch):
    weights = tmp_path / "reference_classifier.pt"
    if damage == "truncated":
        weights.write_bytes(classifier.WEIGHTS.read_bytes()[:5000])
    elif damage == "other weights":
        torch.save(classifier.Classifier().state_dict(), weights)
    monkeypatch.setattr(classifier, "WEIGHTS", weights)
    classifier.on_cpu.cache_clear()
    images = torch.rand(20, 1, 28, 28)
    try:
        for metric in (evaluate.fid, evaluate.inception_score, evaluate.label_stats,
                       evaluate.features, lambda x: evaluate.reference_classifier("cpu")):
            with pytest.raises(classifier.ClassifierError) as info:
                metric(images)
            shown = info.value._render_traceback_()
            assert len(shown) == 1 and "git checkout" in shown[0] and "reinstall" in shown[0]
            assert ("could not be loaded" if damage != "other weights" else "not the course's") \
                in shown[0]
    finally:
        classifier.on_cpu.cache_clear()


def test_a_fresh_clone_measures_the_documented_inception_score_of_the_test_data():
    """The shipped instrument gives docs/history.md's figure exactly: 01's first 2,000 binarised
    test images (its cpu mode's sample count)."""
    import re
    from pathlib import Path

    history = Path(__file__).resolve().parent.parent / "docs" / "history.md"
    row = re.search(r"\| 01 \| MNIST inception score: binarised test data .*\| ([\d.]+) /",
                    history.read_text())
    x, _ = data.binarized_test_set(n=2000)
    assert f"{evaluate.inception_score(x):.2f}" == row.group(1)
