"""CUDA failures on a real GPU: an out-of-memory batch size, and a device-side assert in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from studio.config import Config, with_overrides
from studio.engine import cuda_errors
from studio.engine.callbacks import Callback
from studio.engine.checkpoint import load_checkpoint
from studio.engine.trainer import Trainer, TrainingFailed

pytestmark = pytest.mark.cuda

ROOT = Path(__file__).resolve().parents[2]


class FillTheGpu(Callback):
    """After epoch 1, takes all but `leave` bytes of the GPU and asks for a bigger batch: epoch 2 runs out."""

    def __init__(self, leave: int = 512 * 2**20) -> None:
        self.leave = leave
        self.ballast: list[torch.Tensor] = []

    def on_epoch_end(self, trainer: Trainer, event: Any) -> None:
        if event.epoch == 1:
            free, _ = torch.cuda.mem_get_info(trainer.device)
            self.ballast.append(torch.empty(max(0, free - self.leave), dtype=torch.uint8, device=trainer.device))
            trainer.control.set_batch_size(4096)


def test_an_out_of_memory_batch_ends_in_words_with_the_figures_and_resumes(tmp_path: Path) -> None:
    c = with_overrides(Config(), ['train.device="cuda"', 'model.arch="resnet18"', "train.epochs=2"])
    run, fill = tmp_path / "run", FillTheGpu()
    with pytest.raises(TrainingFailed) as info:
        Trainer(c, run, callbacks=[fill]).fit()
    message = str(info.value)
    assert "out of memory on" in message and "at batch size 4096" in message
    assert "GiB allocated by this run" in message and "free of" in message and "(try 2048)" in message
    assert "the last good checkpoint (epoch 1," in message
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    assert cuda_errors.cuda_context_usable()  # out of memory leaves the context fine
    fill.ballast.clear()
    torch.cuda.empty_cache()
    # The same process trains on: resume with a batch that fits.
    c = with_overrides(c, ["train.batch_size=64"])
    assert Trainer(c, run, resume=True).fit()["status"] == "completed"


CHILD = textwrap.dedent(
    """
    import json, sys
    import torch
    from studio.config import Config, with_overrides
    from studio.engine import cuda_errors
    from studio.engine.callbacks import Callback
    from studio.engine.trainer import Trainer, TrainingFailed

    class Assert(Callback):
        def on_step_end(self, trainer, event):
            if event.step >= 20:  # an out-of-range index on the GPU: a device-side assert
                x = torch.zeros(4, device=trainer.device)
                x[torch.tensor([40], device=trainer.device)] += 1
                torch.cuda.synchronize()

    run = sys.argv[1]
    c = with_overrides(Config(), ['train.device="cuda"', "train.epochs=2", "train.log_every=5"])
    out = {}
    try:
        Trainer(c, run, callbacks=[Assert()]).fit()
    except TrainingFailed as exc:
        out["message"] = str(exc)
    out["usable"] = cuda_errors.cuda_context_usable()
    try:
        Trainer(c, run + "-next").fit()
    except (cuda_errors.CudaContextError, TrainingFailed) as exc:
        out["next"] = str(exc)
    print(json.dumps(out))
    """
)


def test_a_device_side_assert_ends_in_words_and_the_next_process_trains(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(run)], capture_output=True, text=True, timeout=300, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert "device-side assert" in out["message"] and cuda_errors.CONTEXT_LOST in out["message"]
    assert out["usable"] is False
    assert cuda_errors.CONTEXT_LOST in out["next"]
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    # A fresh process (this one has a healthy context) trains the next run.
    c = with_overrides(Config(), ['train.device="cuda"', "train.epochs=1"])
    assert Trainer(c, tmp_path / "next").fit()["status"] == "completed"
