"""`studio ...`: the headless command line on top of the same engine the GUI uses.

Exit codes: 0 done (also early stop and a user's stop), 2 bad input with one `error: ...` line,
1 an unexpected failure, 130 interrupted by Ctrl-C after the last checkpoint was saved.
This module never imports Qt; only `studio gui` (and bare `studio`) load the GUI.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from studio import __version__
from studio.engine.run_dir import RunDir
from studio.errors import StudioError


class UsageError(StudioError):
    """A command-line usage mistake (argparse's own errors come here too)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage and exit 2 itself
        raise UsageError(f"{self.prog}: {message}")


def _add_run_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `studio train`")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="studio", description="Train a neural network, headless or in the studio window.")
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("gui", help="open the studio window")
    p.add_argument("target", nargs="?", metavar="CONFIG.toml|RUN_DIR")

    p = sub.add_parser("train", help="train headless from a TOML config")
    p.add_argument("config", metavar="CONFIG.toml")
    p.add_argument(
        "--run-dir",
        help="where the run goes (default: a new folder in the runs folder: $STUDIO_RUNS_DIR, else the one chosen in the window, else the user's data folder)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set train.lr=0.01 (repeatable)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.add_argument("--nproc", type=int, help="train with N processes under DDP, through torchrun ([train] nproc)")

    p = sub.add_parser("resume", help=f"continue a run from {RunDir.LAST_CHECKPOINT}")
    _add_run_dir(p)
    p.add_argument("--epochs", type=int, help="raise the total number of epochs")
    p.add_argument("--quiet", "-q", action="store_true")
    p.add_argument("--nproc", type=int, help="continue with N processes (default: as the run trained)")

    p = sub.add_parser("eval", help="print a run's metrics (a table on a terminal, else one JSON object)")
    _add_run_dir(p)
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--split", choices=("val", "test", "train"), default="test")
    p.add_argument("--json", action="store_true", help="print JSON (the default when stdout is not a terminal)")

    p = sub.add_parser("export", help="write ONNX and check it against PyTorch")
    _add_run_dir(p)
    p.add_argument("-o", "--output", metavar="FILE.onnx")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--opset", type=int, default=None)
    p.add_argument("--quantize", choices=("dynamic", "static"), default=None)

    p = sub.add_parser("predict", help="predict with an exported model or a run")
    p.add_argument("model", metavar="MODEL.onnx|RUN_DIR")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--top", type=int, default=3, help="how many classes in `top`")
    p.add_argument("--json", action="store_true", help="print JSON lines (the default when stdout is not a terminal)")

    p = sub.add_parser("lr-find", help="run a learning-rate range test")
    p.add_argument("config", metavar="CONFIG.toml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--steps", type=int, default=100, help="most steps of the test (default 100)")
    p.add_argument("--start-lr", type=float, default=1e-7, help="first rate (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, help="last rate (default 10)")
    return parser


def _default_run_dir(cfg: Any) -> Path:
    from studio.engine.run_dir import default_runs_dir, new_run_dir

    # The window's default too (runs_folder.py), so the Runs tab lists what the command line trains.
    return new_run_dir(default_runs_dir(), cfg.data.source, cfg.model.arch)


def _fit(cfg: Any, run_dir: Path, quiet: bool, resume: bool, ctx: Any = None) -> int:
    from studio.engine.control import TrainingControl
    from studio.engine.distributed import SINGLE, RankSignals, Terminated
    from studio.engine.progress import ProgressPrinter
    from studio.engine.trainer import Trainer, TrainingFailed

    ctx = ctx or SINGLE
    printer = ProgressPrinter(quiet=quiet)
    callbacks = [printer] if ctx.is_main else []  # one process prints: rank 0
    control = TrainingControl()
    trainer = Trainer(cfg, run_dir, callbacks=callbacks, control=control, resume=resume, dist=ctx)
    try:
        with RankSignals(ctx, control.stop) as signals:  # under DDP only: Ctrl-C stops every rank together
            trainer.fit()
    except (TrainingFailed, Terminated) as exc:
        if ctx.is_main:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if not ctx.active:
            raise
        if ctx.is_main:  # a peer died (gloo/NCCL says the connection broke): summary.json says failed
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            print(f"error: another process of the run failed ({first}); the last checkpoint is kept", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if ctx.is_main:
            _say_interrupted(run_dir)
        return 130
    finally:
        printer.close()
    if signals.interrupted:
        if ctx.is_main:
            _say_interrupted(run_dir)
        return 130
    return 0


def _say_interrupted(run_dir: Path) -> None:
    if RunDir(run_dir).has_checkpoint("last"):
        command = f"studio resume {shlex.quote(str(run_dir))}"
        print(f"\ninterrupted: the last checkpoint was saved; continue with: {command}", file=sys.stderr)
    else:
        print("\ninterrupted before the first checkpoint; nothing to resume", file=sys.stderr)


def _nproc(cfg: Any, asked: int | None) -> Any:
    if asked is None:
        return cfg
    if asked < 1:
        raise UsageError(f"--nproc must be >= 1 (got {asked})")
    return cfg.replace_value("train.nproc", asked)


def _launch(cfg: Any, config_path: str | None, run_dir: Path, extra: list[str]) -> int:
    """`--nproc N`: check what torchrun's ranks would refuse, then run torchrun and wait for it."""
    import shlex

    from studio.data import load_data
    from studio.engine import distributed
    from studio.engine.launcher import run_torchrun

    nproc = cfg.train.nproc
    distributed.check_split(len(load_data(cfg).train), cfg.train.batch_size, nproc)
    command = distributed.torchrun_command(config_path, run_dir, nproc, resume=config_path is None, extra=extra)
    print(f"starting {nproc} processes: {shlex.join(command)}", file=sys.stderr)
    if config_path is not None:
        print(f"on a cluster: {distributed.cluster_command(config_path, run_dir, nproc)}", file=sys.stderr)
    return run_torchrun(command, RunDir(run_dir).control)


def _rank0_decides(ctx: Any, decide: Callable[[], Any]) -> Any:
    """Rank 0's answer (or refusal) on every rank, so a refusal ends every rank at once and is printed once."""
    outcome: Any = None
    if ctx.is_main:
        try:
            outcome = ("ok", decide())
        except StudioError as exc:
            outcome = ("error", str(exc))
    outcome = ctx.broadcast(outcome)
    if outcome[0] == "error":
        raise UsageError(outcome[1])
    return outcome[1]


def _as_rank(cfg: Any, run: Callable[[Any, Any], int]) -> int:
    """Under torchrun: join the process group, record the world size in the config, run, leave."""
    from studio.engine import distributed

    ctx = distributed.join(cfg.train.device)
    try:
        return run(cfg.replace_value("train.nproc", ctx.world_size), ctx)
    finally:
        distributed.leave()


def cmd_train(args: argparse.Namespace) -> int:
    from studio.config import load_config
    from studio.engine import distributed

    cfg = _nproc(load_config(args.config, args.overrides), args.nproc)
    if distributed.launched_by_torchrun():
        return _as_rank(cfg, lambda cfg, ctx: _train_rank(cfg, args, ctx))
    run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir(cfg)
    _check_new_run_dir(run_dir)
    if cfg.train.nproc > 1:
        extra = [a for o in args.overrides for a in ("--set", o)] + ["--set", f"train.nproc={cfg.train.nproc}"]
        return _launch(cfg, args.config, run_dir, extra + (["--quiet"] if args.quiet else []))
    return _fit(cfg, run_dir, args.quiet, resume=False)


def _check_new_run_dir(run_dir: Path) -> None:
    RunDir(run_dir).lock().check_free()  # a busy folder says so first; the trainer takes the lock itself
    if RunDir(run_dir).has_checkpoint("last"):
        raise UsageError(
            f"--run-dir '{run_dir}' already holds a run; use `studio resume {run_dir}` or choose another folder"
        )


def _train_rank(cfg: Any, args: argparse.Namespace, ctx: Any) -> int:
    """`studio train` as one rank: rank 0 picks the folder; a torchrun restart continues its last.pt."""
    from studio.engine import distributed

    def decide() -> tuple[str, bool]:
        run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir(cfg)
        files = RunDir(run_dir)
        files.lock().check_free()
        if files.has_checkpoint("last") and distributed.restart_count() > 0:
            print(f"torchrun restarted the run: continuing from {files.checkpoint('last')}", file=sys.stderr)
            return str(run_dir), True
        _check_new_run_dir(run_dir)
        return str(run_dir), False

    run_dir, resume = _rank0_decides(ctx, decide)
    return _fit(cfg, Path(run_dir), args.quiet, resume=resume, ctx=ctx)


def load_run_config(run_dir: Path) -> Any:
    from studio.config import load_config

    return load_config(RunDir(run_dir).check().config)


def cmd_resume(args: argparse.Namespace) -> int:
    from studio.engine import distributed
    from studio.engine.checkpoint import load_checkpoint

    run_dir = Path(args.run_dir)
    files = RunDir(run_dir)
    cfg = _nproc(load_run_config(run_dir), args.nproc)
    torchrun = distributed.launched_by_torchrun()
    # A run another process is training may have no last.pt yet: say that it is busy, not that.
    if not torchrun:
        files.lock().check_free()
    state = load_checkpoint(files.checkpoint("last"))
    if args.epochs is not None:
        if args.epochs < 1:
            raise UsageError(f"--epochs must be >= 1 (got {args.epochs})")
        cfg = cfg.replace_value("train.epochs", args.epochs)
    done = state["epoch"]
    summary = files.read_summary() or {}
    if done >= cfg.train.epochs and state.get("pos", 0) == 0:
        print(
            f"{run_dir}: all {cfg.train.epochs} epochs are done ({summary.get('status', 'completed')}); "
            "use --epochs N to train further",
            file=sys.stderr,
        )
        return 0
    if torchrun:
        return _as_rank(cfg, lambda cfg, ctx: _resume_rank(cfg, args, ctx))
    if cfg.train.nproc > 1:
        extra = (["--epochs", str(args.epochs)] if args.epochs else []) + (["--quiet"] if args.quiet else [])
        return _launch(cfg, None, run_dir, extra)
    return _fit(cfg, run_dir, args.quiet, resume=True)


def _resume_rank(cfg: Any, args: argparse.Namespace, ctx: Any) -> int:
    _rank0_decides(ctx, lambda: RunDir(Path(args.run_dir)).lock().check_free())
    return _fit(cfg, Path(args.run_dir), args.quiet, resume=True, ctx=ctx)


def cmd_eval(args: argparse.Namespace) -> int:
    from studio.engine.report import evaluate_run
    from studio.export.cli import eval_table, print_table, wants_json

    report = evaluate_run(Path(args.run_dir), args.checkpoint, args.split)
    if wants_json(args.json):
        if report.get("note"):  # the table shows it; beside JSON it goes to stderr
            print(f"note: {report['note']}", file=sys.stderr)
        print(json.dumps(report))
    else:
        print_table(eval_table(report))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from studio.export.cli import run_export

    return run_export(args.run_dir, args.output, checkpoint=args.checkpoint, opset=args.opset, quantize=args.quantize)


def cmd_predict(args: argparse.Namespace) -> int:
    from studio.export.cli import run_predict

    return run_predict(args.model, args.files, top=args.top, as_json=args.json)


def cmd_lr_find(args: argparse.Namespace) -> int:
    """Print the curve's outline (stderr) and the suggested rate (stdout); 1 when there is none."""
    from studio.config import load_config
    from studio.engine.events import Message
    from studio.engine.lr_finder import LRFinderPoint, find_lr

    config = load_config(args.config, args.overrides)
    steps, start, end = args.steps or 100, args.start_lr or 1e-7, args.end_lr or 10.0
    print(
        f"lr-find: {config.data.source} / {config.model.arch} / {config.train.optimizer}, "
        f"batch size {config.train.batch_size}, lr {start:g} -> {end:g} over up to {steps} steps",
        file=sys.stderr,
    )

    def show(p: LRFinderPoint) -> None:
        if p.step == 1 or p.step % 10 == 0:
            print(f"  step {p.step:4d}  lr {p.lr:9.3e}  loss {p.loss:.4f}", file=sys.stderr)

    def warn(m: Message) -> None:
        if m.level != "info":
            print(f"{m.level}: {m.text}", file=sys.stderr)

    result = find_lr(config, start_lr=start, end_lr=end, num_steps=steps, on_point=show, on_message=warn)
    print(f"stopped: {result.reason}", file=sys.stderr)
    if result.suggestion is None or result.suggestion_index is None:
        print(
            "error: no suggested lr: the loss never fell over the range; try a lower start rate "
            "(--start-lr) or check the data",
            file=sys.stderr,
        )
        return 1
    i = result.suggestion_index
    print(
        f"suggested lr: {result.suggestion:.3g} (loss {result.losses[i]:.4f}, falling; "
        f"lowest loss {min(result.losses):.4f} at lr {result.min_loss_lr:.3g})"
    )
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from studio.ui.app import run_gui
    except ImportError as exc:
        raise StudioError(f"the studio window needs PySide6 and pyqtgraph ({exc})") from None
    return run_gui(getattr(args, "target", None))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "gui": cmd_gui,
    "train": cmd_train,
    "resume": cmd_resume,
    "eval": cmd_eval,
    "export": cmd_export,
    "predict": cmd_predict,
    "lr-find": cmd_lr_find,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `studio` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        command = args.command or "gui"
        return COMMANDS[command](args)
    except StudioError as exc:
        if os.environ.get("RANK", "0") in ("", "0"):  # under torchrun, rank 0 alone says it
            print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the last checkpoint was saved", file=sys.stderr)
        return 130
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except Exception as exc:  # noqa: BLE001 - the one place an unexpected failure is reported
        import traceback

        traceback.print_exc()
        print(f"error: unexpected failure: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
