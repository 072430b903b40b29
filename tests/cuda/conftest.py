"""The CUDA tests (`make test-gpu`): without a GPU every one of them skips, for one reason said once.

CUBLAS_WORKSPACE_CONFIG must be set before cuBLAS starts, so it is set here, at collection,
before any test touches CUDA (`make test-gpu` sets it too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import torch

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

NO_GPU = (
    f"no CUDA GPU here (torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}): "
    "the cuda tests run on a GPU machine with `make test-gpu`"
)


_SKIPPED = pytest.StashKey[int]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a GPU, set the cuda tests aside here, so the reason is said once, not once a test."""
    if torch.cuda.is_available():
        return
    cuda = [item for item in items if item.get_closest_marker("cuda")]
    if cuda:
        items[:] = [item for item in items if not item.get_closest_marker("cuda")]
        config.hook.pytest_deselected(items=cuda)
        config.stash[_SKIPPED] = len(cuda)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skipped = config.stash.get(_SKIPPED, 0)
    if skipped:
        terminalreporter.write_line(f"SKIPPED {skipped} cuda tests: {NO_GPU}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # `pytest -m cuda` without a GPU runs nothing: that is a clean skip, not "no tests collected".
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.stash.get(_SKIPPED, 0):
        session.exitstatus = pytest.ExitCode.OK


@pytest.fixture(autouse=True)
def _fresh_cuda_state() -> Iterator[None]:
    from studio.engine import cuda_errors

    yield
    cuda_errors.reset_for_tests()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@pytest.fixture
def deterministic() -> Iterator[None]:
    """torch.use_deterministic_algorithms(True) for one test, then as it was."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(before)
