"""What every data source produces: a `DataBundle` of in-memory splits and a `DataSpec`.

Images are kept as uint8 `[N, C, H, W]` (pixels 0..255); tabular features as float32 `[N, F]`
raw values. Normalisation is *not* applied here: its statistics go in the spec and the model
applies them as its first layer, so an exported model takes raw values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class DataSpec:
    """Everything a model, the exporter and the predictor need to know about the data."""

    source: str
    kind: str  # "image" | "tabular"
    task: str  # "classification" | "regression"
    input_shape: tuple[int, ...]  # (C, H, W) or (F,)
    labels: tuple[str, ...] = ()  # class names in index order; () for regression
    mean: tuple[float, ...] = ()  # per channel (images, of pixels in [0, 1]) or per feature
    std: tuple[float, ...] = ()
    feature_names: tuple[str, ...] = ()  # tabular only
    target_mean: float = 0.0  # regression targets are learned standardised
    target_std: float = 1.0

    @property
    def num_outputs(self) -> int:
        return len(self.labels) if self.task == "classification" else 1

    def describe(self) -> str:
        shape = "x".join(str(s) for s in self.input_shape)
        if self.task == "classification":
            return f"{len(self.labels)} classes, input {shape}"
        return f"regression, input {shape}"


@dataclass
class Split:
    """One split's samples: `x` (uint8 images or float32 features) and `y` (int64 or float32).

    For an image folder larger than the memory budget `x` is a `studio.data.images.ImageFiles`,
    which indexes like the tensor it stands for and decodes on demand.
    """

    x: torch.Tensor  # or ImageFiles (see above)
    y: torch.Tensor
    indices: torch.Tensor | None = None  # positions in the source, for showing samples

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class DataBundle:
    """A data set ready to train on: the spec, three splits, and warnings for the user."""

    spec: DataSpec
    train: Split
    val: Split
    test: Split
    warnings: list[str] = field(default_factory=list)
    paths: tuple[str, ...] = ()  # source files (folder source), indexed by `Split.indices`
    image_sizes: dict[str, int] = field(default_factory=dict)  # "WxH" of the source images -> count
    task_reason: str = ""  # why the task is classification or regression (CSV), for the setup and the log

    def summary(self) -> str:
        why = f"; {self.spec.task}: {self.task_reason}" if self.task_reason else ""
        return (
            f"{self.spec.source}: {self.spec.describe()}; "
            f"{len(self.train)} train / {len(self.val)} val / {len(self.test)} test{why}"
        )
