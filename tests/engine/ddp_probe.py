"""A rank that reports what it did: run by torchrun from test_distributed.py, never collected by pytest.

`python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_probe.py CONFIG RUN_DIR OUT_DIR [pause]`
trains like `studio train`, and each rank writes OUT_DIR/rank<R>.json: the steps at which its
learning rate changed and a digest of its final parameters. Rank 0 also writes control.json (a
new rate) once it has logged step 3, as a window following the run would. With `pause`, it writes
`"pause": true` instead, and `"pause": false` once the loop holds in the pause (held_in_pause in
its report).
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from pathlib import Path
from typing import Any

from studio.config import load_config
from studio.engine import distributed
from studio.engine.callbacks import Callback
from studio.engine.control_file import write_control
from studio.engine.run_dir import RunDir
from studio.engine.trainer import Trainer

NEW_LR = 0.0005


class Probe(Callback):
    def __init__(self, ctx: distributed.Dist, run_dir: Path, out: Path, pause: bool) -> None:
        self.ctx, self.run_dir, self.out, self.pause = ctx, run_dir, out, pause
        self.held: list[bool] = []
        self.lr_by_step: list[tuple[int, float]] = []
        self.asked = False

    def on_step_end(self, trainer: Any, record: Any) -> None:
        lr = trainer.current_lr()
        if not self.lr_by_step or self.lr_by_step[-1][1] != lr:
            self.lr_by_step.append((record.step, lr))
        if self.ctx.is_main and record.step >= 3 and not self.asked:
            self.asked = True
            path = RunDir(self.run_dir).control
            if not self.pause:
                write_control(path, lr=NEW_LR)
                look_at_control_now(trainer)
                return
            write_control(path, pause=True)
            look_at_control_now(trainer)

            def resume_once_held() -> None:  # as a window would: resume after the run has paused
                self.held.append(trainer.control.wait_until_held(120))
                write_control(path, pause=False)

            threading.Thread(target=resume_once_held, daemon=True).start()

    def on_fit_end(self, trainer: Any, event: Any) -> None:
        digest = hashlib.sha256()
        for p in trainer.model.parameters():
            digest.update(p.detach().cpu().numpy().tobytes())
        report = {
            "rank": self.ctx.rank,
            "lr_by_step": self.lr_by_step,
            "params": digest.hexdigest(),
            "held_in_pause": self.held,
        }
        (self.out / f"rank{self.ctx.rank}.json").write_text(json.dumps(report))


def look_at_control_now(trainer: Any) -> None:
    """Rank 0 reads control.json before the next step instead of at its next poll (every POLL_S): a
    short run on a fast machine could otherwise end before it looked, and never pause."""
    trainer._controls.file._next = 0.0


def main() -> None:
    config, run_dir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    pause = sys.argv[4:] == ["pause"]
    cfg = load_config(config)
    ctx = distributed.join(cfg.train.device)
    try:
        Trainer(cfg, run_dir, callbacks=[Probe(ctx, run_dir, out, pause)], dist=ctx).fit()
    finally:
        distributed.leave()


if __name__ == "__main__":
    main()
