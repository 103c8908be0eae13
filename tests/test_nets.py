"""The shared U-Net keeps the image shape, starts at eps = 0, and uses its time and condition."""

import pytest
import torch

from helpers import nets


@pytest.mark.parametrize("channels,size,patch,mults,blocks,attention", [
    (1, 28, 2, (1, 2), 1, False), (3, 32, 2, (1, 2), 1, False), (1, 28, 1, (1, 2, 2), 1, False),
    (1, 28, 1, (1, 2, 2), 2, True), (3, 32, 2, (1, 2), 2, True), (1, 28, 2, (1,), 1, True)])
def test_unet_keeps_the_shape_and_starts_at_zero(channels, size, patch, mults, blocks, attention):
    net = nets.UNet(channels=channels, width=16, mults=mults, patch=patch, blocks=blocks,
                    attention=attention)
    x, t = torch.randn(3, channels, size, size), torch.tensor([0, 10, 999])
    out = net(x, t)
    assert out.shape == x.shape and out.abs().max() == 0  # the last conv is zero-initialised
    assert len(net.down) == len(net.up) == blocks * len(mults)
    layers = (net.attend_down, net.attend_mid, net.attend_up)
    assert all(isinstance(a, nets.Attention) == attention for a in layers)


def test_attention_starts_as_the_identity_then_relates_distant_positions():
    torch.manual_seed(0)
    attend = nets.Attention(16)
    x = torch.randn(2, 16, 7, 7, requires_grad=True)
    assert torch.equal(attend(x), x)
    torch.nn.init.normal_(attend.proj.weight)
    attend(x)[:, :, 0, 0].sum().backward()  # one corner of the output ...
    assert x.grad[:, :, 6, 6].abs().sum() > 0  # ... depends on the opposite corner of the input


def _trained_a_little(net):
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(2):  # move the zero-initialised output layer so that inputs can show
        x, t = torch.randn(4, 1, 28, 28), torch.randint(0, 1000, (4,))
        loss = (net(x, t, torch.randn(4, 8)) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def test_unet_output_depends_on_time_and_condition():
    torch.manual_seed(0)
    net = _trained_a_little(nets.UNet(width=16, mults=(1, 2), patch=2, cond_dim=8))
    x, cond = torch.randn(2, 1, 28, 28), torch.randn(2, 8)
    with torch.no_grad():
        base = net(x, torch.tensor([5, 5]), cond)
        assert not torch.allclose(base, net(x, torch.tensor([500, 500]), cond))
        assert not torch.allclose(base, net(x, torch.tensor([5, 5]), torch.zeros_like(cond)))
        assert torch.allclose(base[:1], net(x[:1], torch.tensor([5]), cond[:1]), atol=1e-5)


def test_timestep_embedding_is_distinct_and_bounded():
    emb = nets.timestep_embedding(torch.arange(1000), 32)
    assert emb.shape == (1000, 32) and emb.abs().max() <= 1
    assert torch.cdist(emb, emb).add(torch.eye(1000) * 10).min() > 1e-3  # no two steps alike


def test_group_norm_runs_in_float32_under_bf16_autocast_with_the_same_weights():
    net = nets.UNet(width=16, mults=(1, 2), patch=2)
    norm = net.down[0].norm1
    assert isinstance(norm, torch.nn.GroupNorm)  # nn.GroupNorm's parameters: checkpoints unchanged
    x = torch.randn(2, 16, 14, 14)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = norm(x.bfloat16())
        eps = net(torch.randn(2, 1, 28, 28), torch.tensor([3, 500]))
    assert out.dtype == torch.float32  # as under CUDA's autocast; the CPU would pick bf16
    assert torch.allclose(out, torch.nn.functional.group_norm(x.bfloat16().float(), 8), atol=1e-5)
    assert eps.shape == (2, 1, 28, 28) and torch.isfinite(eps).all()
