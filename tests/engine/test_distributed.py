"""One run in two processes under DDP (gloo, CPU), as torchrun starts them.

The multi-process tests start torchrun (seconds each on a busy two-core machine); the longer ones
are marked slow. They use an MLP on a slice of the bundled digits (the splits keep ~1,600 samples
for training).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from studio.config import Config, load_config
from studio.engine import distributed
from studio.engine.checkpoint import load_checkpoint
from studio.engine.control import TrainingControl
from studio.engine.control_file import ControlFile, read_control, write_control
from studio.engine.trainer import Trainer
from studio.errors import ConfigError

HERE = Path(__file__).resolve().parent
TIMEOUT = 300  # a hung rendezvous fails the test instead of hanging the suite

SMALL = """seed = 0
[data]
source = "digits"
val_split = 0.5
test_split = 0.3
[model]
arch = "mlp"
hidden = [32]
[train]
epochs = {epochs}
batch_size = 64
lr = 0.003
device = "cpu"
log_every = {log_every}
"""


def small_config(tmp_path: Path, epochs: int = 2, log_every: int = 5, name: str = "small.toml") -> Path:
    path = tmp_path / name
    path.write_text(SMALL.format(epochs=epochs, log_every=log_every), encoding="utf-8")
    return path


def env() -> dict[str, str]:
    out = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        out.pop(key, None)
    return out


def studio(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studio", *args], env=env(), capture_output=True, text=True, timeout=timeout
    )


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]


def summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text())


def records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# -- without processes -------------------------------------------------------------------------


def test_torchrun_environment_is_read_and_checked() -> None:
    assert distributed.from_env({}) == distributed.SINGLE
    ctx = distributed.from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.active, ctx.is_main) == (1, 2, 1, True, False)
    with pytest.raises(distributed.DistributedError, match="RANK=2, WORLD_SIZE=2"):
        distributed.from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(distributed.DistributedError, match="not numbers"):
        distributed.from_env({"RANK": "x", "WORLD_SIZE": "2"})


def test_a_world_size_the_data_cannot_be_split_for_is_refused() -> None:
    distributed.check_split(1601, 64, 2)  # 1601 % 64 = 1: the lone sample joins the last batch
    with pytest.raises(ConfigError, match="multiple of 2"):
        distributed.check_split(1600, 63, 2)
    with pytest.raises(ConfigError, match="fewer than the 4 processes"):
        distributed.check_split(3, 4, 4)
    with pytest.raises(ConfigError, match="last batch would have 2 sample"):
        distributed.check_split(66, 64, 4)


def test_shards_are_disjoint_positions_of_the_global_batch() -> None:
    x, y = torch.arange(10).reshape(5, 2), torch.arange(5)
    parts = [distributed.shard(x, y, distributed.Dist(r, 2)) for r in range(2)]
    assert parts[0][1].tolist() == [0, 2, 4] and parts[1][1].tolist() == [1, 3]


def test_torchrun_command_for_a_new_run_and_a_resume(tmp_path: Path) -> None:
    cmd = distributed.torchrun_command("c.toml", tmp_path / "r", 3, port=29999)
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc_per_node") + 1] == "3" and cmd[cmd.index("--master_port") + 1] == "29999"
    assert cmd[-5:] == ["studio", "train", "c.toml", "--run-dir", str(tmp_path / "r")]
    assert distributed.torchrun_command(None, "r", 2, resume=True)[-2:] == ["resume", "r"]
    assert "--rdzv-endpoint" in distributed.cluster_command("c.toml", "r", 4)


def test_control_file_applies_what_changed_and_ignores_a_stale_or_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    write_control(path, stop=True)  # stale: from before the fit
    said: list[str] = []
    reader, control = ControlFile(path, lambda text, level: said.append(text)), TrainingControl()
    reader._next = 0.0
    reader.poll(control)
    assert not control.stop_requested
    path.write_text('{"lr": "fast", "batch_size": -3, "pause": 1}')  # untrusted: wrong types are dropped
    assert read_control(path) == {}
    write_control(path, lr=0.01, pause=True)
    reader._next = 0.0
    reader.poll(control)
    assert control.take_changes() == {"lr": 0.01} and control.paused


def test_torchrun_environment_without_a_process_group_is_one_clear_error(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    bad = dict(env(), RANK="0", WORLD_SIZE="2", LOCAL_RANK="0")
    bad.pop("MASTER_ADDR", None)
    done = subprocess.run(
        [sys.executable, "-m", "studio", "train", str(cfg), "--run-dir", str(tmp_path / "run")],
        env=bad,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: torchrun started rank 0 of 2, but no process group")
    assert not (tmp_path / "run").exists()


def test_nproc_with_a_batch_that_does_not_split_is_refused_before_torchrun(tmp_path: Path) -> None:
    done = studio(
        "train", str(small_config(tmp_path)), "--nproc", "2", "--set", "train.batch_size=63", "--run-dir", "r"
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: [train] batch_size = 63 is the global batch and must split evenly over 2 processes; use a multiple of 2"
    ]


# -- two processes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`studio train --nproc 2`: the run both the accuracy and the resume tests compare against."""
    tmp = tmp_path_factory.mktemp("ddp")
    run = tmp / "run"
    done = studio("train", str(small_config(tmp)), "--nproc", "2", "--run-dir", str(run))
    return run, done


def test_nproc_2_trains_one_run_with_accuracy_of_one_process(
    two_process_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    run, done = two_process_run
    assert done.returncode == 0, done.stderr
    assert "on a cluster: srun torchrun" in done.stderr
    s = summary(run)
    assert s["status"] == "completed" and s["world_size"] == 2
    assert load_config(run / "config.toml").train.nproc == 2
    lines = records(run)
    assert lines and all(r["world_size"] == 2 for r in lines)
    names = sorted(p.name for p in run.iterdir())
    events = [n for n in names if n.startswith("events.out.tfevents.")]  # live TensorBoard events
    assert len(events) == 1  # rank 0 alone writes them
    assert [n for n in names if n not in events] == ["checkpoints", "config.toml", "metrics.jsonl", "summary.json"]
    single = Trainer(load_config(small_config(tmp_path)), tmp_path / "one").fit()
    assert "world_size" not in records(tmp_path / "one")[0]
    assert abs(s["metrics"]["test_accuracy"] - single["metrics"]["test_accuracy"]) <= 0.005
    assert abs(s["metrics"]["val_accuracy"] - single["metrics"]["val_accuracy"]) <= 0.005


@pytest.mark.slow
def test_resume_at_2_processes_is_bit_exact(
    two_process_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    full, _ = two_process_run
    half = tmp_path / "half"
    first = studio("train", str(small_config(tmp_path, epochs=1)), "--nproc", "2", "--run-dir", str(half))
    assert first.returncode == 0, first.stderr
    again = studio("resume", str(half), "--epochs", "2")  # nproc 2 from the run's config
    assert again.returncode == 0, again.stderr
    assert "not bit for bit" not in again.stderr
    a, b = load_checkpoint(full / "checkpoints" / "last.pt"), load_checkpoint(half / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] and a["world_size"] == b["world_size"] == 2
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key


@pytest.mark.slow
def probe_ranks(cfg: Path, run: Path, out: Path, *mode: str) -> list[dict[str, Any]]:
    """Train `cfg` with ddp_probe.py on 2 ranks; each rank's report (what it saw, its parameters)."""
    done = subprocess.run(
        torchrun(str(HERE / "ddp_probe.py"), str(cfg), str(run), str(out), *mode),
        env=env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_a_live_lr_change_lands_at_the_same_step_on_both_ranks(tmp_path: Path) -> None:
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    cfg = small_config(tmp_path, epochs=4, log_every=1)
    ranks = probe_ranks(cfg, run, out)
    assert ranks[0]["lr_by_step"] == ranks[1]["lr_by_step"]
    (start, lr0), (changed_at, lr1) = ranks[0]["lr_by_step"]
    assert (start, lr0, lr1) == (1, 0.003, 0.0005) and changed_at > 3
    assert ranks[0]["params"] == ranks[1]["params"]
    changes = [r for r in records(run) if r.get("changed")]
    assert [(r["step"], r["changed"]) for r in changes] == [(changed_at, {"lr": [0.003, 0.0005]})]


def _ranks_of(parent: int) -> dict[int, int]:
    """{rank: pid} of torchrun's worker processes."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            for item in environ:
                if item.startswith(b"RANK="):
                    found[int(item[5:])] = int(entry.name)
    return found


@pytest.mark.slow
@contextlib.contextmanager
def running_until_checkpoint(command: list[str], run: Path) -> Iterator[subprocess.Popen[str]]:
    """Start `command` and yield it once the run wrote its first checkpoint; kill it if still alive after."""
    proc = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        last = run / "checkpoints" / "last.pt"
        while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # polling for the event (the first checkpoint), not timing it
        assert last.exists(), "no checkpoint was written"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kill_9_of_one_rank_then_resume_completes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = small_config(tmp_path, epochs=40)
    with running_until_checkpoint(torchrun("-m", "studio", "train", str(cfg), "--run-dir", str(run)), run) as proc:
        ranks = _ranks_of(proc.pid)
        assert set(ranks) == {0, 1}
        os.kill(ranks[1], signal.SIGKILL)
        proc.communicate(timeout=TIMEOUT)
    assert proc.returncode != 0
    s = summary(run)
    assert s["status"] == "failed" and s["error"]
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert saved["epoch"] >= 1
    again = studio("resume", str(run), "--epochs", str(saved["epoch"] + 1))
    assert again.returncode == 0, again.stderr
    assert summary(run)["status"] == "completed" and summary(run)["world_size"] == 2


def test_a_single_process_run_is_as_before(tmp_path: Path) -> None:
    """No torchrun: no process group, no world size in the records, a summary that says 1."""
    cfg: Config = load_config(small_config(tmp_path, epochs=1))
    s = Trainer(cfg, tmp_path / "run").fit()
    assert s["world_size"] == 1 and "world_size" not in records(tmp_path / "run")[-1]


@pytest.mark.slow
def test_ctrl_c_of_studio_train_nproc_stops_every_rank_cleanly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = small_config(tmp_path, epochs=100)
    command = [sys.executable, "-m", "studio", "train", str(cfg), "--nproc", "2", "--run-dir", str(run)]
    with running_until_checkpoint(command, run) as proc:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    s = summary(run)
    assert s["status"] == "stopped" and s["world_size"] == 2 and s["epochs_completed"] < 100
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == s["step"]


@pytest.mark.slow
def test_torchrun_max_restarts_continues_from_last_pt(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = small_config(tmp_path, epochs=6)
    command = torchrun("--max-restarts", "1", "-m", "studio", "train", str(cfg), "--run-dir", str(run))
    with running_until_checkpoint(command, run) as proc:
        ranks = _ranks_of(proc.pid)
        assert set(ranks) == {0, 1}
        os.kill(ranks[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert "torchrun restarted the run: continuing from" in err
    s = summary(run)
    assert s["status"] == "completed" and s["epochs_completed"] == 6
    steps = [r["step"] for r in records(run) if r["kind"] == "step"]
    assert steps == sorted(set(steps))  # the resumed run cut metrics.jsonl back to last.pt: no step twice


@pytest.mark.slow
def test_a_pause_through_control_json_holds_every_rank_then_resumes(tmp_path: Path) -> None:
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    cfg = small_config(tmp_path, epochs=2, log_every=1)
    ranks = probe_ranks(cfg, run, out, "pause")
    assert ranks[0]["held_in_pause"] == [True]  # rank 0's loop held in the pause before the resume came
    assert ranks[0]["params"] == ranks[1]["params"]
    assert summary(run)["status"] == "completed" and summary(run)["epochs_completed"] == 2


@pytest.mark.slow
def test_resume_with_another_number_of_processes_says_it_is_not_bit_exact(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = studio("train", str(small_config(tmp_path, epochs=1)), "--nproc", "2", "--run-dir", str(run))
    assert first.returncode == 0, first.stderr
    again = studio("resume", str(run), "--epochs", "2", "--nproc", "1")
    assert again.returncode == 0, again.stderr
    assert "trained with 2 process(es) and continues with 1" in again.stderr and "not bit for bit" in again.stderr
    s = summary(run)
    assert s["status"] == "completed" and s["world_size"] == 1 and s["epochs_completed"] == 2
    assert load_config(run / "config.toml").train.nproc == 1
