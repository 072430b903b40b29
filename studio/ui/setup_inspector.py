"""`SetupInspector`: the data summary line and the live parameter count, computed off the GUI thread.

Loading a data set or building a ResNet can take a while, so both run in a `BackgroundCall`; a
newer setup cancels the call still inspecting an older one (it stops before building the model,
and what it would say is dropped). Sources that would download are not touched here: their
summary arrives when training starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from studio.config import Config
from studio.errors import StudioError
from studio.ui.background_call import BackgroundCall, TaskState

DOWNLOAD_SOURCES = ("mnist", "fashion-mnist", "cifar10")


@dataclass(frozen=True)
class Inspection:
    generation: int
    data_summary: str
    data_error: bool
    param_count: int | None
    model_detail: str
    task: str | None
    flops: int | None = None  # one forward pass on one sample (models.cost)
    hint: str = ""  # e.g. propose pretrained weights for an image folder, or how to get them
    num_train: int | None = None  # training samples, when the data loaded


class SetupInspector(QObject):
    """Call `inspect(config)` after each setup change; `inspected(Inspection)` follows."""

    inspected = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._generation = 0
        self._lock = threading.Lock()  # the cache is shared by an older call still running and a newer one
        self._cache: dict[str, Any] = {}  # data key -> (spec, summary) or DataError text
        self.enabled = False  # set once torch is imported on the GUI thread
        self._call: BackgroundCall | None = None

    def inspect(self, cfg: Config) -> int:
        self._generation += 1
        gen = self._generation
        if not self.enabled:
            return gen
        self.cancel()
        call = BackgroundCall(lambda state: self._run(gen, cfg, state))
        call.succeeded.connect(self._on_inspected)  # a bound method: dropped if this object goes first
        self._call = call.start()
        return gen

    def cancel(self) -> None:
        """Drop the inspection under way (a newer setup, or the window closing)."""
        if self._call is not None and self._call.is_running():
            self._call.cancel()

    def _on_inspected(self, result: Inspection | None) -> None:
        if result is not None and result.generation == self._generation:
            self.inspected.emit(result)

    def _data_key(self, cfg: Config) -> str:
        return repr((cfg.seed, cfg.data))

    def _run(self, gen: int, cfg: Config, state: TaskState) -> Inspection | None:
        key = self._data_key(cfg)
        spec = None
        num_train: int | None = None
        error = False
        if cfg.data.source in DOWNLOAD_SOURCES:
            summary = f"{cfg.data.source}: downloads on first use; the summary appears when training starts"
        else:
            with self._lock:
                cached = self._cache.get(key)
            if cached is None:
                try:
                    from studio.data import load_data

                    bundle = load_data(cfg)
                    cached = (bundle.spec, _describe(bundle), len(bundle.train))
                except StudioError as exc:
                    cached = str(exc)
                except Exception as exc:  # noqa: BLE001 - a summary line must never take the app down
                    cached = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self._cache = {key: cached}  # keep one: data sets can be large
            if isinstance(cached, str):
                summary, error = cached, True
            else:
                spec, summary, num_train = cached
        count, detail, task, flops = None, "", None, None
        hint = _pretrained_hint(cfg)
        if state.is_interruption_requested():
            return None  # a newer setup is being inspected: building this model would be wasted
        if spec is not None:
            task = spec.task
            try:
                from studio.models import build_model, param_count, shape_summary
                from studio.models.cost import flops_per_image

                model = build_model(cfg.model, spec, load_weights=False)  # counting needs no download
                count, detail = param_count(model), shape_summary(model, spec)
                flops = flops_per_image(model, spec, cfg.model)
            except StudioError as exc:
                detail = str(exc)
            except Exception as exc:  # noqa: BLE001 - a summary line must never take the app down
                detail = f"{type(exc).__name__}: {exc}"
        return Inspection(gen, summary, error, count, detail, task, flops, hint, num_train)


def _pretrained_hint(cfg: Config) -> str:
    try:
        from studio.models.pretrained import pretrained_hint

        return pretrained_hint(cfg.model.arch, cfg.model.weights, cfg.data.source)
    except Exception:  # noqa: BLE001 - a hint line must never take the inspection down
        return ""


def _describe(bundle: Any) -> str:
    spec = bundle.spec
    if spec.kind == "image":
        c, h, w = spec.input_shape
        what = f"{len(spec.labels)} classes · {h}×{w} {'grey' if c == 1 else 'RGB'}"
    elif spec.task == "classification":
        what = f"{len(spec.labels)} classes · {_features(spec.input_shape[0])}"
    else:
        what = f"regression · {_features(spec.input_shape[0])}"
    counts = f"{len(bundle.train):,} train / {len(bundle.val):,} val / {len(bundle.test):,} test"
    return f"{what}\n{counts}"


def _features(n: int) -> str:
    return f"{n} feature" if n == 1 else f"{n} features"
