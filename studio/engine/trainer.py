"""The training loop: `Trainer(config, run_dir, callbacks=[...]).fit()`.

Reads top to bottom: set up (data, model, optimizer, maybe a checkpoint to resume), then for each
epoch `_train_one_epoch` and `evaluate`, checkpoints and stop decisions, and finally the test
split and `summary.json`, which is written on every ending, including errors and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from studio.config import Config, config_from_dict, save_config
from studio.data import DataBundle, load_data
from studio.data.augment import build_augment
from studio.data.batches import epoch_order, make_batches
from studio.engine import checkpoint as ckpt
from studio.engine.callbacks import call
from studio.engine.control import TrainingControl
from studio.engine.device import cpu_threads, device_name, resolve_device
from studio.engine.early_stopping import EarlyStopping
from studio.engine.evaluate import compute_loss, evaluate, loss_scale
from studio.engine.events import EpochEnd, EpochStart, FitEnd, FitStart, Message, RunStatus, ValidationEnd
from studio.engine.interrupts import DeferredInterrupt
from studio.engine.optim import build_loss, build_optimizer
from studio.engine.records import EpochRecord, Record, StepRecord
from studio.engine.run_dir import MetricsFile, RunDir
from studio.engine.schedule import lr_factor
from studio.errors import CheckpointError, ConfigError, StudioError
from studio.files import WriteError, write_error
from studio.models import StudioModel, build_model, param_count, shape_summary
from studio.models.memory import check_fits


class TrainingFailed(Exception):
    """Training could not go on (a non-finite loss); the message says why and what to try."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def _generator_states(device: torch.device) -> dict[str, Any]:
    """The generators a step draws from: the CPU's (augmentation) and the training device's (dropout)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = (device, torch.cuda.get_rng_state(device))
    return state


def _set_generator_states(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        device, rng = state["cuda"]
        torch.cuda.set_rng_state(rng, device)


class RunningSums:
    """Loss, hits and sample counts of the current log window and of the epoch's earlier windows.

    They are loop state like the step counter: a checkpoint holds them, so a run resumed in the
    middle of an epoch reports the same epoch averages and step records as one that never stopped.
    They stay on the device; they are read (a sync) once per log interval, when the window closes
    into the epoch's sums. A non-finite loss shows in the window's sum; the window's per-step sums
    then tell which step it was.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        zero = torch.zeros((), device=device, dtype=torch.float64)
        self.loss, self.correct, self.n = zero.clone(), zero.clone(), 0  # closed windows of this epoch
        self.win_loss, self.win_correct, self.win_n = zero.clone(), zero.clone(), 0
        self._win_steps: list[tuple[int, torch.Tensor]] = []  # (step number, its loss sum)
        self._bad_step: int | None = None  # from a checkpoint saved with a non-finite step in its window

    def add(self, step: "StepInFlight", number: int) -> None:
        assert step.loss is not None
        self.win_loss += step.loss
        if step.correct is not None:
            self.win_correct += step.correct
        self.win_n += step.count
        self._win_steps.append((number, step.loss))

    def first_bad_step(self) -> int | None:
        """The first step of the window whose loss was nan or inf (a sync; read it at a log point)."""
        if self._bad_step is not None:
            return self._bad_step
        if not self._win_steps:
            return None
        finite = torch.isfinite(torch.stack([loss for _, loss in self._win_steps])).tolist()
        return next((number for (number, _), ok in zip(self._win_steps, finite) if not ok), None)

    def close_window(self) -> None:
        self.loss += self.win_loss
        self.correct += self.win_correct
        self.n += self.win_n
        self.win_loss.zero_()
        self.win_correct.zero_()
        self.win_n = 0
        self._win_steps.clear()
        self._bad_step = None

    def reset_epoch(self) -> None:
        self.close_window()
        self.loss.zero_()
        self.correct.zero_()
        self.n = 0

    def epoch_totals(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The epoch's sums so far, including the open window."""
        return self.loss + self.win_loss, self.correct + self.win_correct, self.n + self.win_n

    def state_dict(self) -> dict[str, Any]:
        # float64 and Python floats convert exactly, so a resumed sum continues bit for bit.
        bad = self.first_bad_step()
        return {"loss": float(self.loss), "correct": float(self.correct), "n": self.n,
                "win_loss": float(self.win_loss), "win_correct": float(self.win_correct), "win_n": self.win_n,
                "bad_step": -1 if bad is None else bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        f64 = {"device": self.device, "dtype": torch.float64}
        self.loss, self.correct = torch.tensor(float(state["loss"]), **f64), torch.tensor(float(state["correct"]), **f64)
        self.win_loss = torch.tensor(float(state["win_loss"]), **f64)
        self.win_correct = torch.tensor(float(state["win_correct"]), **f64)
        self.n, self.win_n = int(state["n"]), int(state["win_n"])
        self._win_steps = []
        self._bad_step = int(state["bad_step"]) if int(state["bad_step"]) >= 0 else None


@dataclass
class StepInFlight:
    """One optimizer step from its first batch to its commit: what undoing or finishing it needs.

    Until the optimizer applies the update, nothing of the step is in the weights: an interrupt
    undoes it (the generators go back to `rng`, live changes to `base_lr`/`batch_size`). Once
    `updated` is set, the step is finished instead, by the same `_commit_step` the loop calls.
    """

    epoch: int
    n: int  # samples in the epoch
    pos: int  # position in the epoch after the batches taken so far
    rng: dict[str, Any]  # generator states before the step's first batch
    base_lr: float  # before this step's live changes
    batch_size: int
    loss: torch.Tensor | None = None  # float64 loss sum over the step's batches, on the device
    correct: torch.Tensor | None = None  # hits over the step's batches (classification)
    count: int = 0
    changed: dict[str, Any] = field(default_factory=dict)
    lr: float = 0.0
    log_now: bool = False
    grad_norm: torch.Tensor | None = None
    updated: bool = False  # the optimizer has applied this step's update to the weights

    def add_batch(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor, classify: bool) -> None:
        bs = int(y.shape[0])
        self.pos += bs
        self.count += bs
        total = loss.detach().double() * bs
        self.loss = total if self.loss is None else self.loss + total
        if classify:
            hits = (out.detach().argmax(dim=1) == y).sum()
            self.correct = hits if self.correct is None else self.correct + hits


class Trainer:
    """Trains one run into `run_dir`; steer it from another thread through `control`.

    `resume=True` continues from `run_dir/checkpoints/last.pt` (the config's `train.epochs` may be
    higher than before; an edited `train.lr` or `train.batch_size` applies from the first step, as a
    live change recorded in metrics.jsonl). `data` lets a caller reuse an already loaded `DataBundle`.

    One process at a time trains a run directory: `fit` holds its lock (`studio.engine.locking`)
    from start to end, and a second trainer on the same folder gets `FolderInUse`.
    """

    def __init__(self, config: Config, run_dir: str | Path, callbacks: list[Any] | tuple = (),
                 control: TrainingControl | None = None, *, resume: bool = False,
                 data: DataBundle | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.files = RunDir(self.run_dir)
        self.callbacks = list(callbacks)
        self.control = control or TrainingControl()
        self.resume = resume
        self.data = data
        self.status = RunStatus.FAILED
        self.reason: str | None = None
        self.model: StudioModel | None = None
        self._metrics: MetricsFile | None = None
        self._interrupts = DeferredInterrupt()
        self._in_flight: StepInFlight | None = None
        self._unwritten: list[Record] = []  # records of committed state, not yet in metrics.jsonl
        self._best_unsaved = False  # the epoch just committed is the best: best.pt is due
        self._resume_edits: dict[str, Any] = {}
        self._saved_last: tuple[int, int] | None = None  # (epoch, step) of the last.pt on disk

    # -- events --------------------------------------------------------------------------------

    def emit(self, name: str, event: Any) -> None:
        call(self.callbacks, self, name, event)

    def message(self, text: str, level: str = "info") -> None:
        self.emit("message", Message(text, level))

    def _record(self, record: Record) -> None:
        if self._metrics is not None:
            self._metrics.write(record)

    # -- set-up --------------------------------------------------------------------------------

    def _load_resume_state(self) -> dict[str, Any]:
        """Load last.pt and refuse a config the checkpoint cannot continue; nothing is written here."""
        state = ckpt.load_checkpoint(self.files.checkpoint("last"))
        try:
            saved = config_from_dict(state["config"])
        except (ConfigError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{self.run_dir}: the checkpoint's config is unreadable ({exc})") from None
        cfg = self.config
        if saved.seed != cfg.seed:
            raise CheckpointError(f"{self.run_dir}: seed is {cfg.seed} in the config but the run was trained with "
                                  f"{saved.seed}; resume needs the same seed (it decides the splits and the "
                                  "data order)")
        for section in ("data", "model", "augment"):
            old, new = getattr(saved, section).__dict__, getattr(cfg, section).__dict__
            for key in old:
                if old[key] != new[key]:
                    raise CheckpointError(
                        f"{self.run_dir}: [{section}] {key} is {_toml_value(new[key])} in the config but the "
                        f"checkpoint was trained with {_toml_value(old[key])}; resume needs the same data and "
                        "model (set it back, or start a new run with `studio train`)")
        # The optimizer's state and settings come back from the checkpoint; a different optimizer
        # cannot take them, and different settings would silently not apply.
        keys = ["optimizer", "weight_decay"] + (["momentum", "nesterov"] if saved.train.optimizer == "sgd" else [])
        for key in keys:
            old, new = getattr(saved.train, key), getattr(cfg.train, key)
            if old != new:
                raise CheckpointError(
                    f"{self.run_dir}: [train] {key} is {_toml_value(new)} in the config but the checkpoint's "
                    f"optimizer state was trained with {_toml_value(old)}; resume needs the same optimizer "
                    f"settings (set it back to {_toml_value(old)}, or start a new run with `studio train`)")
        # A changed rate or batch size is applied from the first step, as a recorded live change.
        self._resume_edits = {key: getattr(cfg.train, key) for key in ("lr", "batch_size")
                              if getattr(saved.train, key) != getattr(cfg.train, key)}
        return state

    def _setup(self) -> dict[str, Any] | None:
        cfg = self.config
        if not self.resume and self.files.checkpoint("last").exists():
            raise CheckpointError(f"'{self.run_dir}' already holds a run; resume it or choose another folder")
        resume_state = self._load_resume_state() if self.resume else None
        seed_everything(cfg.seed)
        self.bundle = self.data or load_data(cfg)
        for w in self.bundle.warnings:
            self.message(w, "warning")
        self.spec = self.bundle.spec
        self.device = resolve_device(cfg.train.device)
        if self.device.type == "cpu" and torch.get_num_threads() != cpu_threads():
            torch.set_num_threads(cpu_threads())  # see cpu_threads: one core stays free
        check_fits(cfg, self.spec, self.device)  # refuse, with the estimate, what the kernel would kill
        torch.manual_seed(cfg.seed)  # the same init whatever loading the data drew
        self.model = build_model(cfg.model, self.spec).to(self.device)
        self.optimizer = build_optimizer(self.model, cfg.train)
        # Marks the moment the update is in the weights, even if something interrupts the step after it.
        self.optimizer.register_step_post_hook(self._on_update_applied)
        self.loss_fn = build_loss(cfg.train.loss, self.spec.task)
        self.amp_dtype = None
        if cfg.train.precision != "fp32":
            if self.device.type == "cuda":
                self.amp_dtype = torch.bfloat16 if cfg.train.precision == "bf16" else torch.float16
            else:
                self.message(f"mixed precision ({cfg.train.precision}) needs CUDA; training in fp32", "warning")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        workers = cfg.data.num_workers
        self.train_src = make_batches(self.bundle.train, self.device, build_augment(cfg, self.spec, self.device),
                                      workers)
        self.val_src = make_batches(self.bundle.val, self.device, None, workers) if len(self.bundle.val) else None
        self.test_src = make_batches(self.bundle.test, self.device, None, workers) if len(self.bundle.test) else None

        # Loop state; a checkpoint replaces it when resuming.
        self.epochs_done = 0  # completed epochs
        self.pos = 0  # samples of the current epoch already trained on
        self.step = 0  # optimizer steps
        self.base_lr = cfg.train.lr
        self.batch_size = cfg.train.batch_size
        self.sums = RunningSums(self.device)
        self.elapsed_before = 0.0
        self.best_loss, self.best_epoch = math.inf, None
        self.early = EarlyStopping(cfg.train.patience, cfg.train.min_delta)
        self.last_metrics: dict[str, float | None] = {}
        if resume_state is not None:
            self._restore(resume_state)
        self._start_epoch = self.epochs_done + 1
        return resume_state

    def _restore(self, state: dict[str, Any]) -> None:
        assert self.model is not None
        try:
            self.model.load_state_dict(state["model"], strict=True)
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{self.run_dir}: checkpoint does not fit this model "
                                  f"({str(exc).splitlines()[0][:160]})") from None
        try:
            if "scaler" in state and state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            self.epochs_done, self.pos, self.step = int(state["epoch"]), int(state["pos"]), int(state["step"])
            self.base_lr, self.batch_size = float(state["base_lr"]), int(state["batch_size"])
            self.elapsed_before = float(state.get("elapsed", 0.0))
            self.best_loss = float(state["best_loss"]) if state.get("best_loss") is not None else math.inf
            self.best_epoch = state.get("best_epoch")
            self.early.load_state_dict(state["early_stopping"])
            self.last_metrics = dict(state.get("last_metrics") or {})
            if state.get("sums") is not None:  # checkpoints before the sums were saved start them at zero
                self.sums.load_state_dict(state["sums"])
            ckpt.set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{self.run_dir}: checkpoint 'last.pt' is incomplete or damaged "
                                  f"({type(exc).__name__}: {str(exc)[:120]})") from None
        if not (0 <= self.pos and 0 <= self.step and 0 <= self.epochs_done):
            raise CheckpointError(f"{self.run_dir}: checkpoint 'last.pt' holds an impossible position")
        self._saved_last = (self.epochs_done, self.step)
        for key, value in self._resume_edits.items():
            (self.control.set_lr if key == "lr" else self.control.set_batch_size)(value)
            self.message(f"config.toml sets [train] {key} = {value:g}; the run was at "
                         f"{self.base_lr if key == 'lr' else self.batch_size:g}: applied from step {self.step + 1} "
                         "and recorded in metrics.jsonl", "info")

    def _checkpoint_state(self) -> dict[str, Any]:
        assert self.model is not None
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": {"kind": self.config.train.schedule, "base_lr": self.base_lr},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "epoch": self.epochs_done, "pos": self.pos, "step": self.step,
            "base_lr": self.base_lr, "batch_size": self.batch_size, "sums": self.sums.state_dict(),
            "elapsed": self.elapsed(), "best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
            "best_epoch": self.best_epoch, "early_stopping": self.early.state_dict(),
            "last_metrics": self.last_metrics, "rng": ckpt.rng_state(),
            "config": self.config.to_dict(), "spec": _spec_dict(self.spec),
        }

    def save(self, which: str = "last") -> None:
        ckpt.save_checkpoint(self.files.checkpoint(which), self._checkpoint_state())
        if which == "last":
            self._saved_last = (self.epochs_done, self.step)

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._t0)

    # -- the run -------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train to the configured number of epochs (or a stop); return the summary dict."""
        self._t0 = time.perf_counter()
        with self._run_dir_locked():
            resume_state = self._setup()  # every check that can refuse the run, before the run dir is touched
            self._prepare_run_dir(resume_state)
            cfg, model = self.config, self.model
            assert model is not None
            self.emit("fit_start", FitStart(
                run_dir=str(self.run_dir), epochs=cfg.train.epochs, start_epoch=self.epochs_done + 1,
                device=str(self.device), device_name=device_name(self.device), task=self.spec.task,
                labels=self.spec.labels, param_count=param_count(model),
                model_summary=shape_summary(model, self.spec), num_train=len(self.bundle.train),
                num_val=len(self.bundle.val), num_test=len(self.bundle.test), resumed=resume_state is not None,
                step=self.step))
            self.message(f"{self.bundle.summary()}")
            self.message(f"model {cfg.model.arch}: {param_count(model):,} parameters; "
                         f"{shape_summary(model, self.spec)}")
            self.message(f"device {device_name(self.device)}; run directory {self.run_dir}")
            error: str | None = None
            try:
                with self._interrupts:
                    self._loop()
            except KeyboardInterrupt:
                self.status, self.reason = RunStatus.STOPPED, "interrupted (Ctrl-C)"
                self._save_after_interrupt()
                raise
            except TrainingFailed as exc:
                self.status, self.reason, error = RunStatus.FAILED, str(exc), str(exc)
                raise
            except WriteError as exc:
                self.status = RunStatus.FAILED
                error = self.reason = f"{exc}; {self._kept_checkpoint()}"
                raise WriteError(error) from None
            except BaseException as exc:
                self.status = RunStatus.FAILED
                error = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
                self.reason = error
                raise
            finally:
                summary = self._finish(error)
        return summary

    @contextlib.contextmanager
    def _run_dir_locked(self) -> Iterator[None]:
        """Hold the run directory's lock for the whole fit; folders this call made go again if the run never began."""
        made = []  # the run directory and any missing parents, deepest first
        folder = self.run_dir
        while not folder.exists() and folder != folder.parent:
            made.append(folder)
            folder = folder.parent
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(exc, self.run_dir, f"the run directory '{self.run_dir.name}'") from None
        lock = self.files.lock()
        try:
            lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            if self._metrics is None:  # nothing of a run was written: leave the disk as it was
                for path in made:
                    try:
                        path.rmdir()
                    except OSError:
                        break

    def _prepare_run_dir(self, resume_state: dict[str, Any] | None) -> None:
        # We hold the lock, so temp files of our names are left by a killed run, never by a live one.
        files = self.files
        files.remove_stale_temp_files()
        try:
            files.checkpoints.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(exc, files.checkpoint("last"), "the checkpoints folder") from None
        save_config(self.config, files.config)
        if resume_state is not None:
            files.truncate_metrics(self.step, self.epochs_done)
        elif files.metrics.exists():
            files.metrics.unlink()
        self._metrics = files.open_metrics()

    def _kept_checkpoint(self) -> str:
        if self._saved_last is None:
            return "no checkpoint had been saved yet"
        epoch, step = self._saved_last
        return f"the last good checkpoint (epoch {epoch}, step {step}) is kept"

    def _loop(self) -> None:
        cfg = self.config.train
        self.status = RunStatus.COMPLETED
        self._loop_t0 = time.perf_counter()
        while self.epochs_done < cfg.epochs:
            epoch = self.epochs_done + 1
            self.emit("epoch_start", EpochStart(epoch, cfg.epochs))
            train = self._train_one_epoch(epoch)
            if train is None:  # stopped mid-epoch
                self.status, self.reason = RunStatus.STOPPED, "stopped by the user"
                self.save("last")
                return
            val = evaluate(self.model, self.val_src, self.loss_fn, self.spec, cfg.loss)
            # The epoch's end, its records and its checkpoints happen together: a Ctrl-C waits for them.
            with self._interrupts.held():
                is_best, stop, reason = self._commit_epoch(epoch, train, val)
                self._write_records()
                self._save_checkpoints()
            if val["loss"] is not None:
                self.emit("validation_end", ValidationEnd(epoch, "val", val["loss"], val["accuracy"]))
            per_epoch = (time.perf_counter() - self._loop_t0) / max(epoch - self._start_epoch + 1, 1)
            self.emit("epoch_end", EpochEnd(epoch, cfg.epochs, self.step, self.elapsed(), dict(self.last_metrics),
                                            self.best_epoch, is_best, per_epoch * (cfg.epochs - epoch),
                                            records=self._epoch_records))
            if stop:
                self.status, self.reason = RunStatus.EARLY_STOPPED, reason
                self.message(f"early stop: {reason}")
                return
            if self.control.stop_requested:
                self.status, self.reason = RunStatus.STOPPED, "stopped by the user"
                return

    def _commit_epoch(self, epoch: int, train: dict[str, Any], val: dict[str, Any]) -> tuple[bool, bool, str | None]:
        """The one place an epoch ends: counters, metrics, best and early stopping move together."""
        cfg = self.config.train
        watched = val["loss"] if val["loss"] is not None else train["loss"]
        watched = math.inf if watched is None else watched
        is_best = watched < self.best_loss
        stop, reason = self.early.update(watched, epoch) if cfg.patience else (False, None)
        if is_best:
            self.best_loss, self.best_epoch = watched, epoch
            self._best_unsaved = True
        if cfg.target_loss > 0 and watched <= cfg.target_loss and not stop:
            which = "val" if val["loss"] is not None else "train"
            stop, reason = True, f"{which} loss {watched:.4g} reached the target {cfg.target_loss:g}"
        self.epochs_done, self.pos = epoch, 0
        self.sums.reset_epoch()
        self.last_metrics = {"train_loss": train["loss"], "train_accuracy": train["accuracy"],
                             "val_loss": val["loss"], "val_accuracy": val["accuracy"]}
        self._epoch_records = (self._epoch_record(epoch, "train", train),) + (
            (self._epoch_record(epoch, "val", val),) if val["loss"] is not None else ())
        self._unwritten.extend(self._epoch_records)
        return is_best, stop, reason

    def _save_checkpoints(self) -> None:
        self.save("last")
        if self._best_unsaved:
            self.save("best")
            self._best_unsaved = False

    def _write_records(self) -> None:
        """Append the records of committed state that metrics.jsonl does not have yet."""
        while self._unwritten:
            record = self._unwritten[0]
            if self._metrics is not None and not self._metrics.holds(record):
                self._metrics.write(record)
            self._unwritten.pop(0)

    def _save_after_interrupt(self) -> None:
        """After Ctrl-C: settle the step in flight, then write what the committed state owes to disk."""
        step = self._in_flight
        if step is not None and step.updated:
            try:  # the update is in the weights: finish the step's bookkeeping, as the loop would have
                self._commit_step()
            except TrainingFailed as exc:  # that update made the weights non-finite: keep the last good files
                self.reason = f"interrupted (Ctrl-C); {exc}"
                return
        elif step is not None:  # nothing of the step reached the weights: undo what it drew and changed
            _set_generator_states(step.rng)
            self.base_lr, self.batch_size = step.base_lr, step.batch_size
            self._in_flight = None
        self._write_records()
        self._save_checkpoints()

    def _epoch_record(self, epoch: int, split: str, m: dict[str, Any]) -> EpochRecord:
        return EpochRecord(split=split, epoch=epoch, step=self.step, loss=m["loss"], accuracy=m["accuracy"],
                           lr=self.current_lr(), batch_size=self.batch_size, time=round(self.elapsed(), 4))

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _lr_at(self, progress: float) -> float:
        t = self.config.train
        return self.base_lr * lr_factor(t.schedule, progress, t.epochs, warmup_epochs=t.warmup_epochs,
                                        step_size=t.step_size, gamma=t.gamma)

    def _apply_control(self, changed: dict[str, Any]) -> None:
        """Take the live changes asked for since the last batch and note them for the next record."""
        for key, value in self.control.take_changes().items():
            if key == "lr" and value != self.base_lr:
                changed["lr"] = [changed.get("lr", [self.base_lr])[0], value]
                self.base_lr = value  # the new value becomes the schedule's base rate
                self.message(f"learning rate → {value:g} from step {self.step + 1}")
            elif key == "batch_size" and value != self.batch_size:
                changed["batch_size"] = [changed.get("batch_size", [self.batch_size])[0], value]
                self.batch_size = value
                self.message(f"batch size → {value} from the next batch")

    def _on_update_applied(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._in_flight is not None:
            self._in_flight.updated = True

    def _begin_step(self, epoch: int, n: int) -> StepInFlight:
        self._in_flight = StepInFlight(epoch=epoch, n=n, pos=self.pos, rng=_generator_states(self.device),
                                       base_lr=self.base_lr, batch_size=self.batch_size)
        return self._in_flight

    def _commit_step(self) -> StepRecord | None:
        """The one place a step joins the run: step counter, position and sums advance together.

        Called right after the optimizer applied the update (or from the Ctrl-C handler, when an
        interrupt came after it), so the weights, `step` and `pos` in a checkpoint always agree.
        Returns the step's event when the step is logged; its record waits in `_unwritten`.
        """
        step, sums = self._in_flight, self.sums
        assert step is not None and step.updated
        sums.add(step, self.step + 1)
        win_loss = float(sums.win_loss) if step.log_now else 0.0  # a sync, once per log interval
        if step.log_now and not math.isfinite(win_loss):
            raise TrainingFailed(f"the loss became non-finite (nan or inf) at step {sums.first_bad_step()} "
                                 f"(lr {step.lr:g}); try a lower learning rate. The last good checkpoint is kept")
        self.step += 1
        self.pos = step.pos
        self._in_flight = None
        if not step.log_now:
            return None
        now = time.perf_counter()
        classify = self.spec.task == "classification"
        event = StepRecord(
            epoch=step.epoch, step=self.step, loss=win_loss / max(sums.win_n, 1) * self._loss_scale,
            accuracy=float(sums.win_correct) / max(sums.win_n, 1) if classify else None, lr=step.lr,
            batch_size=self.batch_size, time=round(self.elapsed(), 4), epoch_progress=step.pos / step.n,
            samples_per_s=round(sums.win_n / max(now - self._win_t, 1e-9), 1),
            grad_norm=float(step.grad_norm) if step.grad_norm is not None else None,
            cuda_memory_allocated=torch.cuda.memory_allocated(self.device) if self.device.type == "cuda" else None,
            cuda_memory_reserved=torch.cuda.memory_reserved(self.device) if self.device.type == "cuda" else None,
            changed=dict(step.changed) or None)
        sums.close_window()
        self._win_t = now
        self._unwritten.append(event)
        return event

    def _train_one_epoch(self, epoch: int) -> dict[str, float | None] | None:
        """One pass over the training split from `self.pos`; None when a stop came first."""
        cfg = self.config.train
        model, opt, src = self.model, self.optimizer, self.train_src
        assert model is not None
        model.train()
        n = len(src)
        order = epoch_order(n, self.config.seed, epoch)
        classify = self.spec.task == "classification"
        self._loss_scale = loss_scale(cfg.loss, self.spec)
        self._win_t = time.perf_counter()
        # The source asks for the batch size as it cuts each batch, so a live change applies next batch.
        batches = src.batches(order, self.pos, lambda: self.batch_size)
        autocast = (torch.autocast(device_type=self.device.type, dtype=self.amp_dtype) if self.amp_dtype
                    else contextlib.nullcontext())
        while self.pos < n:
            # Between steps: the only place a pause, a stop or a live change takes effect.
            while not self.control.wait_if_paused(0.1):
                pass
            if self.control.stop_requested:
                return None
            step = self._begin_step(epoch, n)
            self._apply_control(step.changed)

            # Forward and backward over `accumulate` batches; none of it is loop state yet.
            for _ in range(cfg.accumulate):
                x, y = next(batches)
                with autocast:
                    out = model(x)
                loss = compute_loss(out, y, self.loss_fn, self.spec)
                self.scaler.scale(loss / cfg.accumulate).backward()
                step.add_batch(loss, out, y, classify)
                if step.pos >= n:
                    break

            # Clip (and measure the gradient norm the log shows).
            step.lr = self._lr_at(epoch - 1 + step.pos / n)
            step.log_now = (self.step + 1) % cfg.log_every == 0 or bool(step.changed) or step.pos >= n
            if cfg.clip_grad_norm > 0 or step.log_now:
                self.scaler.unscale_(opt)
                params = [p for p in model.parameters() if p.grad is not None]
                if cfg.clip_grad_norm > 0:
                    step.grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
                else:
                    step.grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])

            # Update, commit, record: a Ctrl-C that arrives in here takes effect after the record.
            with self._interrupts.held():
                for group in opt.param_groups:
                    group["lr"] = step.lr
                self.scaler.step(opt)
                step.updated = True  # also when the scaler skipped an fp16 step with inf gradients
                self.scaler.update()
                opt.zero_grad(set_to_none=True)
                event = self._commit_step()
                self._write_records()
            if event is not None:
                self.emit("step_end", event)
        loss_sum, correct, count = self.sums.epoch_totals()
        if count == 0:  # a checkpoint from before the sums were saved, resumed at the epoch's end
            return {"loss": self.last_metrics.get("train_loss"), "accuracy": self.last_metrics.get("train_accuracy")}
        return {"loss": float(loss_sum) / count * self._loss_scale,
                "accuracy": float(correct) / count if classify else None}

    def _finish(self, error: str | None) -> dict[str, Any]:
        """Test metrics (for a finished run), summary.json and the fit_end event, on every ending."""
        m = dict(self.last_metrics)
        test = {"loss": None, "accuracy": None}
        if self.status in (RunStatus.COMPLETED, RunStatus.EARLY_STOPPED) and self.model is not None and self.test_src is not None:
            test = evaluate(self.model, self.test_src, self.loss_fn, self.spec, self.config.train.loss)
            try:
                self._record(self._epoch_record(self.epochs_done, "test", test))
            except WriteError as exc:
                self.message(f"the test record could not be written: {exc}", "warning")
        summary = {
            "status": self.status.value, "reason": self.reason, "epochs_completed": getattr(self, "epochs_done", 0),
            "metrics": {k: m.get(k) for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")}
            | {"test_loss": test["loss"], "test_accuracy": test["accuracy"]},
            "best": {"epoch": getattr(self, "best_epoch", None),
                     "val_loss": self.best_loss if math.isfinite(getattr(self, "best_loss", math.inf)) else None},
            "error": error, "step": getattr(self, "step", 0), "time": round(self.elapsed(), 3),
            "config": self.config.to_dict(),
        }
        if self._metrics is not None:  # the run dir exists: the summary goes beside the metrics
            try:
                self._metrics.close()
                self.files.write_summary(summary)
            except (WriteError, OSError) as exc:
                # A full disk must not hide the error that ended the run; say it, keep what is there.
                self.message(f"summary.json could not be written: {exc}", "warning")
        self.emit("fit_end", FitEnd(self.status, self.reason, str(self.run_dir), summary))
        return summary


def _toml_value(value: Any) -> str:
    """A config value as a user writes it in config.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _spec_dict(spec: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}
