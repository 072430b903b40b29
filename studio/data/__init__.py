"""Data sources: `load_data(config)` returns a `DataBundle` of in-memory splits and a `DataSpec`.

Each source module builds its bundle with `studio.data.bundles` (split, statistics, spec); this
package only picks the source a config names (`LOADERS`), importing it when it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from studio.config import Config
from studio.data.base import DataBundle, DataSpec, Split
from studio.data.bundles import bundle_from_arrays, feature_stats, finish_bundle, image_stats
from studio.errors import DataError

__all__ = [
    "LOADERS",
    "DataBundle",
    "DataSpec",
    "Split",
    "bundle_from_arrays",
    "feature_stats",
    "finish_bundle",
    "image_stats",
    "load_data",
    "task_decision",
]


def _load_digits(config: Config) -> DataBundle:
    from studio.data.digits import load_digits

    x, y, labels = load_digits()
    return bundle_from_arrays(config, x, y, kind="image", task="classification", labels=labels)


def _load_linear(config: Config) -> DataBundle:
    from studio.data.synthetic import make_line

    x, y = make_line(config.seed)
    return bundle_from_arrays(config, x, y, kind="tabular", task="regression", feature_names=("x",))


def _load_csv(config: Config) -> DataBundle:
    from studio.data.tabular import encode_target, load_table

    d = config.data
    path = Path(d.path).expanduser()
    if path.is_dir():
        raise DataError(f"[data] path '{d.path}' is a folder; the csv source needs a CSV file")
    table = load_table(path, d.target, d.blank_cells)
    task, reason = _task_from_cells(table.target, d.task)
    y, labels = encode_target(table.target, task, path, d.target, table.lines)
    bundle = bundle_from_arrays(
        config,
        table.features,
        y,
        kind="tabular",
        task=task,
        labels=labels,
        feature_names=table.feature_names,
        warnings=table.warnings,
    )
    bundle.task_reason = reason
    return bundle


def _task_from_cells(cells: list[str], configured: str) -> tuple[str, str]:
    from studio.data.tabular import decide_task

    if configured != "auto":
        return configured, f'[data] task = "{configured}" in the config'
    task, reason = decide_task(cells)
    flip = "regression" if task == "classification" else "classification"
    return task, f'{reason} (set [data] task = "{flip}" to change it)'


# The task of the sources whose task is not a choice, and why (`task_decision`).
FIXED_TASKS = {
    "linear": ("regression", "the synthetic line is a quantity (y = 2x + 1 + noise)"),
}


def task_decision(config: Config) -> tuple[str, str]:
    """(task, reason): classification or regression for this config, and why, for the setup to show.

    A CSV target is read and decided as `load_data` decides it (`tabular.decide_task`), or as
    `[data] task` sets it; image sources are classes (one per folder or label). Bad data raises
    `DataError`, as loading it would.
    """
    d = config.data
    if d.source == "csv":
        from studio.data.tabular import load_table

        path = Path(d.path).expanduser()
        if path.is_dir():
            raise DataError(f"[data] path '{d.path}' is a folder; the csv source needs a CSV file")
        return _task_from_cells(load_table(path, d.target, d.blank_cells).target, d.task)
    if d.source in FIXED_TASKS:
        return FIXED_TASKS[d.source]
    return "classification", f"{d.source} images each have a class label"


def _load_folder(config: Config) -> DataBundle:
    from studio.data.folder import load_folder

    return load_folder(config)


def _load_torchvision(config: Config) -> DataBundle:
    from studio.data.torchvision_sets import load_torchvision_set

    return load_torchvision_set(config)


# One loader per `data.source`; image sources add theirs here.
LOADERS: dict[str, Callable[[Config], DataBundle]] = {
    "digits": _load_digits,
    "linear": _load_linear,
    "csv": _load_csv,
    "folder": _load_folder,
    "mnist": _load_torchvision,
    "fashion-mnist": _load_torchvision,
    "cifar10": _load_torchvision,
}


def load_data(config: Config) -> DataBundle:
    """Load and split the configured data set; bad data raises `DataError` saying what and where."""
    bundle = LOADERS[config.data.source](config)
    if config.train.batch_size > len(bundle.train):
        bundle.warnings.append(
            f"batch size {config.train.batch_size} is larger than the "
            f"{len(bundle.train)} training samples; each epoch is one batch"
        )
    return bundle
