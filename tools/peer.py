"""The peer baseline of `make bench`: the library a user would pick for 06_diffusion's job, Hugging
Face diffusers (`UNet2DModel` + `DDPMScheduler`, sampled with its `DDIMScheduler` at 50 steps),
trained on MNIST for the same wall-clock time as its counterpart, 06's U-Net, on the same machine,
and scored with the same evaluation kit. diffusers is a
benchmark-only extra (requirements-bench.txt).

The model is the MNIST-sized UNet2DModel of Hugging Face's diffusion course (28 x 28, one channel,
channels 32-64-64, two ResNet layers per block, self-attention at the two lower resolutions); the
optimiser and schedule follow diffusers' own unconditional training example (AdamW at 1e-4, 500
warm-up steps, then cosine decay), with the course's batch size so that images/s compare.
"""

import math
import sys
import time

import torch

from helpers import data, evaluate, runtime


def _model():
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=2,
                       block_out_channels=(32, 64, 64),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"))


def train_and_score(seconds: float, n_eval: int, batch_size: int, device: torch.device,
                    seed: int = 0) -> dict:
    """Train for `seconds` of wall clock, sample `n_eval` images with 50 DDIM steps and score them
    like the course's models (`evaluate.family`); with training images/s."""
    from diffusers import DDIMScheduler, DDPMScheduler

    runtime.set_seed(seed)
    model = _model().to(device)
    noise_scheduler = DDPMScheduler(num_train_timesteps=1000)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-6)
    x_train = data.load("mnist", "train", device=device)[0] * 2 - 1
    batches = data.batches(x_train, batch_size=batch_size)
    model.train()
    steps, start = 0, time.perf_counter()
    while (done := (time.perf_counter() - start) / seconds) < 1:
        for group in opt.param_groups:  # warm-up, then cosine decay over the time budget
            group["lr"] = 1e-4 * min(1.0, (steps + 1) / 500) * 0.5 * (1 + math.cos(math.pi * done))
        x0 = next(batches)
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (len(x0),), device=device)
        x_t = noise_scheduler.add_noise(x0, noise, t)
        loss = torch.nn.functional.mse_loss(model(x_t, t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        if steps % 10 == 0:
            runtime.synchronize(device)  # the clock reads finished work
    trained = time.perf_counter() - start
    model.eval()
    ddim = DDIMScheduler(num_train_timesteps=1000)
    ddim.set_timesteps(50)

    @torch.no_grad()
    def sample(n):
        x = torch.randn(n, 1, 28, 28, device=device)
        for t in ddim.timesteps:
            x = ddim.step(model(x, t).sample, t, x).prev_sample
        return (x + 1) / 2

    start = time.perf_counter()
    images = torch.cat([sample(len(c)) for c in torch.arange(n_eval).split(250)])
    runtime.synchronize(device)
    sampling = time.perf_counter() - start
    scores = evaluate.family("diffusers DDIM 50", images, sampling)
    return {**scores, "train_seconds": round(trained, 1), "train_steps": steps,
            "train_images_per_s": round(steps * batch_size / trained, 1),
            "parameters": sum(p.numel() for p in model.parameters())}


# What the peer answers: 06's diffusion model sampled with 50 DDIM steps. Named here, in the one
# place that needs it; a run without it says so instead of comparing with another kind of model.
COUNTERPART = ("06_diffusion", "DDIM 50")


def counterpart(rows: list[dict]) -> tuple[dict, dict] | None:
    """(the counterpart family, the longest training run of its notebook) in these benchmark
    rows, or None when the notebook was not run or did not report that family."""
    notebook, name = COUNTERPART
    row = next((r for r in rows if r["notebook"] == notebook and r.get("training")), None)
    family = next((f for f in (row or {}).get("families", []) if f["name"] == name), None)
    if family is None:
        return None
    return family, max(row["training"].values(), key=lambda t: t["seconds"])


def compare(rows: list[dict], device: torch.device) -> dict | None:
    """The peer against its counterpart (COUNTERPART) in these benchmark rows: trained for as long
    as the counterpart's model trained, with its batch size, and sampled as often; with the ratios
    course / peer. None, with a note, when the counterpart is not among the rows or diffusers is
    not installed."""
    found = counterpart(rows)
    if found is None:
        print(f"bench: no peer baseline: no {COUNTERPART[1]!r} family of {COUNTERPART[0]} in this "
              "run (tools/peer.py, COUNTERPART)", file=sys.stderr)
        return None
    family, trained = found
    try:
        import diffusers  # noqa: F401
    except ImportError:
        print("bench: no peer baseline: diffusers is not installed (make bench installs "
              "requirements-bench.txt)", file=sys.stderr)
        return None
    batch = round(trained["images"] / trained["steps"])
    result = train_and_score(trained["seconds"], family["n"], batch, device)
    ratio = lambda ours, theirs: round(ours / theirs, 2)
    return {**result, "peer": True, "ratio": {
        "inception_score": ratio(family["inception_score"], result["inception_score"]),
        "train_images_per_s": ratio(trained["images_per_s"], result["train_images_per_s"]),
        "fid_over_floor": ratio(family["fid_over_floor"], result["fid_over_floor"])},
        "ours": {"inception_score": family["inception_score"], "fid_over_floor":
                 family["fid_over_floor"], "train_images_per_s": trained["images_per_s"]}}
