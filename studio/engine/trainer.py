"""The training loop: `Trainer(config, run_dir, callbacks=[...]).fit()`.

Reads top to bottom: set up (`training_setup.build_training`, maybe a checkpoint to resume), then
for each epoch `_train_one_epoch` and `evaluate`, the epoch's commit (records and checkpoints) and
the stop rules (`StopCriteria`), and finally the test split and `summary.json`, which is written
on every ending, including errors and Ctrl-C.

Where the run is lives in one `LoopState`, advanced in two places: `_commit_step` after the
optimizer applied an update, and `_commit_epoch` after validation. Both run inside a block a
Ctrl-C waits for, so the weights, the counters, metrics.jsonl and last.pt always agree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from studio.config import Config
from studio.data import DataBundle, DataSpec
from studio.data.batches import epoch_order
from studio.engine import cuda_errors
from studio.engine.callbacks import call
from studio.engine.control import TrainingControl
from studio.engine.control_file import ControlExchange
from studio.engine.device import device_name
from studio.engine.distributed import SINGLE, Dist, checkpoint_keys, ddp_wrap, restore_rank_rng
from studio.engine.estimates import remaining_seconds
from studio.engine.evaluate import evaluate
from studio.engine.events import EpochEnd, EpochStart, FitEnd, Message, RunStatus, ValidationEnd
from studio.engine.fine_tune import FineTune
from studio.engine.headline import headline_checkpoint, headline_model
from studio.engine.interrupts import DeferredInterrupt
from studio.engine.loop_state import (
    EpochMetrics,
    LoopState,
    RunningSums,
    StepInFlight,
    generator_states,
    set_generator_states,
)
from studio.engine.records import EpochRecord, StepRecord, epoch_record
from studio.engine.run_dir import RunDir
from studio.engine.run_lifecycle import Ending, apply_resume_edits, fit_start, prepare, run_summary
from studio.engine.run_writer import RunWriter
from studio.engine.schedule import ConfigSchedule, Schedule
from studio.engine.step import epoch_train_metrics, forward_backward, reduce_step, step_record
from studio.engine.stop_criteria import Decision, StopCriteria, TrainingFailed
from studio.engine.tensorboard_live import live_loggers
from studio.engine.training_setup import TrainingSetup, checkpoint_state, restore_checkpoint
from studio.errors import StudioError
from studio.files import WriteError
from studio.models import StudioModel

__all__ = ["Trainer", "TrainingFailed"]


class Trainer:
    """Trains one run into `run_dir`; steer it from another thread through `control`.

    `resume=True` continues from the run's last checkpoint (the config's `train.epochs` may be
    higher than before; an edited `train.lr` or `train.batch_size` applies from the first step, as
    a live change recorded in metrics.jsonl). `data` lets a caller reuse an already loaded
    `DataBundle`. `schedule` replaces the config's learning-rate schedule (the LR finder's sweep).
    With `run_dir=None` nothing is written: no files, no checkpoints, no lock (the LR finder).

    One process at a time trains a run directory: `fit` holds its lock (`studio.engine.locking`)
    from start to end, and a second trainer on the same folder gets `FolderInUse`.
    """

    def __init__(
        self,
        config: Config,
        run_dir: str | Path | None,
        callbacks: list[Any] | tuple[Any, ...] = (),
        control: TrainingControl | None = None,
        *,
        resume: bool = False,
        data: DataBundle | None = None,
        schedule: Schedule | None = None,
        dist: Dist = SINGLE,
    ) -> None:
        if resume and run_dir is None:
            raise ValueError("resume needs a run directory")
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.run_files = RunDir(self.run_dir) if self.run_dir is not None else None
        self.dist = dist  # this process's rank in a DDP run (distributed.join); SINGLE alone
        # FineTune acts only on pretrained weights; TensorBoard logs live (rank 0 alone) when on
        self.callbacks = [FineTune(), *callbacks, *live_loggers(config, self.run_dir if dist.is_main else None)]
        self.control = control or TrainingControl()
        self.resume = resume
        self.data = data
        self.schedule: Schedule = schedule or ConfigSchedule(config.train)
        self.status = RunStatus.FAILED  # until the run ends; set in `_finish` only
        self.reason: str | None = None
        self.state = LoopState.start(config.train)  # a checkpoint replaces it when resuming
        # What the loop obeys: `control` itself, or under DDP the decisions every rank shares (control_file.py).
        control_json = self.run_files.control if self.run_files else None
        self._controls = ControlExchange(dist, control_json, self.message, self.control)
        self.stops = StopCriteria(config.train, self._controls.control)
        self.setup: TrainingSetup | None = None  # built by `fit`, under the run directory's lock
        self.sums = RunningSums(torch.device("cpu"))  # on the training device once set up
        # Every file the fit writes goes through the writer; under DDP only rank 0's writes anything.
        self.writer = RunWriter(self.run_files if dist.is_main else None)
        self._net: torch.nn.Module | None = None  # what the step runs: the model, or its DDP wrapper
        self._interrupts = DeferredInterrupt()
        self._in_flight: StepInFlight | None = None
        self._resume_edits: dict[str, Any] = {}
        self._t0 = time.perf_counter()  # this process's training clock (restarted by `fit`)
        self._win_t = self._t0  # when the current log window opened

    # -- what callbacks read (callbacks.TrainerView) ----------------------------------------------

    @property
    def model(self) -> StudioModel | None:
        return self.setup.model if self.setup is not None else None

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._built().optimizer

    @property
    def bundle(self) -> DataBundle:
        return self._built().bundle

    @property
    def spec(self) -> DataSpec:
        return self._built().spec

    @property
    def device(self) -> torch.device:
        return self._built().device

    def _built(self) -> TrainingSetup:
        if self.setup is None:
            raise RuntimeError("the trainer is not set up yet: fit() builds the model and data")
        return self.setup

    def elapsed(self) -> float:
        return self.state.elapsed_before + (time.perf_counter() - self._t0)

    def current_lr(self) -> float:
        return float(self._built().optimizer.param_groups[0]["lr"])

    # -- events --------------------------------------------------------------------------------

    def emit(self, name: str, event: Any) -> None:
        call(self.callbacks, self, name, event)

    def message(self, text: str, level: str = "info") -> None:
        self.emit("message", Message(text, level))

    # -- the run -------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train to the configured number of epochs (or a stop); return the summary dict."""
        self._t0 = time.perf_counter()
        with self.writer.locked():
            try:
                resume_state = self._set_up()  # every check that can refuse the run, before the run dir is touched
            except Exception as exc:
                cuda_errors.raise_in_words(exc, self.config.train)  # out of memory moving data or model to the GPU
                raise
            resumed = resume_state is not None
            self.writer.start(self.config, (self.state.epoch, self.state.step) if resumed else None)
            self._announce(resumed)
            ending = Ending(RunStatus.FAILED)
            try:
                with self._interrupts:
                    ending = self._loop()
            except KeyboardInterrupt:
                ending = Ending(RunStatus.STOPPED, "interrupted (Ctrl-C)")
                ending = self._save_after_interrupt(ending)
                raise
            except TrainingFailed as exc:
                ending = Ending(RunStatus.FAILED, str(exc), str(exc))
                raise
            except WriteError as exc:
                error = f"{exc}; {self.writer.kept_checkpoint()}"
                ending = Ending(RunStatus.FAILED, error, error)
                raise WriteError(error) from None
            except BaseException as exc:
                failure = cuda_errors.classify(exc)
                if failure is not None:  # out of memory, or a lost CUDA context: said in words, not a traceback
                    ending = self._end_on_cuda_failure(failure)
                    cuda_errors.release_frames(exc)
                    raise TrainingFailed(ending.error) from None
                error = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
                ending = Ending(RunStatus.FAILED, error, error)
                raise
            finally:
                summary = self._finish(ending)
        return summary

    def _loop(self) -> Ending:
        cfg = self.config.train
        loop_t0, start_epoch = time.perf_counter(), self.state.epoch + 1
        while self.state.epoch < cfg.epochs:
            epoch = self.state.epoch + 1
            epoch_t0 = time.perf_counter()
            self.emit("epoch_start", EpochStart(epoch, cfg.epochs))

            # -- train
            train = self._train_one_epoch(epoch)
            if train is None:  # stopped between two steps
                self.save("last")
                return Ending(RunStatus.STOPPED, self.stops.user_stop()[1])

            # -- validate
            setup = self._built()
            val = evaluate(setup.model, setup.val_src, setup.loss_fn, setup.spec, cfg.loss)

            # -- commit: the epoch's end, its records and its checkpoints happen together; a Ctrl-C waits
            with self._interrupts.held():
                is_best, (stop, reason), records = self._commit_epoch(epoch, train, val)
                self.writer.flush()
                self._save_checkpoints()

            # -- report
            if val["loss"] is not None:
                self.emit("validation_end", ValidationEnd(epoch, "val", val["loss"], val["accuracy"]))
            now = time.perf_counter()
            eta = remaining_seconds(now - loop_t0, epoch - start_epoch + 1, cfg.epochs - start_epoch + 1)
            self.emit(
                "epoch_end",
                EpochEnd(
                    epoch,
                    cfg.epochs,
                    self.state.step,
                    self.elapsed(),
                    dict(self.state.last_metrics),
                    self.state.best_epoch,
                    is_best,
                    eta,
                    epoch_s=now - epoch_t0,
                    records=records,
                ),
            )

            # -- stop rules
            if stop:
                self.message(f"early stop: {reason}")
                return Ending(RunStatus.EARLY_STOPPED, reason)
            stop, reason = self.stops.user_stop()
            if stop:
                return Ending(RunStatus.STOPPED, reason)
        return Ending(RunStatus.COMPLETED)

    def _train_one_epoch(self, epoch: int) -> EpochMetrics | None:
        """One pass over the training split from the saved position; None when a stop came first."""
        setup, state = self._built(), self.state
        n = len(setup.train_src)
        setup.model.train()
        # The source asks for the batch size as it cuts each batch, so a live change applies next batch;
        # under DDP every rank cuts these same global batches and trains its shard of each (step.py).
        batches = setup.train_src.batches(epoch_order(n, self.config.seed, epoch), state.pos, lambda: state.batch_size)
        self._win_t = time.perf_counter()
        while state.pos < n:
            # -- between steps: the only place a pause, a stop or a live change takes effect
            self._controls.between_steps()  # waits while paused; reads control.json
            if self.stops.user_stop()[0]:
                return None
            step = StepInFlight(
                epoch=epoch,
                n=n,
                pos=state.pos,
                rng=generator_states(setup.device),
                base_lr=state.base_lr,
                batch_size=state.batch_size,
            )
            self._in_flight = step
            self._apply_control(step.changed)

            # -- forward and backward over `accumulate` batches; none of it is loop state yet
            self._forward_backward(step, batches)

            # -- the optimizer step, its commit and its record
            record = self._optimizer_step(step)

            # -- report
            if record is not None:
                self.emit("step_end", record)
        return epoch_train_metrics(self.sums, self.state, setup, self.config.train.loss)

    def _forward_backward(self, step: StepInFlight, batches: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> None:
        setup = self._built()
        forward_backward(setup, self._net or setup.model, step, batches, self.config.train.accumulate, self.dist)

    def _optimizer_step(self, step: StepInFlight) -> StepRecord | None:
        """Rate, clip, update; then the commit. Returns the step's record when it is a log point."""
        setup, cfg, state = self._built(), self.config.train, self.state
        opt = setup.optimizer
        step.lr = self.schedule(state.step + 1, step.epoch - 1 + step.pos / step.n, state.base_lr)
        step.log_now = (
            (state.step + 1) % cfg.log_every == 0
            or bool(step.changed)
            or step.pos >= step.n
            or time.perf_counter() - self._win_t >= cfg.log_every_s  # a point every few seconds, however slow
        )

        # Clip (and measure the gradient norm the log shows).
        if cfg.clip_grad_norm > 0 or step.log_now:
            setup.scaler.unscale_(opt)
            params = [p for p in setup.model.parameters() if p.grad is not None]
            if cfg.clip_grad_norm > 0:
                step.grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
            else:
                step.grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])

        # Update and commit: a Ctrl-C that arrives in here takes effect after the record is written.
        with self._interrupts.held():
            for group in opt.param_groups:
                group["lr"] = step.lr * group.get("lr_scale", 1.0)  # fine-tuning: the backbone's lower rate
            setup.scaler.step(opt)
            step.updated = True  # also when the scaler skipped an fp16 step with inf gradients
            setup.scaler.update()
            opt.zero_grad(set_to_none=True)
            record = self._commit_step(step)
            self.writer.flush()
        return record

    def _commit_step(self, step: StepInFlight, reduce: bool = True) -> StepRecord | None:
        """The one place a step joins the run: step counter, position and sums advance together.

        Called right after the optimizer applied the update (or from the Ctrl-C handler, when an
        interrupt came after it), so the weights, `step` and `pos` in a checkpoint always agree.
        Returns the step's record when the step is logged; the writer holds it until its `flush`.
        """
        setup, state, sums = self._built(), self.state, self.sums
        assert step.updated
        if reduce:  # under DDP, every rank's loss, hits and count: the records are over all samples
            shared = reduce_step(step, self.dist, setup.device, self._controls.pack())
            self._controls.unpack(shared)  # rank 0's live control, on every rank from the next step
        sums.add(step, state.step + 1)
        window_loss = float(sums.win_loss) if step.log_now else 0.0  # a sync, once per log interval
        stop, reason = self.stops.non_finite(window_loss, sums.first_bad_step, step.lr)
        if stop:
            raise TrainingFailed(reason)
        state.advance_step(step.pos)
        self._in_flight = None
        if not step.log_now:
            return None
        now = time.perf_counter()
        window_s, world = now - self._win_t, self._world_size()
        record = step_record(step, state, sums, setup, window_loss, self.elapsed(), window_s, world)
        sums.close_window()
        self._win_t = now
        self.writer.add(record)
        return record

    def _commit_epoch(
        self, epoch: int, train: EpochMetrics, val: EpochMetrics
    ) -> tuple[bool, Decision, tuple[EpochRecord, ...]]:
        """The one place an epoch ends: counters, metrics, best and early stopping move together."""
        which = "val" if val["loss"] is not None else "train"
        watched_loss = val["loss"] if val["loss"] is not None else train["loss"]
        watched = math.inf if watched_loss is None else watched_loss
        decision = self.stops.epoch_end(self.state.early, watched, which, epoch)
        is_best = self.state.end_epoch(epoch, train, val, watched)
        self.writer.best_due = self.writer.best_due or is_best
        self.sums.reset_epoch()
        records = (self._epoch_record(epoch, "train", train),) + (
            (self._epoch_record(epoch, "val", val),) if val["loss"] is not None else ()
        )
        for record in records:
            self.writer.add(record)
        return is_best, decision, records

    def _epoch_record(self, epoch: int, split: str, m: EpochMetrics, checkpoint: str | None = None) -> EpochRecord:
        step, lr, batch_size, time_s = self.state.step, self.current_lr(), self.state.batch_size, self.elapsed()
        return epoch_record(split, epoch, step, m, lr, batch_size, round(time_s, 4), checkpoint, self._world_size())

    def _world_size(self) -> int | None:
        return self.dist.world_size if self.dist.active else None

    def _apply_control(self, changed: dict[str, Any]) -> None:
        """Take the live changes asked for since the last batch and note them for the next record."""
        state = self.state
        for key, value in self._controls.control.take_changes().items():
            if key == "lr" and value != state.base_lr:
                changed["lr"] = [changed.get("lr", [state.base_lr])[0], value]
                state.base_lr = value  # the new value becomes the schedule's base rate
                self.message(f"learning rate → {value:g} from step {state.step + 1}")
            elif key == "batch_size" and value != state.batch_size:
                changed["batch_size"] = [changed.get("batch_size", [state.batch_size])[0], value]
                state.batch_size = value
                self.message(f"batch size → {value} from the next batch")

    def _on_update_applied(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._in_flight is not None:
            self._in_flight.updated = True

    # -- set-up --------------------------------------------------------------------------------

    def _set_up(self) -> dict[str, Any] | None:
        """Refuse what cannot run, then build what the run trains with; nothing is written here."""
        prepared = prepare(self.config, self.data, self.run_files, self.resume, self.message, self.dist)
        self.setup, self._resume_edits = prepared.setup, prepared.resume_edits
        tuning = bool(self.config.model.weights) and self.config.train.freeze_epochs > 0  # FineTune freezes a part
        self._net = ddp_wrap(self.setup.model, self.setup.device, tuning) if self.dist.active else None
        # Marks the moment the update is in the weights, even if something interrupts the step after it.
        self.setup.optimizer.register_step_post_hook(self._on_update_applied)
        self.sums = RunningSums(self.setup.device)
        if prepared.resume_state is not None:
            self._restore(prepared.resume_state)
        return prepared.resume_state

    def _restore(self, state: dict[str, Any]) -> None:
        assert self.run_dir is not None
        restore_checkpoint(state, self._built(), self.state, self.sums, self.run_dir)
        restore_rank_rng(state, self.dist)
        for text in apply_resume_edits(self._resume_edits, self._controls.control, self.state):
            self.message(text, "info")

    def _announce(self, resumed: bool) -> None:
        event, lines = fit_start(self.config, self._built(), self.state, self.run_dir, resumed)
        self.emit("fit_start", event)
        for line in lines:
            self.message(line)

    # -- checkpoints ---------------------------------------------------------------------------

    def save(self, which: str = "last", together: bool = True) -> None:
        """Write checkpoint `which` (rank 0); `together`: every rank calls this here (DDP gathers their generators)."""
        if self.run_files is not None:
            state = checkpoint_state(self.config, self._built(), self.state, self.sums, self.elapsed())
            state |= checkpoint_keys(self.dist, gather=together)
            self.writer.save(which, state, (self.state.epoch, self.state.step))

    def _save_checkpoints(self, together: bool = True) -> None:
        self.save("last", together)
        if self.writer.best_due:
            self.save("best", together)
            self.writer.best_due = False

    def _save_after_interrupt(self, ending: Ending) -> Ending:
        """After Ctrl-C: settle the step in flight, then write what the committed state owes to disk."""
        step = self._in_flight
        if step is not None and step.updated:
            try:  # the update is in the weights: finish the step's bookkeeping, as the loop would have
                self._commit_step(step, reduce=False)  # no collective here: the other ranks may be gone
            except TrainingFailed as exc:  # that update made the weights non-finite: keep the last good files
                return ending._replace(reason=f"{ending.reason}; {exc}")
        elif step is not None:  # nothing of the step reached the weights: undo what it drew and changed
            set_generator_states(step.rng)
            self.state.base_lr, self.state.batch_size = step.base_lr, step.batch_size
            self._in_flight = None
        self.writer.flush()
        self._save_checkpoints(together=False)  # no collective: under DDP the other ranks may be elsewhere
        return ending

    def _end_on_cuda_failure(self, failure: cuda_errors.CudaFailure) -> Ending:
        """Out of memory: the context is fine, so save the progress as after a Ctrl-C. A lost context: don't touch it."""
        setup, train, lost = self._built(), self.config.train, failure.kind is cuda_errors.CudaFailureKind.CONTEXT_LOST
        label = str(setup.device) if lost else device_name(setup.device)  # a lost context answers nothing more
        text = cuda_errors.describe(failure, setup.device, label, self.state.batch_size, train)
        ending = Ending(RunStatus.FAILED, text, text)
        if not lost:
            ending = self._save_after_interrupt(ending)
        error = f"{ending.reason}; {self.writer.kept_checkpoint()}"
        return ending._replace(reason=error, error=error)

    def _finish(self, ending: Ending) -> dict[str, Any]:
        """Test metrics (for a finished run), summary.json and the fit_end event, on every ending."""
        self.status, self.reason = ending.status, ending.reason  # the one place the run's status is set
        setup, state = self._built(), self.state
        test: EpochMetrics = {"loss": None, "accuracy": None}
        which = headline_checkpoint(self.run_files)  # the one checkpoint the run's figures name
        if self.status in (RunStatus.COMPLETED, RunStatus.EARLY_STOPPED) and setup.test_src is not None:
            model, which = headline_model(setup.model, self.run_files)
            test = evaluate(model, setup.test_src, setup.loss_fn, setup.spec, self.config.train.loss)
            try:
                self.writer.write(self._epoch_record(state.epoch, "test", test, checkpoint=which))
            except WriteError as exc:
                self.message(f"the test record could not be written: {exc}", "warning")
        summary = run_summary(self.config, state, ending, test, self.elapsed(), self.dist.world_size, checkpoint=which)
        try:
            self.writer.finish(summary)
        except (WriteError, OSError) as exc:
            # A full disk must not hide the error that ended the run; say it, keep what is there.
            self.message(f"summary.json could not be written: {exc}", "warning")
        self.emit("fit_end", FitEnd(self.status, self.reason, str(self.run_dir or ""), summary))
        return summary
