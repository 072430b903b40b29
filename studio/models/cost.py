"""What one image costs a model: floating-point operations of one forward pass, counted once.

`flops_per_image(model, spec)` runs the model on one blank sample under PyTorch's
`FlopCounterMode` (it counts the matrix products and convolutions, which are nearly all of the
work) and caches the figure by architecture and input shape, so the window can show it beside the
parameter count after every setup change without counting again.
"""

from __future__ import annotations

import threading

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from studio.config import ModelConfig
from studio.data.base import DataSpec

_CACHE: dict[str, int] = {}
_LOCK = threading.Lock()


def flops_per_image(model: nn.Module, spec: DataSpec, cfg: ModelConfig | None = None) -> int:
    """FLOPs (multiply and add counted apart) of one forward pass on one sample, in eval mode.

    With `cfg`, the figure is cached under the architecture's settings and the data's shape.
    """
    key = repr((cfg, spec.input_shape, spec.num_outputs)) if cfg is not None else None
    if key is not None:
        with _LOCK:
            if key in _CACHE:
                return _CACHE[key]
    was_training = model.training
    model.eval()
    try:
        # Not under no_grad: there nn.TransformerEncoder takes its fused fast path, which the counter misses.
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *spec.input_shape))
    finally:
        model.train(was_training)
    flops = int(counter.get_total_flops())
    if key is not None:
        with _LOCK:
            if len(_CACHE) > 64:
                _CACHE.clear()
            _CACHE[key] = flops
    return flops


def describe_flops(flops: int) -> str:
    """`142 MFLOPs/image`, `1.8 GFLOPs/image`, `35 kFLOPs/image` or, for a tiny model, `4 FLOPs/image`."""
    if flops >= 1e9:
        return f"{flops / 1e9:.1f} GFLOPs/image"
    if flops >= 1e6:
        return f"{flops / 1e6:.0f} MFLOPs/image" if flops >= 1e7 else f"{flops / 1e6:.1f} MFLOPs/image"
    if flops >= 1e3:
        return f"{flops / 1e3:.0f} kFLOPs/image"
    return f"{flops} FLOPs/image"
