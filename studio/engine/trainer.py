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
from pathlib import Path
from typing import Any

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
from studio.engine.events import EpochEnd, EpochStart, FitEnd, FitStart, Message, StepEnd, ValidationEnd
from studio.engine.optim import build_loss, build_optimizer
from studio.engine.run_dir import MetricsFile, truncate_metrics, write_summary
from studio.engine.schedule import lr_factor
from studio.errors import CheckpointError, StudioError
from studio.models import StudioModel, build_model, param_count, shape_summary


class TrainingFailed(Exception):
    """Training could not go on (a non-finite loss); the message says why and what to try."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


class Trainer:
    """Trains one run into `run_dir`; steer it from another thread through `control`.

    `resume=True` continues from `run_dir/checkpoints/last.pt` (the config's `train.epochs` may be
    higher than before). `data` lets a caller reuse an already loaded `DataBundle`.
    """

    def __init__(self, config: Config, run_dir: str | Path, callbacks: list[Any] | tuple = (),
                 control: TrainingControl | None = None, *, resume: bool = False,
                 data: DataBundle | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks)
        self.control = control or TrainingControl()
        self.resume = resume
        self.data = data
        self.status = "failed"
        self.reason: str | None = None
        self.model: StudioModel | None = None
        self._metrics: MetricsFile | None = None

    # -- events --------------------------------------------------------------------------------

    def emit(self, name: str, event: Any) -> None:
        call(self.callbacks, self, name, event)

    def message(self, text: str, level: str = "info") -> None:
        self.emit("message", Message(text, level))

    def _record(self, record: dict[str, Any]) -> None:
        if self._metrics is not None:
            self._metrics.write(record)

    # -- set-up --------------------------------------------------------------------------------

    def _load_resume_state(self) -> dict[str, Any]:
        state = ckpt.load_checkpoint(ckpt.checkpoint_path(self.run_dir, "last"))
        saved = config_from_dict(state["config"])
        for section in ("data", "model", "augment"):
            if getattr(saved, section) != getattr(self.config, section):
                raise CheckpointError(f"{self.run_dir}: the [{section}] section differs from the one the "
                                      "checkpoint was trained with; resume needs the same data and model")
        return state

    def _setup(self) -> dict[str, Any] | None:
        cfg = self.config
        resume_state = self._load_resume_state() if self.resume else None
        seed_everything(cfg.seed)
        self.bundle = self.data or load_data(cfg)
        for w in self.bundle.warnings:
            self.message(w, "warning")
        self.spec = self.bundle.spec
        self.device = resolve_device(cfg.train.device)
        if self.device.type == "cpu" and torch.get_num_threads() != cpu_threads():
            torch.set_num_threads(cpu_threads())  # see cpu_threads: one core stays free
        torch.manual_seed(cfg.seed)  # the same init whatever loading the data drew
        self.model = build_model(cfg.model, self.spec).to(self.device)
        self.optimizer = build_optimizer(self.model, cfg.train)
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
        self.elapsed_before = 0.0
        self.best_loss, self.best_epoch = math.inf, None
        self.early = EarlyStopping(cfg.train.patience, cfg.train.min_delta)
        self.last_metrics: dict[str, float | None] = {}
        if resume_state is not None:
            self._restore(resume_state)
        self._start_epoch = self.epochs_done + 1
        self._boundary_pos = self.pos
        return resume_state

    def _restore(self, state: dict[str, Any]) -> None:
        assert self.model is not None
        try:
            self.model.load_state_dict(state["model"], strict=True)
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{self.run_dir}: checkpoint does not fit this model "
                                  f"({str(exc).splitlines()[0][:160]})") from None
        if "scaler" in state and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.epochs_done, self.pos, self.step = state["epoch"], state["pos"], state["step"]
        self.base_lr, self.batch_size = state["base_lr"], state["batch_size"]
        self.elapsed_before = state.get("elapsed", 0.0)
        self.best_loss = state["best_loss"] if state.get("best_loss") is not None else math.inf
        self.best_epoch = state.get("best_epoch")
        self.early.load_state_dict(state["early_stopping"])
        self.last_metrics = dict(state.get("last_metrics") or {})
        ckpt.set_rng_state(state["rng"])

    def _checkpoint_state(self) -> dict[str, Any]:
        assert self.model is not None
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": {"kind": self.config.train.schedule, "base_lr": self.base_lr},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "epoch": self.epochs_done, "pos": self.pos, "step": self.step,
            "base_lr": self.base_lr, "batch_size": self.batch_size,
            "elapsed": self.elapsed(), "best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
            "best_epoch": self.best_epoch, "early_stopping": self.early.state_dict(),
            "last_metrics": self.last_metrics, "rng": ckpt.rng_state(),
            "config": self.config.to_dict(), "spec": _spec_dict(self.spec),
        }

    def save(self, which: str = "last") -> None:
        ckpt.save_checkpoint(ckpt.checkpoint_path(self.run_dir, which), self._checkpoint_state())

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._t0)

    # -- the run -------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train to the configured number of epochs (or a stop); return the summary dict."""
        self._t0 = time.perf_counter()
        resume_state = self._setup()  # bad config/data/checkpoint raises before the run dir is touched
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
        self.message(f"model {cfg.model.arch}: {param_count(model):,} parameters; {shape_summary(model, self.spec)}")
        self.message(f"device {device_name(self.device)}; run directory {self.run_dir}")
        error: str | None = None
        try:
            self._loop()
        except KeyboardInterrupt:
            self.status, self.reason = "stopped", "interrupted (Ctrl-C)"
            # Resume from the last optimizer-step boundary, not from inside a half-done step.
            self.pos = self._boundary_pos
            self.save("last")
            raise
        except TrainingFailed as exc:
            self.status, self.reason, error = "failed", str(exc), str(exc)
            raise
        except BaseException as exc:
            self.status = "failed"
            error = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
            self.reason = error
            raise
        finally:
            summary = self._finish(error)
        return summary

    def _prepare_run_dir(self, resume_state: dict[str, Any] | None) -> None:
        (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.run_dir / "config.toml")
        if resume_state is not None:
            truncate_metrics(self.run_dir, self.step, self.epochs_done)
        elif (self.run_dir / "metrics.jsonl").exists():
            (self.run_dir / "metrics.jsonl").unlink()
        self._metrics = MetricsFile(self.run_dir / "metrics.jsonl")

    def _loop(self) -> None:
        cfg = self.config.train
        self.status = "completed"
        self._loop_t0 = time.perf_counter()
        while self.epochs_done < cfg.epochs:
            epoch = self.epochs_done + 1
            self.emit("epoch_start", EpochStart(epoch, cfg.epochs))
            train = self._train_one_epoch(epoch)
            if train is None:  # stopped mid-epoch
                self.status, self.reason = "stopped", "stopped by the user"
                self.save("last")
                return
            val = evaluate(self.model, self.val_src, self.loss_fn, self.spec, cfg.loss)
            self.epochs_done, self.pos = epoch, 0
            self.last_metrics = {"train_loss": train["loss"], "train_accuracy": train["accuracy"],
                                 "val_loss": val["loss"], "val_accuracy": val["accuracy"]}
            self._log_epoch(epoch, "train", train)
            if val["loss"] is not None:
                self._log_epoch(epoch, "val", val)
                self.emit("validation_end", ValidationEnd(epoch, "val", val["loss"], val["accuracy"]))
            watched = val["loss"] if val["loss"] is not None else train["loss"]
            watched = math.inf if watched is None else watched
            is_best = watched < self.best_loss
            stop, reason = self.early.update(watched, epoch) if cfg.patience else (False, None)
            if is_best:
                self.best_loss, self.best_epoch = watched, epoch
            self.save("last")
            if is_best:
                self.save("best")
            if cfg.target_loss > 0 and watched <= cfg.target_loss and not stop:
                which = "val" if val["loss"] is not None else "train"
                stop, reason = True, f"{which} loss {watched:.4g} reached the target {cfg.target_loss:g}"
            per_epoch = (time.perf_counter() - self._loop_t0) / max(epoch - self._start_epoch + 1, 1)
            self.emit("epoch_end", EpochEnd(epoch, cfg.epochs, self.step, self.elapsed(), dict(self.last_metrics),
                                            self.best_epoch, is_best, per_epoch * (cfg.epochs - epoch)))
            if stop:
                self.status, self.reason = "early_stopped", reason
                self.message(f"early stop: {reason}")
                return
            if self.control.stop_requested:
                self.status, self.reason = "stopped", "stopped by the user"
                return

    def _log_epoch(self, epoch: int, split: str, m: dict[str, Any]) -> None:
        self._record({"kind": "epoch", "split": split, "epoch": epoch, "step": self.step, "loss": m["loss"],
                      "accuracy": m["accuracy"], "lr": self.current_lr(), "batch_size": self.batch_size,
                      "time": round(self.elapsed(), 4)})

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

    def _train_one_epoch(self, epoch: int) -> dict[str, float | None] | None:
        """One pass over the training split from `self.pos`; None when a stop came first."""
        cfg = self.config.train
        model, opt, src, device = self.model, self.optimizer, self.train_src, self.device
        assert model is not None
        model.train()
        self._boundary_pos = self.pos
        n = len(src)
        order = epoch_order(n, self.config.seed, epoch)
        classify = self.spec.task == "classification"
        scale = loss_scale(cfg.loss, self.spec)
        # Running sums stay on the device; `.item()` happens once per log interval (a sync).
        zero = torch.zeros((), device=device, dtype=torch.float64)
        ep_loss, ep_correct, ep_n = zero.clone(), zero.clone(), 0
        win_loss, win_correct, win_n, win_t = zero.clone(), zero.clone(), 0, time.perf_counter()
        bad_step = torch.full((), -1, device=device, dtype=torch.long)
        changed: dict[str, Any] = {}
        micro = 0
        # The source asks for the batch size as it cuts each batch, so a live change applies next batch.
        batches = src.batches(order, self.pos, lambda: self.batch_size)
        autocast = (torch.autocast(device_type=device.type, dtype=self.amp_dtype) if self.amp_dtype
                    else contextlib.nullcontext())
        while self.pos < n:
            if micro == 0:  # only between optimizer steps, so a stop or change never splits one
                self._apply_control(changed)
                while not self.control.wait_if_paused(0.1):
                    pass
                if self.control.stop_requested:
                    return None
            x, y = next(batches)
            with autocast:
                out = model(x)
            loss = compute_loss(out, y, self.loss_fn, self.spec)
            self.scaler.scale(loss / cfg.accumulate).backward()
            micro += 1
            bs = int(y.shape[0])
            self.pos += bs
            detached = loss.detach().double() * bs
            win_loss += detached
            ep_loss += detached
            win_n += bs
            ep_n += bs
            if classify:
                hits = (out.detach().argmax(dim=1) == y).sum()
                win_correct += hits
                ep_correct += hits
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(loss.detach()),
                                   torch.full_like(bad_step, self.step + 1), bad_step)
            if micro < cfg.accumulate and self.pos < n:
                continue
            micro = 0
            lr = self._lr_at(epoch - 1 + self.pos / n)
            for group in opt.param_groups:
                group["lr"] = lr
            self.step += 1
            log_now = self.step % cfg.log_every == 0 or bool(changed) or self.pos >= n
            grad_norm = None
            if cfg.clip_grad_norm > 0 or log_now:
                self.scaler.unscale_(opt)
                params = [p for p in model.parameters() if p.grad is not None]
                if cfg.clip_grad_norm > 0:
                    norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
                else:
                    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
                grad_norm = norm
            self.scaler.step(opt)
            self.scaler.update()
            opt.zero_grad(set_to_none=True)
            self._boundary_pos = self.pos  # weights, step and pos agree here: a safe place to resume
            if not log_now:
                continue
            bad = int(bad_step)
            if bad >= 0:
                raise TrainingFailed(f"the loss became non-finite (nan or inf) at step {bad} "
                                     f"(lr {lr:g}); try a lower learning rate. The last good checkpoint is kept")
            now = time.perf_counter()
            event = StepEnd(
                epoch=epoch, step=self.step, loss=float(win_loss) / max(win_n, 1) * scale,
                accuracy=float(win_correct) / max(win_n, 1) if classify else None, lr=lr,
                batch_size=self.batch_size, time=round(self.elapsed(), 4), epoch_progress=self.pos / n,
                samples_per_s=win_n / max(now - win_t, 1e-9),
                grad_norm=float(grad_norm) if grad_norm is not None else None,
                cuda_memory_allocated=torch.cuda.memory_allocated(device) if device.type == "cuda" else None,
                cuda_memory_reserved=torch.cuda.memory_reserved(device) if device.type == "cuda" else None,
                changed=dict(changed) or None)
            self._record(_step_record(event))
            self.emit("step_end", event)
            changed.clear()
            win_loss.zero_()
            win_correct.zero_()
            win_n, win_t = 0, now
        if ep_n == 0:  # resumed after the epoch's last step (interrupted during validation)
            return {"loss": self.last_metrics.get("train_loss"), "accuracy": self.last_metrics.get("train_accuracy")}
        return {"loss": float(ep_loss) / ep_n * scale,
                "accuracy": float(ep_correct) / ep_n if classify else None}

    def _finish(self, error: str | None) -> dict[str, Any]:
        """Test metrics (for a finished run), summary.json and the fit_end event, on every ending."""
        m = dict(self.last_metrics)
        test = {"loss": None, "accuracy": None}
        if self.status in ("completed", "early_stopped") and self.model is not None and self.test_src is not None:
            test = evaluate(self.model, self.test_src, self.loss_fn, self.spec, self.config.train.loss)
            self._record({"kind": "epoch", "split": "test", "epoch": self.epochs_done, "step": self.step,
                          "loss": test["loss"], "accuracy": test["accuracy"], "lr": self.current_lr(),
                          "batch_size": self.batch_size, "time": round(self.elapsed(), 4)})
        summary = {
            "status": self.status, "reason": self.reason, "epochs_completed": self.epochs_done,
            "metrics": {k: m.get(k) for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")}
            | {"test_loss": test["loss"], "test_accuracy": test["accuracy"]},
            "best": {"epoch": self.best_epoch, "val_loss": self.best_loss if math.isfinite(self.best_loss) else None},
            "error": error, "step": getattr(self, "step", 0), "time": round(self.elapsed(), 3),
            "config": self.config.to_dict(),
        }
        if self._metrics is not None:  # the run dir exists: the summary goes beside the metrics
            self._metrics.close()
            write_summary(self.run_dir, summary)
        self.emit("fit_end", FitEnd(self.status, self.reason, str(self.run_dir), summary))
        return summary


def _step_record(e: StepEnd) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "step", "split": "train", "epoch": e.epoch, "step": e.step, "loss": e.loss,
                           "accuracy": e.accuracy, "lr": e.lr, "batch_size": e.batch_size, "time": e.time,
                           "samples_per_s": round(e.samples_per_s, 1), "grad_norm": e.grad_norm}
    if e.cuda_memory_allocated is not None:
        rec["cuda_memory_allocated"] = e.cuda_memory_allocated
        rec["cuda_memory_reserved"] = e.cuda_memory_reserved
    if e.changed:
        rec["changed"] = e.changed
    return rec


def _spec_dict(spec: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}
