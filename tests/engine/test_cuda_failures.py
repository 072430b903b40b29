"""The CUDA path's parts that a CPU can prove: device names, failure classification and messages,
the out-of-memory and lost-context endings (with fake errors), the scaler in checkpoints, and no
memory fields off CUDA. tests/cuda proves the rest on a GPU (`make test-gpu`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from studio import cli
from studio.data import DataBundle, load_data
from studio.engine import cuda_errors
from studio.engine.checkpoint import load_checkpoint, save_checkpoint
from studio.engine.cuda_errors import CudaFailureKind, MemoryFigures
from studio.engine.device import parse_device, resolve_device
from studio.engine.trainer import Trainer, TrainingFailed
from studio.errors import ConfigError
from tests.engine.test_interrupt_anywhere import Inject, assert_same_run, make_config, nth

ILLEGAL_ADDRESS = "CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be reported later"
DEVICE_ASSERT = "CUDA error: device-side assert triggered\nCompile with `TORCH_USE_CUDA_DSA` to enable device-side"
OUT_OF_MEMORY = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB"


@pytest.fixture(autouse=True)
def _fresh_context() -> Iterator[None]:
    cuda_errors.reset_for_tests()
    yield
    cuda_errors.reset_for_tests()


@pytest.fixture(scope="module")
def bundle() -> DataBundle:
    return load_data(make_config())


# -- device names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parsed"),
    [("auto", ("auto", None)), ("cpu", ("cpu", None)), ("cuda", ("cuda", None)), ("cuda:1", ("cuda", 1))],
)
def test_device_names_parse(name: str, parsed: tuple[str, int | None]) -> None:
    assert parse_device(name) == parsed


@pytest.mark.parametrize("name", ["cuda:", "cuda:x", "cuda:-1", "cudax", "gpu", "cpu:0", "cuda:1:2", ""])
def test_a_malformed_device_name_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda, cuda:N or mps"):
        resolve_device(name)


def test_cuda_without_cuda_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available on this machine"):
        resolve_device("cuda:0")


def test_a_cuda_index_that_does_not_exist_names_the_devices_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: f"Fake GPU {i}")
    with pytest.raises(ConfigError) as info:
        resolve_device("cuda:2")
    message = str(info.value)
    assert "'cuda:2'" in message and "2 CUDA devices" in message
    assert "cuda:0 (Fake GPU 0)" in message and "cuda:1 (Fake GPU 1)" in message
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_a_lost_context_refuses_cuda_but_not_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cuda_errors.mark_context_lost("CUDA error: device-side assert triggered")
    for name in ("cuda", "cuda:0", "auto"):  # auto never falls back to the CPU in silence
        with pytest.raises(cuda_errors.CudaContextError, match=cuda_errors.CONTEXT_LOST):
            resolve_device(name)
    assert resolve_device("cpu") == torch.device("cpu")


# -- classification and messages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (torch.OutOfMemoryError(OUT_OF_MEMORY), CudaFailureKind.OUT_OF_MEMORY),
        (
            RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
            CudaFailureKind.OUT_OF_MEMORY,
        ),
        (RuntimeError(DEVICE_ASSERT), CudaFailureKind.CONTEXT_LOST),
        (RuntimeError(ILLEGAL_ADDRESS), CudaFailureKind.CONTEXT_LOST),
        (RuntimeError("CUDA error: unspecified launch failure"), CudaFailureKind.CONTEXT_LOST),
        (RuntimeError("CUDA error: misaligned address"), CudaFailureKind.CONTEXT_LOST),
        (RuntimeError("CUDA error: uncorrectable ECC error encountered"), CudaFailureKind.CONTEXT_LOST),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x784 and 10x10)"), None),
        (ValueError("a device-side assert in a value error is no CUDA failure"), None),
        (KeyboardInterrupt(), None),
    ],
)
def test_classification(exc: BaseException, kind: CudaFailureKind | None) -> None:
    failure = cuda_errors.classify(exc)
    assert (failure.kind if failure else None) is kind
    if failure is not None:
        assert "\n" not in failure.detail and failure.detail


def test_accelerator_error_is_classified_when_torch_has_it() -> None:
    accelerator_error = getattr(torch, "AcceleratorError", None)
    if accelerator_error is None:
        pytest.skip("this torch has no AcceleratorError (before 2.8)")
    try:
        exc = accelerator_error(ILLEGAL_ADDRESS)
    except TypeError:
        pytest.skip("torch.AcceleratorError cannot be built from Python here")
    failure = cuda_errors.classify(exc)
    assert failure is not None and failure.kind is CudaFailureKind.CONTEXT_LOST


def test_a_cuda_error_behind_another_error_is_found() -> None:
    try:
        try:
            raise RuntimeError(DEVICE_ASSERT)
        except RuntimeError as inner:
            raise OSError("saving the checkpoint failed") from inner
    except OSError as outer:
        failure = cuda_errors.classify(outer)
    assert failure is not None and failure.kind is CudaFailureKind.CONTEXT_LOST


def test_the_out_of_memory_message_has_the_figures_and_what_to_try() -> None:
    failure = cuda_errors.classify(torch.OutOfMemoryError(OUT_OF_MEMORY))
    assert failure is not None
    gib = 2**30
    figures = MemoryFigures(allocated=70 * gib, reserved=75 * gib, peak=76 * gib, free=1 * gib, total=80 * gib)
    text = cuda_errors.out_of_memory_message(failure, figures, 4096, "NVIDIA H100 (cuda:0)", "fp32")
    assert "out of memory on NVIDIA H100 (cuda:0) at batch size 4096" in text
    for figure in ("70.00 GiB allocated", "75.00 GiB reserved", "peak 76.00 GiB", "1.00 GiB free of 80.00 GiB"):
        assert figure in text
    assert "batch_size (try 2048)" in text and 'precision = "bf16"' in text
    without = cuda_errors.out_of_memory_message(failure, None, 1, "CPU", "fp32")
    assert "try 1" in without and "Tried to allocate 2.00 GiB" in without and "bf16" not in without


def test_memory_figures_are_none_off_cuda() -> None:
    assert cuda_errors.memory_figures(torch.device("cpu")) is None


# -- endings, with fake errors from inside the step ----------------------------------------------


def raising(exc: BaseException) -> Callable[[], None]:
    def action() -> None:
        raise exc

    return action


def on_forward_raise(n: int, exc: BaseException) -> Callable[[Trainer], None]:
    def install(t: Trainer) -> None:
        assert t.model is not None
        tick = nth(n, raising(exc))
        t.model.register_forward_pre_hook(lambda m, args: tick() if m.training else None)

    return install


def test_out_of_memory_ends_in_words_keeps_the_progress_and_resumes_exactly(tmp_path: Path, bundle: DataBundle) -> None:
    run = tmp_path / "run"
    c = make_config()
    # Step 38 is in the second epoch: last.pt of epoch 1 exists, and the progress since is saved too.
    inject = Inject(on_forward_raise(38, torch.OutOfMemoryError(OUT_OF_MEMORY)))
    with pytest.raises(TrainingFailed) as info:
        Trainer(c, run, callbacks=[inject], data=bundle).fit()
    message = str(info.value)
    assert "out of memory on CPU at batch size 32" in message and "try 16" in message
    assert "the last good checkpoint (epoch 1, step 37) is kept" in message
    assert info.value.__context__ is None or info.value.__suppress_context__
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == message
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (saved["epoch"], saved["step"]) == (1, 37)
    Trainer(c, run, resume=True, data=bundle).fit()
    reference = tmp_path / "reference"
    Trainer(c, reference, data=bundle).fit()
    assert_same_run(reference, run)


def test_a_lost_context_ends_in_words_and_leaves_the_last_checkpoint_alone(tmp_path: Path, bundle: DataBundle) -> None:
    run = tmp_path / "run"
    seen: list[bytes] = []

    class Snapshot(Inject):  # the bytes of last.pt as epoch 1 left them
        def on_epoch_end(self, trainer: Trainer, event: object) -> None:
            seen.append((run / "checkpoints" / "last.pt").read_bytes())

    with pytest.raises(TrainingFailed) as info:
        Trainer(
            make_config(), run, callbacks=[Snapshot(on_forward_raise(38, RuntimeError(DEVICE_ASSERT)))], data=bundle
        ).fit()
    message = str(info.value)
    assert message.startswith("CUDA error: device-side assert triggered. " + cuda_errors.CONTEXT_LOST)
    assert cuda_errors.CONTEXT_LOST in message and "the last good checkpoint (epoch 1, step 25) is kept" in message
    assert not cuda_errors.cuda_context_usable()
    assert (run / "checkpoints" / "last.pt").read_bytes() == seen[0]
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    with pytest.raises(cuda_errors.CudaContextError):
        cuda_errors.check_context_usable(torch.device("cuda", 0))


def test_studio_train_prints_one_error_line_after_out_of_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def forward(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError(OUT_OF_MEMORY)

    from studio.models import StudioModel

    monkeypatch.setattr(StudioModel, "forward", forward)
    config = tmp_path / "c.toml"
    config.write_text('[train]\ndevice = "cpu"\nepochs = 1\n', encoding="utf-8")
    code = cli.main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "out of memory" in errors[0] and "checkpoint (epoch 0, step 0) is kept" in errors[0]


def test_out_of_memory_while_setting_up_ends_in_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import studio.engine.training_setup as training_setup

    def build(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError(OUT_OF_MEMORY)

    monkeypatch.setattr(training_setup, "build_training", build)
    monkeypatch.setattr("studio.engine.run_lifecycle.build_training", build)
    with pytest.raises(TrainingFailed, match=r"out of memory on cpu at batch size 32.*nothing was trained"):
        Trainer(make_config(), tmp_path / "run").fit()


# -- the scaler in checkpoints, and memory records --------------------------------------------------


def test_a_disabled_scaler_saves_nothing_and_an_enabled_one_round_trips(tmp_path: Path, bundle: DataBundle) -> None:
    run = tmp_path / "run"
    Trainer(make_config("train.epochs=1"), run, data=bundle).fit()
    assert load_checkpoint(run / "checkpoints" / "last.pt")["scaler"] == {}  # fp32: GradScaler(enabled=False)

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12, growth_interval=7)
    path = tmp_path / "scaler.pt"
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    save_checkpoint(path, {**state, "scaler": scaler.state_dict()})
    loaded = load_checkpoint(path)["scaler"]  # weights_only=True reads it: plain numbers only
    fresh = torch.amp.GradScaler("cpu")
    fresh.load_state_dict(loaded)
    assert fresh.state_dict() == scaler.state_dict() and fresh.get_scale() == 2.0**12


def test_no_memory_fields_off_cuda(tmp_path: Path, bundle: DataBundle) -> None:
    run = tmp_path / "run"
    Trainer(make_config("train.epochs=1"), run, data=bundle).fit()
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in lines if r["kind"] == "step"]
    assert steps and not any("cuda_memory_allocated" in r or "cuda_memory_reserved" in r for r in steps)


def test_a_fresh_process_is_needed_only_for_cuda_after_a_lost_context(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not cuda_errors.needs_fresh_process("cuda")
    cuda_errors.mark_context_lost("CUDA error: an illegal memory access was encountered")
    assert cuda_errors.needs_fresh_process("cuda") and cuda_errors.needs_fresh_process("cuda:1")
    assert not cuda_errors.needs_fresh_process("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cuda_errors.needs_fresh_process("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not cuda_errors.needs_fresh_process("auto")
