"""`make run` on a machine that lacks Qt's system libraries, or has no display.

The set-up must check what the window needs (the platform plugin it will load), install what is
missing, and retry on every `make run` instead of trusting its stamp file. These tests run the real
`packaging/setup-env.sh` and Makefile with stand-ins for `ldd`, `apt-get` and `id` first on PATH,
so nothing is installed and no network is used.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from studio.ui.platform_check import QT_SYSTEM_PACKAGES, has_display, missing_libraries, packages_for, run_platform

REPO = Path(__file__).resolve().parents[1]

# What `ldd libqxcb.so` printed on a fresh Debian 12 machine (abridged).
LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd1c5f2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f0c0c800000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f0c0c7f0000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f0c0c7c0000)
\tlibxcb-icccm.so.4 => not found
"""
LDD_COMPLETE = "\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f0c0c7c0000)\n"


def test_missing_libraries_are_read_from_ldd_once_each() -> None:
    assert missing_libraries(LDD_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert missing_libraries(LDD_COMPLETE) == []
    assert packages_for(["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libunknown.so.9"]) == [
        "libxcb-icccm4",
        "libxcb-keysyms1",
    ]
    assert {"libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libegl1"} <= set(QT_SYSTEM_PACKAGES)


def test_the_checked_platform_is_the_one_the_window_will_use() -> None:
    assert run_platform({"DISPLAY": ":1"}) == "xcb"
    assert run_platform({}) == "xcb"  # what `xvfb-run make run` will load
    assert run_platform({"QT_QPA_PLATFORM": "offscreen"}) == "offscreen"
    assert run_platform({"QT_QPA_PLATFORM": "wayland;xcb"}) == "wayland"
    assert run_platform({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}) == "wayland"
    assert not has_display({}) and has_display({"DISPLAY": ":0"}) and has_display({"WAYLAND_DISPLAY": "w"})


class FakeMachine:
    """A bin folder of stand-ins: `ldd` reports the xcb libraries missing until `apt-get install` ran."""

    def __init__(self, root: Path, *, uid: int = 0, apt_fixes: bool = True) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        self.installed = root / "installed"
        self.apt_log = root / "apt.log"
        self._script(
            "ldd", f'if [ -e "{self.installed}" ]; then printf %s "{LDD_COMPLETE}"; else printf %s "{LDD_MISSING}"; fi'
        )
        fix = f'touch "{self.installed}"' if apt_fixes else "true"
        self._script(
            "apt-get",
            f'echo "$*" >> "{self.apt_log}"; if [ "$1" = install ] || [ "$3" = install ] '
            f'|| [ "$2" = install ]; then {fix}; fi',
        )
        self._script("id", f'if [ "$1" = -u ]; then echo {uid}; else /usr/bin/id "$@"; fi')
        # The venv: its python is this interpreter (which has PySide6), except that `-m studio` only
        # says it started (the window itself is tested elsewhere).
        venv = root / "venv"
        (venv / "bin").mkdir(parents=True)
        self.venv = venv
        self._script(
            "python",
            f'if [ "$1 $2" = "-m studio" ]; then echo "studio started"; exit 0; fi\nexec "{sys.executable}" "$@"',
            folder=venv / "bin",
        )
        (venv / ".installed").touch()  # newer than the Makefile's prerequisites: the stamp says "done"

    def _script(self, name: str, body: str, folder: Path | None = None) -> None:
        path = (folder or self.bin) / name
        path.write_text(f"#!/bin/bash\n{body}\n", encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "MAKEFLAGS", "MAKELEVEL")
        }
        env.update(PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(REPO), VENV=str(self.venv))
        env.update(extra)
        return env

    def apt_calls(self) -> list[str]:
        return self.apt_log.read_text(encoding="utf-8").splitlines() if self.apt_log.exists() else []


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_setup_checks_the_xcb_plugin_and_installs_what_it_lacks(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    proc = run(["bash", "packaging/setup-env.sh", "--qt"], machine.env())
    assert proc.returncode == 0, proc.stderr
    installs = [call for call in machine.apt_calls() if "install" in call.split()]
    assert installs and {"libxcb-icccm4", "libxcb-keysyms1"} <= set(installs[0].split())
    assert "libxcb-icccm4 libxcb-keysyms1" in proc.stdout  # it says what it installs
    # Run again: the libraries are there now, so apt-get is not called a second time.
    calls = len(machine.apt_calls())
    assert run(["bash", "packaging/setup-env.sh", "--qt"], machine.env()).returncode == 0
    assert len(machine.apt_calls()) == calls


def test_setup_that_cannot_install_says_which_packages_in_one_line(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path, uid=1000)  # not root: apt-get is not run, the user is told what to run
    proc = run(["bash", "packaging/setup-env.sh", "--qt"], machine.env())
    assert proc.returncode == 2 and machine.apt_calls() == []
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in errors[0], proc.stderr
    assert "libxcb-icccm.so.4" in proc.stderr and "Traceback" not in proc.stderr

    machine = FakeMachine(tmp_path / "root-but-no-package", apt_fixes=False)
    proc = run(["bash", "packaging/setup-env.sh", "--qt"], machine.env())
    assert proc.returncode == 2 and machine.apt_calls(), proc.stderr
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in proc.stderr


def test_make_run_retries_the_system_libraries_despite_the_stamp(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    proc = run(
        ["make", "--no-print-directory", "run", f"VENV={machine.venv}"], machine.env(QT_QPA_PLATFORM="offscreen")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert any("install" in call.split() for call in machine.apt_calls())
    assert "studio started" in proc.stdout
    assert "setup-env.sh --qt" not in proc.stdout  # the step is quiet when all is well


def test_make_run_without_a_display_is_one_line_naming_xvfb_run(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    machine.installed.touch()
    proc = run(["make", "--no-print-directory", "-s", "run", f"VENV={machine.venv}"], machine.env())
    assert proc.returncode == 2
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "no display" in lines[0] and "xvfb-run -a make run" in lines[0] and "studio train" in lines[0]
    assert "studio started" not in proc.stdout


def test_make_run_on_a_display_that_does_not_answer_installs_nothing_and_says_so(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    machine.installed.touch()
    proc = run(["make", "--no-print-directory", "-s", "run", f"VENV={machine.venv}"], machine.env(DISPLAY=":4917"))
    assert proc.returncode == 2 and machine.apt_calls() == []
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "cannot connect to the X display :4917" in errors[0] and "xvfb-run -a make run" in errors[0]
    assert "studio started" not in proc.stdout and "Aborted" not in proc.stderr
