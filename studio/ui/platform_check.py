"""Can Qt open the studio window here? Names the system libraries its platform plugin lacks.

`make run` and `packaging/setup-env.sh` call it before the window opens, because a Qt platform
plugin that cannot load aborts the process with a long message and no hint of the package to
install. The check is what the run needs: `ldd` of the plugin the run will use (xcb under X11,
whatever `QT_QPA_PLATFORM` names), and, where a display exists, a `QApplication` created on it in
a subprocess. This module itself imports no Qt, so it can run where Qt cannot start.

    python -m studio.ui.platform_check [--platform NAME ...] [--start] [--packages [--install-list]]
    python -m studio.ui.platform_check --display [--how-to-run "make run"]

Exit status: 0 Qt can start; 3 system libraries are missing (named on stderr; with `--packages`,
the Debian packages that hold them go to stdout, one line); 4 the libraries are all there but a
`QApplication` could not start on the display (Qt's own message on stderr); 5 (`--display`) the
X display that DISPLAY names does not answer.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

# What Qt's xcb and offscreen platforms load on a Debian/Ubuntu machine, by package: installed
# together because one missing library usually means a bare image that lacks the others too.
QT_SYSTEM_PACKAGES = (
    "libegl1",
    "libgl1",
    "libopengl0",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libfontconfig1",
    "libfreetype6",
    "libdbus-1-3",
    "libglib2.0-0",
    "libx11-6",
    "libx11-xcb1",
    "libxcb1",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-shm0",
    "libxcb-sync1",
    "libxcb-util1",
    "libxcb-xfixes0",
    "libxcb-xinerama0",
    "libxcb-xkb1",
)

# The Debian package of each library a Qt 6 platform plugin links to (`ldd` names the library).
SONAME_PACKAGES: Mapping[str, str] = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libGLdispatch.so.0": "libglvnd0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")


def has_display(environ: Mapping[str, str] = os.environ) -> bool:
    """True when an X11 or Wayland display is named, or Qt is told which platform to use."""
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY") or environ.get("QT_QPA_PLATFORM"))


def run_platform(environ: Mapping[str, str] = os.environ) -> str:
    """The platform plugin a window started with this environment will load (Linux)."""
    named = environ.get("QT_QPA_PLATFORM", "").split(":", 1)[0].split(";", 1)[0].strip()
    if named:
        return named
    # Qt 6 prefers Wayland in a Wayland session and falls back to xcb; X11 and Xvfb use xcb.
    if environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def no_display_message(how_to_run: str = "studio", why: str = "DISPLAY and WAYLAND_DISPLAY are unset") -> str:
    """The one line that replaces Qt's abort when there is no screen to open a window on."""
    return (
        f"error: no display to open the studio window on ({why}): "
        f"run it under Xvfb with `xvfb-run -a {how_to_run}`, or train headless with "
        f"`studio train examples/digits.toml`"
    )


def plugins_dir() -> Path | None:
    """PySide6's folder of Qt platform plugins, found without importing Qt."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "Qt" / "plugins" / "platforms"


def plugin_file(platform: str) -> Path | None:
    folder = plugins_dir()
    return None if folder is None else folder / f"libq{platform}.so"


def missing_libraries(ldd_output: str) -> list[str]:
    """The libraries `ldd` reports as "not found", each once, in the order it names them."""
    found: dict[str, None] = {}
    for line in ldd_output.splitlines():
        m = _NOT_FOUND.match(line)
        if m:
            found[m.group(1)] = None
    return list(found)


def packages_for(libraries: Iterable[str]) -> list[str]:
    """The Debian packages that hold `libraries` (those it knows), each once."""
    return list(dict.fromkeys(SONAME_PACKAGES[lib] for lib in libraries if lib in SONAME_PACKAGES))


def plugin_missing_libraries(platform: str) -> list[str]:
    """The system libraries the `platform` plugin cannot find; empty when it loads (or is not shipped)."""
    plugin = plugin_file(platform)
    if plugin is None or not plugin.is_file():
        return []
    ldd = shutil.which("ldd")
    if ldd is not None:
        proc = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=60)
        return missing_libraries(proc.stdout + proc.stderr)
    try:  # no ldd (a slim image): loading the plugin names the first library it lacks
        ctypes.CDLL(str(plugin))
    except OSError as exc:
        m = re.search(r"(\S+\.so[.\d]*): cannot open shared object file", str(exc))
        return [m.group(1) if m else str(exc)]
    return []


def plugin_load_error(platform: str) -> str | None:
    """Load the `platform` plugin as Qt will: None when it loads, else one line naming what is missing.

    A few milliseconds when all is well (Qt loads the same libraries moments later); `ldd` runs only
    after a failure, to name every missing library rather than the first.
    """
    plugin = plugin_file(platform)
    if plugin is None or not plugin.is_file():
        return None  # not a plugin PySide6 ships: Qt's own message says more than we can
    try:
        ctypes.CDLL(str(plugin))
    except OSError as exc:
        missing = plugin_missing_libraries(platform) or [str(exc)]
        packages = packages_for(missing)
        fix = f"`sudo apt-get install {' '.join(packages)}`" if packages else "your package manager"
        return (
            f"Qt cannot open the studio window: its {platform} platform plugin needs {', '.join(missing)}; "
            f"install {'them' if len(missing) > 1 else 'it'} with {fix} (`make run` does this itself)"
        )
    return None


def x11_display_error(display: str | None) -> str | None:
    """Connect to the X display as Qt's xcb plugin will: None when it answers, else why not.

    Uses libxcb, which the xcb plugin loads anyway; a display that is named but gone (a closed
    SSH forwarding, a stale DISPLAY) is the case this catches.
    """
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None  # the plugin check names the missing library
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode() if display else None, None)
    failed = xcb.xcb_connection_has_error(conn)
    xcb.xcb_disconnect(conn)
    return f"cannot connect to the X display {display or '(default)'}" if failed else None


def probe_start(platform: str, timeout_s: float = 60.0) -> tuple[bool, str]:
    """Create a `QApplication` on `platform` in a subprocess: (started, Qt's messages when it did not)."""
    code = "import sys\nfrom PySide6.QtWidgets import QApplication\nQApplication(sys.argv[:1])\n"
    env = dict(os.environ, QT_QPA_PLATFORM=platform)
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"creating a QApplication on {platform} did not finish in {timeout_s:.0f}s"
    if proc.returncode == 0:
        return True, ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return False, " ".join(lines[:2]) or f"exit status {proc.returncode}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m studio.ui.platform_check", description="Check that Qt can open the studio window here."
    )
    parser.add_argument(
        "--platform",
        action="append",
        default=None,
        help="a Qt platform plugin to check (repeatable); default: the one a window would "
        "use here, and offscreen (the tests')",
    )
    parser.add_argument(
        "--display",
        action="store_true",
        help="only check that the X display named by DISPLAY answers (exit 5 when not)",
    )
    parser.add_argument("--how-to-run", default="studio", help="the command the no-display message suggests")
    parser.add_argument(
        "--start", action="store_true", help="where a display exists, also create a QApplication on it in a subprocess"
    )
    parser.add_argument(
        "--packages", action="store_true", help="print the Debian packages that hold the missing libraries on stdout"
    )
    parser.add_argument(
        "--install-list", action="store_true", help="with --packages: every package Qt needs, also when none is missing"
    )
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        return 0  # Qt's wheels carry what they need on macOS and Windows
    if args.display:
        unreachable = (
            x11_display_error(os.environ.get("DISPLAY")) if has_display() and run_platform() == "xcb" else None
        )
        if unreachable is not None:
            print(no_display_message(args.how_to_run, why=unreachable), file=sys.stderr)
            return 5
        return 0
    platforms = list(dict.fromkeys(args.platform or [run_platform(), "offscreen"]))
    lacking = {p: plugin_missing_libraries(p) for p in platforms}
    failing = [p for p, libs in lacking.items() if libs]
    missing = list(dict.fromkeys(lib for libs in lacking.values() for lib in libs))
    if args.packages:
        wanted = packages_for(missing)
        listed = list(dict.fromkeys([*QT_SYSTEM_PACKAGES, *wanted])) if args.install_list else wanted
        if listed:
            print(" ".join(listed))
    if missing:
        print(
            f"Qt's {' and '.join(failing)} platform plugin{'s' if len(failing) > 1 else ''} cannot load: "
            f"missing {', '.join(missing)}",
            file=sys.stderr,
        )
        return 3
    if args.start and has_display():
        platform = run_platform()
        started, why = probe_start(platform)
        if not started:
            print(f"Qt cannot start on the {platform} platform: {why}", file=sys.stderr)
            return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
