"""The packaged app runs without Python: `make test-app`, after `make app`.

Unpacks the archive `make app` built into a temporary folder outside the source tree and runs the
app's own executables there, with an environment that holds neither this venv nor the checkout:
`studio train examples/digits.toml`, `studio export` (a checked ONNX file), `studio predict`, and the
window, offscreen, training a run. Slow (an archive of a few GB), so it lives outside tests/ and
`make test` never collects it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from studio import __version__

REPO = Path(__file__).resolve().parents[1]

LABELS = [str(d) for d in range(10)]


def _inside(path: str | Path, folder: str | Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unpacked app folder, studio-VERSION/, from dist/studio-VERSION-linux-<machine>.tar.gz."""
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("aarch64", "arm64")
    archive = REPO / "dist" / f"studio-{__version__}-linux-{machine}.tar.gz"
    if not archive.is_file():
        pytest.fail(f"{archive.relative_to(REPO)} is missing: run `make app` first")
    where = tmp_path_factory.mktemp("unpacked")
    assert not _inside(where, REPO)
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="tar")
    folder = where / f"studio-{__version__}"
    assert folder.is_dir(), sorted(p.name for p in where.iterdir())
    return folder


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    """A user's environment: no venv, no checkout, no PYTHONPATH; settings and runs in a temporary home."""
    path = [
        p
        for p in os.environ.get("PATH", "").split(os.pathsep)
        if p and not _inside(p, sys.prefix) and not _inside(p, REPO)
    ]
    return {
        "PATH": os.pathsep.join(path or ["/usr/bin", "/bin"]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "STUDIO_RUNS_DIR": str(home / "runs"),
        "QT_QPA_PLATFORM": "offscreen",
    }


def run(
    app: Path, program: str, *args: str, env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(app / program), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


@pytest.fixture(scope="module")
def work(home: Path) -> Path:
    """The user's working folder: no examples/ here, so `examples/digits.toml` is the bundled one."""
    folder = home / "work"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def trained(app: Path, env: dict[str, str], work: Path) -> tuple[subprocess.CompletedProcess, Path]:
    run_dir = work / "run"
    return run(app, "studio", "train", "examples/digits.toml", "--run-dir", str(run_dir), env=env, cwd=work), run_dir


def test_the_folder_holds_both_programs_the_resources_and_no_build_files(app: Path) -> None:
    for program in ("studio", "studio-gui", "install-desktop-entry.sh"):
        assert os.access(app / program, os.X_OK), program
    readme = (app / "README.txt").read_text(encoding="utf-8")
    assert "./studio-gui" in readme and "./studio train examples/digits.toml" in readme
    resources = app / "_internal" / "studio" / "_resources"
    for shipped in ("mnist-8k.npz", "mnist-8k.LICENSE", "examples/digits.toml", "style.qss", "icons/studio.svg"):
        assert (resources / shipped).is_file(), shipped
    internal = app / "_internal"
    assert not (internal / "torch" / "include").exists()
    assert not (internal / "triton").exists()
    assert not any(internal.rglob("*.h")), "C headers were shipped"
    # A library at the top of _internal is a link to the one in its package folder, never a second copy.
    packaged = {
        p.name
        for folder in ("torch/lib", "nvidia")
        if (internal / folder).is_dir()
        for p in (internal / folder).rglob("*.so*")
    }
    copies = [p.name for p in internal.iterdir() if p.name in packaged and not p.is_symlink()]
    assert not copies, copies
    if (internal / "nvidia").is_dir():  # a CUDA build: what torch opens only on a GPU came along too
        for lib in ("libcudnn_engines_precompiled.so*", "libnvrtc-builtins.so*", "libcublasLt.so*"):
            assert any((internal / "nvidia").rglob(lib)), lib


def test_version_and_a_bad_config_answer_like_the_installed_cli(app: Path, env: dict[str, str], work: Path) -> None:
    version = run(app, "studio", "--version", env=env, cwd=work)
    assert version.returncode == 0 and version.stdout.strip() == f"studio {__version__}"
    bad = run(app, "studio", "train", "nowhere.toml", env=env, cwd=work)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: config file 'nowhere.toml' not found"]


def test_cli_trains_the_bundled_example(trained: tuple[subprocess.CompletedProcess, Path]) -> None:
    proc, run_dir = trained
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert summary["metrics"]["test_accuracy"] > 0.85
    assert (run_dir / "checkpoints" / "best.pt").is_file()


def test_cli_exports_a_checked_onnx_model_that_runs_outside_the_app(
    app: Path, env: dict[str, str], work: Path, trained: tuple[subprocess.CompletedProcess, Path]
) -> None:
    import onnx
    import onnxruntime as ort

    _, run_dir = trained
    proc = run(app, "studio", "export", str(run_dir), env=env, cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    checks = proc.stdout[proc.stdout.index("checks") :]
    assert "onnx.checker                passed" in checks and "onnxruntime vs PyTorch      passed" in checks
    model_path = run_dir / "model.onnx"
    model = onnx.load(str(model_path))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["labels"]) == LABELS and meta["studio_version"] == __version__
    # This test's own onnxruntime, not the app's, reads the digits the app shipped.
    digits = np.load(app / "_internal" / "studio" / "_resources" / "mnist-8k.npz")
    x = (digits["images"][:500].astype(np.float32) / 255.0)[:, None]
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["output"], {"input": x})
    assert logits.shape == (500, 10)
    assert (logits.argmax(1) == digits["labels"][:500]).mean() > 0.85


def test_cli_predicts_images_with_the_exported_model(
    app: Path, env: dict[str, str], work: Path, trained: tuple[subprocess.CompletedProcess, Path]
) -> None:
    from PIL import Image

    _, run_dir = trained
    model_path = run_dir / "model.onnx"
    if not model_path.is_file():
        pytest.fail("no model.onnx: the export test failed first")
    digits = np.load(app / "_internal" / "studio" / "_resources" / "mnist-8k.npz")
    files = []
    for i in range(7000, 7020):
        path = work / f"digit-{i}.png"
        Image.fromarray(digits["images"][i]).save(path)
        files.append(str(path))
    proc = run(app, "studio", "predict", str(model_path), *files, env=env, cwd=work)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in results] == files
    assert all(r["label"] in LABELS and 0.0 <= r["probability"] <= 1.0 for r in results)
    right = sum(r["label"] == str(digits["labels"][7000 + k]) for k, r in enumerate(results))
    assert right >= 16, results


def test_window_opens_offscreen_and_trains_a_run(app: Path, env: dict[str, str], home: Path, work: Path) -> None:
    proc = run(app, "studio-gui", "examples/digits.toml", env={**env, "STUDIO_SELF_TEST": "train"}, cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "self-test: run completed in " in proc.stderr, proc.stderr
    (run_dir,) = (home / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert (run_dir / "metrics.jsonl").stat().st_size > 0


def test_desktop_entry_installs_and_uninstalls(app: Path, env: dict[str, str], home: Path) -> None:
    data = Path(env["XDG_DATA_HOME"])
    proc = subprocess.run([str(app / "install-desktop-entry.sh")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    entry = (data / "applications" / "studio.desktop").read_text(encoding="utf-8").splitlines()
    assert f'Exec="{app / "studio-gui"}" %f' in entry
    assert "Icon=studio" in entry and "Terminal=false" in entry
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "studio.svg").is_file()
    proc = subprocess.run(
        [str(app / "install-desktop-entry.sh"), "--uninstall"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert not (data / "applications" / "studio.desktop").exists()
