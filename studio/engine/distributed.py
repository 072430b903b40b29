"""One run in N processes under DDP, as `torchrun` starts them: the rank, the process group, the shards.

`torchrun --standalone --nproc_per_node N -m studio train CONFIG --run-dir R` starts N copies of
the command; each finds its rank in the environment (RANK, WORLD_SIZE, LOCAL_RANK) and `join`s
the process group (NCCL on CUDA, gloo on the CPU). Rank 0 alone writes the run directory. Every
rank cuts the same global batches from the same seeded permutation single-process training uses,
and keeps positions r::N of each (`shard`), so the data order is reproducible and resumable and
`batch_size` stays the global batch. Sums (loss, hits, counts) are all-reduced at every step, so
records and checkpoints hold the figures of all samples. Live control (the in-process
`TrainingControl` and the run directory's control.json) is read by rank 0 and broadcast at each
step boundary (`ControlExchange`), so every rank applies a change at the same step.

`torchrun_command` builds the command line `studio train --nproc N` runs (and the window, for a
run of N processes); `cluster_command` the equivalent for `srun` on a cluster.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from studio.engine.device import resolve_device
from studio.errors import ConfigError, StudioError

__all__ = [
    "SINGLE",
    "Dist",
    "DistributedError",
    "check_split",
    "cluster_command",
    "from_env",
    "join",
    "leave",
    "shard",
    "torchrun_command",
]

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class DistributedError(StudioError):
    """torchrun started this process but the run cannot be one run of N processes."""


@dataclass(frozen=True)
class Dist:
    """Where this process stands in the run: its rank of `world_size`, and its GPU (`local_rank`)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """True when several processes train this run (a process group exists)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run directory and prints."""
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        """The config's device for this rank: CUDA becomes cuda:LOCAL_RANK, the CPU stays the CPU."""
        device = resolve_device(name)
        if self.active and device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise DistributedError(
                    f"LOCAL_RANK {self.local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                    "start at most that many processes per node"
                )
            device = torch.device("cuda", self.local_rank)
        if self.active and device.type == "mps":
            raise DistributedError("Apple MPS cannot train with several processes; use --nproc 1")
        return device

    # -- collectives (no-ops for a single process) ---------------------------------------------

    def all_sum(self, values: list[float | torch.Tensor], device: torch.device) -> list[torch.Tensor]:
        """The sums over every rank of `values` (float64 scalars), in one all-reduce."""
        flat = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])
        if self.active:
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        return list(flat.unbind())

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value`, on every rank."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self.active:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out


SINGLE = Dist()


def launched_by_torchrun(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return any(env.get(k) for k in ("RANK", "WORLD_SIZE")) or bool(env.get("TORCHELASTIC_RUN_ID"))


def from_env(environ: Mapping[str, str] | None = None) -> Dist:
    """This process's place from torchrun's variables; SINGLE when torchrun did not start it."""
    env = os.environ if environ is None else environ
    if not launched_by_torchrun(env):
        return SINGLE
    try:
        rank, world = int(env.get("RANK", "")), int(env.get("WORLD_SIZE", ""))
        local = int(env.get("LOCAL_RANK", "0") or 0)
    except ValueError:
        shown = ", ".join(f"{k}={env.get(k)!r}" for k in ENV_KEYS)
        raise DistributedError(f"torchrun's environment is incomplete or not numbers ({shown})") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise DistributedError(f"impossible torchrun environment: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    return Dist(rank, world, local)


def restart_count(environ: Mapping[str, str] | None = None) -> int:
    """How often torchrun has restarted the run's processes (`--max-restarts`); 0 the first time."""
    env = os.environ if environ is None else environ
    try:
        return int(env.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    except ValueError:
        return 0


def join(device_name: str, environ: Mapping[str, str] | None = None) -> Dist:
    """Join the run's process group when torchrun started this process (once); SINGLE otherwise.

    A process torchrun started that cannot form the group (no rendezvous address, a peer that
    never came) raises DistributedError instead of training on alone into the shared folder.
    """
    ctx = from_env(environ)
    if not ctx.active:
        return ctx
    if dist.is_initialized():
        return ctx
    device = ctx.device(device_name)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=float(os.environ.get("STUDIO_DIST_TIMEOUT", "1800")))
    try:
        store = _attempt_store(ctx, timeout)
        if store is None:  # no rendezvous address: env:// says what is missing
            dist.init_process_group(backend=backend, timeout=timeout)
        else:
            dist.init_process_group(backend, store=store, rank=ctx.rank, world_size=ctx.world_size, timeout=timeout)
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DistributedError(
            f"torchrun started rank {ctx.rank} of {ctx.world_size}, but no process group could be formed "
            f"({backend}: {first}); start the run with `torchrun --standalone --nproc_per_node N -m studio ...`"
        ) from None
    return ctx


def _attempt_store(ctx: Dist, timeout: timedelta) -> dist.Store | None:
    """torchrun's rendezvous store, under a prefix of this attempt (`--max-restarts`), or None without an address.

    A restarted attempt that read the store's plain keys found the previous attempt's gloo
    addresses and could not connect; a prefix per attempt keeps each attempt's keys apart.
    """
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if not addr or not port:
        return None
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # torchrun's agent hosts the store
    store = dist.TCPStore(addr, int(port), ctx.world_size, is_master=not agent and ctx.rank == 0, timeout=timeout)
    return dist.PrefixStore(f"studio/attempt_{restart_count()}", store)


def leave() -> None:
    """Leave the process group (at the end of a command), if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_split(n_train: int, batch_size: int, world_size: int) -> None:
    """Refuse a world size the training data cannot be split for: every rank needs samples in every batch."""
    if world_size <= 1:
        return
    if batch_size % world_size:
        raise ConfigError(
            f"[train] batch_size = {batch_size} is the global batch and must split evenly over "
            f"{world_size} processes; use a multiple of {world_size}"
        )
    if n_train < world_size:
        raise ConfigError(f"the training split has {n_train} sample(s), fewer than the {world_size} processes")
    last = n_train % batch_size
    if last not in (0, 1) and last < world_size:  # a lone last sample joins the batch before (cut_size)
        raise ConfigError(
            f"the training split's last batch would have {last} sample(s) for {world_size} processes; "
            f"choose a batch_size that leaves 0 or at least {world_size} samples over ({n_train} samples)"
        )


def shard(x: torch.Tensor, y: torch.Tensor, ctx: Dist) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's part of a global batch: positions rank, rank + N, rank + 2N, ..."""
    if not ctx.active:
        return x, y
    return x[ctx.rank :: ctx.world_size], y[ctx.rank :: ctx.world_size]


def ddp_wrap(model: torch.nn.Module, device: torch.device, partly_frozen: bool = False) -> torch.nn.Module:
    """The model under DistributedDataParallel: gradients are averaged over the ranks during backward.

    DDP also copies rank 0's weights to every rank when it wraps them (they are equal already:
    every rank seeds its initialisation, or loads the same checkpoint). `partly_frozen`: some
    parameters will get no gradient for a while (fine-tuning's frozen backbone), which DDP must
    be told, at the cost of a walk over the autograd graph each step.
    """
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=partly_frozen)


def checkpoint_keys(ctx: Dist, gather: bool = True) -> dict[str, Any]:
    """What a checkpoint adds under DDP: the world size and every rank's generators (a collective: all ranks call it).

    Every rank draws its own dropout masks, and an epoch's last shards may differ in size, so the
    ranks' generators drift apart; resuming each from its own keeps the same N bit-exact.
    """
    from studio.engine.checkpoint import rng_state

    return {"world_size": ctx.world_size} | ({"rank_rng": ctx.gather(rng_state())} if ctx.active and gather else {})


def restore_rank_rng(state: dict[str, Any], ctx: Dist) -> None:
    """Put this rank's own generators back, when the checkpoint has them for this world size."""
    from studio.engine.checkpoint import set_rng_state

    ranks = state.get("rank_rng")
    if ctx.active and isinstance(ranks, list) and len(ranks) == ctx.world_size:
        set_rng_state(ranks[ctx.rank])


class Terminated(Exception):
    """SIGTERM reached a rank: torchrun ends the run's processes because one of them failed (or a scheduler did)."""


class RankSignals:
    """Signals under DDP: Ctrl-C becomes rank 0's cooperative stop, SIGTERM a failure rank 0 records.

    A Ctrl-C that split ranks at different steps would leave them waiting on each other, so the
    other ranks ignore SIGINT and rank 0 asks its `TrainingControl` to stop: the stop is broadcast
    at the next step boundary, every rank stops there, and rank 0 saves last.pt and summary.json.
    SIGTERM (torchrun ending the others after one rank died) raises `Terminated`, so rank 0 writes
    summary.json with status failed; the last good checkpoint stays.
    """

    def __init__(self, ctx: Dist, stop: Callable[[], None]) -> None:
        self.ctx, self.stop = ctx, stop
        self.interrupted = False
        self._previous: list[tuple[int, Any]] = []

    def __enter__(self) -> RankSignals:
        if self.ctx.active and threading.current_thread() is threading.main_thread():
            for sig, handler in ((signal.SIGINT, self._on_sigint), (signal.SIGTERM, self._on_sigterm)):
                self._previous.append((sig, signal.signal(sig, handler)))
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous:
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.ctx.is_main:
            self.interrupted = True
            self.stop()

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        raise Terminated("terminated (SIGTERM): torchrun ends every process of the run when one of them fails")


# -- launching ------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on this machine right now, for torchrun's rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun_command(
    config_path: str | Path | None,
    run_dir: str | Path,
    nproc: int,
    *,
    resume: bool = False,
    extra: list[str] | tuple[str, ...] = (),
    port: int | None = None,
    python: str | None = None,
) -> list[str]:
    """The command that trains (or, with `resume`, continues) `run_dir` with `nproc` processes on this machine.

    `python -m torch.distributed.run` is torchrun itself; `--standalone` keeps the rendezvous on
    this machine (127.0.0.1 and a free port). `extra` goes after the studio command (`--set ...`).
    """
    if nproc < 1:
        raise ConfigError(f"nproc must be >= 1 (got {nproc})")
    head = [
        python or sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(nproc),
        "--master_port",
        str(port or free_port()),
        "-m",
        "studio",
    ]
    if resume:
        return [*head, "resume", str(run_dir), *extra]
    if config_path is None:
        raise ValueError("a new run needs its config file")
    return [*head, "train", str(config_path), "--run-dir", str(run_dir), *extra]


def cluster_command(config_path: str | Path, run_dir: str | Path, nproc: int) -> str:
    """The same run on a cluster: one torchrun per node under `srun`, meeting at the first node."""
    return (
        f"srun torchrun --nnodes $SLURM_NNODES --nproc_per_node {nproc} --rdzv-backend c10d "
        f"--rdzv-id $SLURM_JOB_ID --rdzv-endpoint $HEAD_NODE:29500 -m studio train {config_path} --run-dir {run_dir}"
    )


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of torchrun's processes: one OpenMP thread each, so N processes share the cores."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
