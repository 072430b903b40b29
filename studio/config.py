"""Typed run configuration: dataclasses per section, TOML load/save, validation with clear errors.

Every field carries its help text and limits in `metadata`, so the GUI builds its form rows from
the same definitions the CLI validates against. A `Config` is frozen: derive changed copies with
`config.replace_value("train.lr", 0.01)` or `with_overrides(["train.lr=0.01"])`.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from studio.errors import ConfigError
from studio.files import atomic_write_text

SOURCES = ("digits", "mnist", "fashion-mnist", "cifar10", "folder", "csv", "linear")
ARCHS = ("softmax", "mlp", "lenet", "cnn", "resnet18", "mobilenet_v3_small", "vit", "linear")
PRETRAINED_ARCHS = ("resnet18", "mobilenet_v3_small")  # [model] weights = "imagenet" works for these
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
INITS = ("default", "kaiming", "xavier", "orthogonal")
TASKS = ("auto", "classification", "regression")
LOSSES = ("auto", "cross_entropy", "mse", "l1", "huber")
PRECISIONS = ("fp32", "bf16", "fp16")
BLANKS = ("error", "drop", "mean")
FILLS = ("zeros", "border", "reflection")
SEED_MAX = 2**32 - 1  # numpy's seeds stop here; torch's generators take it too


def _f(default: Any, help: str, **limits: Any) -> Any:
    """A config field with its help text and limits (choices, min, min_exclusive, max, max_exclusive)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **limits})
    return field(default=default, metadata={"help": help, **limits})


@dataclass(frozen=True)
class DataConfig:
    """Where the samples come from and how they are split."""

    source: str = _f("digits", "data source", choices=SOURCES)
    path: str = _f("", "folder of class subfolders, or a CSV file (folder and csv sources)")
    target: str = _f("label", "CSV: the target column")
    task: str = _f("auto", "CSV: classification or regression; auto guesses from the target column", choices=TASKS)
    blank_cells: str = _f(
        "error",
        "CSV: what to do with blank feature cells: error, drop the row, or fill with the training mean",
        choices=BLANKS,
    )
    val_split: float = _f(0.1, "fraction of the samples held out for validation", min=0.0, max_exclusive=1.0)
    test_split: float = _f(0.1, "fraction of the samples held out for the final test", min=0.0, max_exclusive=1.0)
    image_size: int = _f(
        0, "images: training size in pixels (square); 0 = the most common size, capped at 224", min=0, max=1024
    )
    channels: int = _f(0, "images: 1 (grayscale) or 3 (RGB); 0 = from the data", min=0, max=3)
    cache_dir: str = _f("", "where mnist, fashion-mnist and cifar10 download to; empty = the user's cache")
    memory_budget_mb: int = _f(2048, "decode images into memory (the fast path) when they fit this budget", min=0)
    num_workers: int = _f(2, "DataLoader workers when the data does not fit the memory budget", min=0, max=64)


@dataclass(frozen=True)
class AugmentConfig:
    """Random changes to training images only; val and test are never augmented."""

    flip: bool = _f(False, "random horizontal flip (off for digits and text-like images)")
    translate: float = _f(0.0, "random shift, as a fraction of the image size", min=0.0, max=0.5)
    rotate: float = _f(0.0, "random rotation, in degrees either way", min=0.0, max=180.0)
    color_jitter: float = _f(0.0, "random brightness/contrast/saturation strength (RGB)", min=0.0, max=1.0)
    fill: str = _f(
        "zeros", "what a shift or rotation uncovers: zeros (black), border (edge pixels) or reflection", choices=FILLS
    )


@dataclass(frozen=True)
class ModelConfig:
    """Which network to train."""

    arch: str = _f("mlp", "architecture", choices=ARCHS)
    hidden: list[int] = _f([128], "mlp: sizes of the hidden layers")
    dropout: float = _f(0.0, "dropout probability between hidden layers", min=0.0, max_exclusive=1.0)
    init: str = _f("default", "weight initialisation", choices=INITS)
    weights: str = _f(
        "", 'resnet18, mobilenet_v3_small: "imagenet" (downloaded once, cached) or a local .pth state dict'
    )
    widths: list[int] = _f([32, 64, 128], "cnn: channels of each conv-BN-ReLU stage (each stage halves the size)")
    patch_size: int = _f(0, "vit: patch side in pixels; 0 = about an eighth of the image side", min=0, max=64)
    depth: int = _f(6, "vit: transformer encoder layers", min=1, max=48)
    dim: int = _f(128, "vit: token width (a multiple of heads)", min=8, max=2048)
    heads: int = _f(4, "vit: attention heads", min=1, max=64)


@dataclass(frozen=True)
class TrainConfig:
    """How the network is optimised."""

    epochs: int = _f(5, "total epochs", min=1, max=100000)
    batch_size: int = _f(64, "samples per batch", min=1, max=1 << 20)
    lr: float = _f(0.001, "learning rate", min_exclusive=0.0, max=100.0)
    optimizer: str = _f("adam", "optimizer", choices=OPTIMIZERS)
    momentum: float = _f(0.9, "sgd: momentum", min=0.0, max_exclusive=1.0)
    nesterov: bool = _f(False, "sgd: Nesterov momentum")
    weight_decay: float = _f(0.0, "weight decay (L2), applied to weights only, never biases or norms", min=0.0)
    schedule: str = _f("none", "learning-rate schedule", choices=SCHEDULES)
    warmup_epochs: float = _f(0.0, "linear warmup from lr/10 over this many epochs", min=0.0)
    step_size: int = _f(10, "step schedule: epochs between decays", min=1)
    gamma: float = _f(0.1, "step schedule: decay factor", min_exclusive=0.0, max=1.0)
    clip_grad_norm: float = _f(0.0, "clip the global gradient norm to this; 0 = off", min=0.0)
    accumulate: int = _f(1, "batches whose gradients add up before each optimizer step", min=1, max=1024)
    loss: str = _f("auto", "loss function; auto = cross-entropy for classes, MSE for regression", choices=LOSSES)
    device: str = _f("auto", "auto | cpu | cuda | cuda:N | mps")
    precision: str = _f("fp32", "mixed precision on CUDA: bf16 or fp16", choices=PRECISIONS)
    patience: int = _f(0, "early stopping: epochs without val-loss improvement; 0 = off", min=0)
    min_delta: float = _f(0.0, "early stopping: the smallest improvement that counts", min=0.0)
    target_loss: float = _f(0.0, "stop once val loss (train loss without val) falls to this; 0 = off", min=0.0)
    log_every: int = _f(10, "optimizer steps between step records in metrics.jsonl", min=1, max=50)
    tensorboard: bool = _f(True, "also write TensorBoard event files live into the run folder (if installed)")
    log_every_s: float = _f(2.0, "also write a step record when this many seconds passed since the last", min=0.1)
    freeze_epochs: int = _f(
        1, "pretrained weights: epochs that train the new head alone, the backbone frozen (0 = none)", min=0
    )
    backbone_lr_scale: float = _f(
        0.1, "pretrained weights: the backbone's rate as a fraction of lr once it trains", min=0.0, max=1.0
    )
    nproc: int = _f(
        1, "processes that train the run together under DDP (through torchrun); 1 = one process", min=1, max=1024
    )


@dataclass(frozen=True)
class Config:
    """A whole run: seed plus the data, augment, model and train sections."""

    seed: int = _f(0, "seed for splits, initialisation and data order", min=0, max=SEED_MAX)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace_value(self, dotted: str, value: Any) -> Config:
        """Return a copy with one key (`section.key` or a top-level key) set and validated."""
        raw = self.to_dict()
        section, _, key = dotted.rpartition(".")
        (raw[section] if section else raw)[key] = value
        return config_from_dict(raw)


_SECTION_TYPES = {"data": DataConfig, "augment": AugmentConfig, "model": ModelConfig, "train": TrainConfig}


def _suggest(name: str, options: list[str]) -> str:
    near = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"; did you mean '{near[0]}'?" if near else ""


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _coerce(where: str, tp: Any, value: Any) -> Any:
    """Check `value` against the field type; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list of {_type_name(item)}s (got {value!r})")
        return [_coerce(f"{where}[{i}]", item, v) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise TypeError("unions are not used in the config")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false (got {value!r})")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer (got {value!r})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number (got {value!r})")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string (got {value!r})")
        return value
    raise TypeError(f"unsupported config type {tp}")


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _check_limits(where: str, value: Any, meta: dict[str, Any]) -> None:
    values = value if isinstance(value, list) else [value]
    for v in values:
        if "choices" in meta and v not in meta["choices"]:
            raise ConfigError(
                f"{where} must be one of {', '.join(meta['choices'])} "
                f"(got {v!r}){_suggest(str(v), list(meta['choices']))}"
            )
        for key, op, ok in (
            ("min", ">=", lambda a, b: a >= b),
            ("min_exclusive", ">", lambda a, b: a > b),
            ("max", "<=", lambda a, b: a <= b),
            ("max_exclusive", "<", lambda a, b: a < b),
        ):
            if key in meta and not ok(v, meta[key]):
                raise ConfigError(f"{where} must be {op} {_num(meta[key])} (got {_num(v)})")


def _build_section(cls: type, raw: Any, name: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table of keys (got {raw!r})")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"unknown key '{key}' in [{name}]{_suggest(key, list(fields))}")
        where = f"[{name}] {key}"
        value = _coerce(where, hints[key], value)
        _check_limits(where, value, dict(fields[key].metadata))
        values[key] = value
    return cls(**values)


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a `Config` from plain TOML-like data; raises `ConfigError`."""
    raw = dict(raw)
    top_keys = ["seed", *_SECTION_TYPES]
    for key in raw:
        if key not in top_keys:
            all_keys = top_keys + [k for c in _SECTION_TYPES.values() for k in (f.name for f in dataclasses.fields(c))]
            hint = _suggest(key, all_keys)
            if key in {f.name for c in _SECTION_TYPES.values() for f in dataclasses.fields(c)}:
                owner = next(s for s, c in _SECTION_TYPES.items() if key in {f.name for f in dataclasses.fields(c)})
                hint = f"; it belongs in [{owner}]"
            raise ConfigError(f"unknown key '{key}' at the top level{hint}")
    seed = _coerce("seed", int, raw.get("seed", 0))
    _check_limits("seed", seed, dict(next(f for f in dataclasses.fields(Config) if f.name == "seed").metadata))
    sections = {name: _build_section(cls, raw.get(name, {}), name) for name, cls in _SECTION_TYPES.items()}
    cfg = Config(seed=seed, **sections)
    _check_consistency(cfg)
    return cfg


def _check_consistency(cfg: Config) -> None:
    d, m, t = cfg.data, cfg.model, cfg.train
    if d.val_split + d.test_split >= 1.0:
        raise ConfigError(f"[data] val_split + test_split must be below 1 (got {d.val_split} + {d.test_split})")
    if d.source in ("folder", "csv") and not d.path:
        raise ConfigError(f"[data] path is required for source '{d.source}'")
    if d.source in ("folder", "csv") and d.path and not Path(d.path).expanduser().exists():
        raise ConfigError(f"[data] path: '{d.path}' does not exist")
    if d.channels == 2:
        raise ConfigError("[data] channels must be 0, 1 or 3 (got 2)")
    if m.arch == "mlp" and not m.hidden:
        raise ConfigError("[model] hidden must list at least one layer size for the mlp")
    if any(h < 1 for h in m.hidden):
        raise ConfigError(f"[model] hidden sizes must be >= 1 (got {m.hidden})")
    if m.weights == "imagenet" and m.arch not in PRETRAINED_ARCHS:
        raise ConfigError(f"[model] weights = \"imagenet\" is for {' and '.join(PRETRAINED_ARCHS)}, not '{m.arch}'")
    if m.weights and m.weights != "imagenet" and not Path(m.weights).expanduser().is_file():
        raise ConfigError(f"[model] weights: '{m.weights}' is not a file (or \"imagenet\" for torchvision's)")
    if any(w < 1 for w in m.widths) or (m.arch == "cnn" and not m.widths):
        raise ConfigError(f"[model] widths must list at least one stage of >= 1 channels for the cnn (got {m.widths})")
    if m.dim % m.heads:
        raise ConfigError(f"[model] dim ({m.dim}) must be a multiple of heads ({m.heads}) for the vit")
    if not _valid_device(t.device):
        raise ConfigError(f"[train] device must be auto, cpu, cuda, cuda:N or mps (got {t.device!r})")


def _valid_device(name: str) -> bool:
    if name in ("auto", "cpu", "cuda", "mps"):
        return True
    return name.startswith("cuda:") and name[5:].isdigit()


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a TOML file into a validated `Config`; every problem raises `ConfigError` naming the file."""
    path = Path(path)
    if not path.is_file() and path.parts[:1] == ("examples",):
        # `studio train examples/digits.toml` works from anywhere: the examples ship with studio.
        from studio.resources import resource_path

        bundled = resource_path(*path.parts)
        path = bundled if bundled.is_file() else path
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    base = path.parent
    data = raw.get("data")
    # A relative data path means relative to the config file, so configs travel with their data.
    if isinstance(data, dict) and isinstance(data.get("path"), str) and data["path"]:
        p = Path(data["path"]).expanduser()
        if not p.is_absolute() and not p.exists():
            data["path"] = str(base / p)
    # Overrides go into the raw table before validation, so `--set data.path=...` can fix a bad path.
    try:
        raw = _apply_overrides(raw, overrides or [])
    except ConfigError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _parse_value(text: str) -> Any:
    """Parse a --set value as a TOML value, falling back to a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `--set section.key=value` overrides; values are TOML (`[64, 32]`, `true`, `"x"`)."""
    return config_from_dict(_apply_overrides(cfg.to_dict(), overrides))


def _apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each `KEY=VALUE` in a copy of plain config data (validation comes after)."""
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.lr=0.01")
        section, _, name = key.rpartition(".")
        if section:
            if section not in _SECTION_TYPES:
                raise ConfigError(f"--set {key}: unknown section '{section}'{_suggest(section, list(_SECTION_TYPES))}")
            table = raw.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--set {key}: [{section}] is not a table")
            table[name] = _parse_value(text.strip())
        else:
            raw[name] = _parse_value(text.strip())
    return raw


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def config_to_toml(cfg: Config) -> str:
    """Serialise a config to TOML text (every key, so a run's config.toml is complete)."""
    return tomli_w.dumps(_drop_empty(cfg.to_dict()))


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the config as TOML, atomically."""
    atomic_write_text(Path(path), config_to_toml(cfg))


def field_specs(section: str) -> list[tuple[str, type, Any, dict[str, Any]]]:
    """(name, type, default, metadata) for each field of a section, in order: the GUI's form rows."""
    cls = _SECTION_TYPES[section]
    hints = typing.get_type_hints(cls)
    default = cls()
    return [(f.name, hints[f.name], getattr(default, f.name), dict(f.metadata)) for f in dataclasses.fields(cls)]
