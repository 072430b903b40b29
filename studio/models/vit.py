"""`vit`: a compact Vision Transformer for 28-64 px images, built from `nn.TransformerEncoder`.

The image is cut into `patch_size` squares (a strided convolution embeds each one as a token of
`dim` values), a learned position embedding is added, `depth` pre-norm encoder layers with
`heads` attention heads mix the tokens, and the mean token goes through a layer norm and a linear
head (mean pooling instead of a class token, as in "Better plain ViT baselines", Beyer et al.
2022). An image whose side is not a multiple of the patch is zero-padded to one.
"""

from __future__ import annotations

import torch
from torch import nn

from studio.config import ModelConfig
from studio.data.base import DataSpec
from studio.errors import ConfigError


def auto_patch(size: int) -> int:
    """About an eighth of the side (28 px: 4, so 7x7 tokens; 64 px: 8), at least 2."""
    return max(2, round(size / 8))


class ViT(nn.Module):
    """Patch embedding, position embedding, a transformer encoder, mean pooling and a head."""

    def __init__(self, channels: int, h: int, w: int, classes: int, cfg: ModelConfig) -> None:
        super().__init__()
        patch = cfg.patch_size or auto_patch(max(h, w))
        if patch > max(h, w):
            raise ConfigError(f"[model] patch_size {patch} is larger than the {h}x{w} images")
        pad_h, pad_w = -h % patch, -w % patch
        self.pad = nn.ZeroPad2d((0, pad_w, 0, pad_h)) if pad_h or pad_w else nn.Identity()
        self.embed = nn.Conv2d(channels, cfg.dim, kernel_size=patch, stride=patch)
        tokens = ((h + pad_h) // patch) * ((w + pad_w) // patch)
        self.pos = nn.Parameter(torch.zeros(1, tokens, cfg.dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=cfg.dim,
            nhead=cfg.heads,
            dim_feedforward=cfg.dim * 2,
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.pad(x)).flatten(2).transpose(1, 2) + self.pos  # [B, tokens, dim]
        return self.head(self.norm(self.encoder(tokens).mean(dim=1)))


def build_vit(cfg: ModelConfig, spec: DataSpec) -> nn.Module:
    if spec.kind != "image":
        raise ConfigError("[model] arch 'vit' needs image data; use mlp or linear for CSV data")
    c, h, w = spec.input_shape
    return ViT(c, h, w, spec.num_outputs, cfg)
