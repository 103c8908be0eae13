"""Network blocks that two notebooks share: the small U-Net noise predictor taught in
06_diffusion (section 5) and reused, conditioned on an image embedding, by 07_text_to_image.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the timesteps t (B,) -> (B, dim), as in the Transformer and DDPM:
    sin and cos of t at geometrically spaced frequencies, so nearby t get nearby features."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)  # (half,)
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], 1)  # (B, dim)


class GroupNorm(nn.GroupNorm):
    """nn.GroupNorm computed in float32 under any autocast, as CUDA's autocast does; the CPU's
    would run it in bf16, whose kernel for channels-last maps is 4x slower than float32's (the
    U-Net's training step: 89 -> 56 ms with bf16 convolutions and this, 73 ms without it)."""

    def forward(self, x):
        return F.group_norm(x.float(), self.num_groups, self.weight, self.bias, self.eps)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the embedding (time, and condition) added in between."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = GroupNorm(8, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = GroupNorm(8, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))  # (B, c_out, H, W)
        h = h + self.emb(emb)[:, :, None, None]  # the same shift at every pixel
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class Attention(nn.Module):
    """Self-attention over the positions of a feature map (B, C, H, W), with a residual: each
    position takes a softmax-weighted average of all positions' values, the weights from
    query-key dot products, so one layer relates the whole image where a 3 x 3 convolution sees
    its neighbours. Quadratic in H * W, so used only at the lowest resolution (7 x 7: 49
    positions), as in DDPM's U-Net. Its output projection starts at zero: it begins as the
    identity."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.heads, self.norm = heads, GroupNorm(8, channels)
        self.qkv, self.proj = nn.Conv2d(channels, 3 * channels, 1), nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (B, heads, HW, C / heads)
        weights = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1)  # (B, hd, HW, HW)
        out = (weights @ v).transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """eps_theta(x_t, t, cond): predicts the noise in x_t (B, C, H, W) at integer steps t (B,).

    With `patch` = p, each p x p block of pixels is first folded into channels (pixel_unshuffle) and
    unfolded at the end: p = 2 makes a 28 x 28 image a 14 x 14 map, four times fewer positions and
    about four times less compute. Encoder: `blocks` ResBlocks per resolution, halving H and W
    between levels (mults=(1, 2) and p = 2: 14 -> 7 for MNIST; mults=(1, 2, 2) and p = 1:
    28 -> 14 -> 7). Decoder: the mirror image, each level first concatenating the encoder's
    features of the same size (the U's skip connections). With `attention`, self-attention
    follows the blocks of the lowest resolution, on both sides and in the middle. Every block gets
    the sinusoidal time embedding through an MLP; with `cond_dim`, a condition vector
    (B, cond_dim) is projected and added to it (07 conditions on an image embedding this way).
    The last conv starts at zero, so the untrained net predicts eps = 0.
    """

    def __init__(self, channels: int = 1, width: int = 32, mults=(1, 2, 2),
                 cond_dim: int | None = None, patch: int = 1, blocks: int = 1,
                 attention: bool = False):
        super().__init__()
        emb_dim, widths = 4 * width, [width * m for m in mults]
        self.width, self.patch, self.blocks = width, patch, blocks
        channels = channels * patch**2  # each patch x patch block of pixels becomes one position
        self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(),
                                      nn.Linear(emb_dim, emb_dim))
        self.cond_mlp = nn.Linear(cond_dim, emb_dim) if cond_dim else None
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.down = nn.ModuleList(ResBlock(c_in if b == 0 else c, c, emb_dim)  # level by level
                                  for c_in, c in zip([width, *widths], widths, strict=False)
                                  for b in range(blocks))
        self.pool = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1) for c in widths[:-1])
        self.mid = ResBlock(widths[-1], widths[-1], emb_dim)
        self.up = nn.ModuleList(ResBlock(2 * c if b == 0 else c_out, c_out, emb_dim) for c, c_out in
                                zip(widths[::-1], [*widths[-2::-1], width], strict=True)
                                for b in range(blocks))
        self.unpool = nn.ModuleList(nn.ConvTranspose2d(c, c, 4, 2, 1) for c in widths[-2::-1])
        self.out = nn.Sequential(GroupNorm(8, width), nn.SiLU(),
                                 nn.Conv2d(width, channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)
        attend = lambda c: Attention(c) if attention else nn.Identity()  # at the lowest level:
        self.attend_down, self.attend_mid = attend(widths[-1]), attend(widths[-1])
        self.attend_up = attend(widths[-2] if len(widths) > 1 else width)  # after its up blocks

    def forward(self, x, t, cond=None):
        emb = self.time_mlp(timestep_embedding(t, self.width))  # (B, emb_dim)
        if self.cond_mlp is not None and cond is not None:
            emb = emb + self.cond_mlp(cond)
        h, skips = self.stem(F.pixel_unshuffle(x, self.patch)), []  # (B, width, H/p, W/p)
        levels = len(self.down) // self.blocks
        for level in range(levels):
            for block in self.down[level * self.blocks:(level + 1) * self.blocks]:
                h = block(h, emb)
            if level == levels - 1:
                h = self.attend_down(h)
            skips.append(h)
            if level < len(self.pool):
                h = self.pool[level](h)  # (B, c, H/2, W/2); 7 -> 4 would not invert: sizes even
        h = self.attend_mid(self.mid(h, emb))
        for level in range(levels):
            h = torch.cat([h, skips.pop()], 1)
            for block in self.up[level * self.blocks:(level + 1) * self.blocks]:
                h = block(h, emb)
            if level == 0:
                h = self.attend_up(h)
            if level < len(self.unpool):
                h = self.unpool[level](h)  # (B, c, 2H, 2W)
        return F.pixel_shuffle(self.out(h), self.patch)  # (B, C, H, W)
