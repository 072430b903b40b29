"""Build the desktop app: dist/studio/ (PyInstaller, packaging/studio.spec) and its archive.

    python packaging/build_app.py [--no-archive]      (`make app`)

Renders the icon, runs PyInstaller, adds the files a user reads first (README.txt, and on Linux the
.desktop file, its icon and install-desktop-entry.sh), packs
dist/studio-VERSION-linux-x86_64.tar.gz (a .zip on Windows and macOS), and prints the build time,
the folder's size and its biggest parts.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
APP = DIST / "studio"
WORK = ROOT / "build" / "app"

README = """Studio {version} ({platform}), {torch}

Run the window:        {gui}
Or the command line:   {cli} train examples/digits.toml   ({cli} --help lists the commands)
{desktop}
Everything it needs is in this folder: no Python, pip or install step.
The window keeps its runs in {runs} (or $STUDIO_RUNS_DIR);
`studio train` writes them under ./runs unless --run-dir says where.
"""

DESKTOP_LINE = "Add it to your desktop's menu: ./install-desktop-entry.sh  (--uninstall removes it)\n"


def version() -> str:
    sys.path.insert(0, str(ROOT))
    from studio import __version__

    return __version__


def platform_tag() -> str:
    system = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("aarch64", "arm64")
    return f"{system}-{machine}"


def torch_flavour() -> str:
    import torch

    if torch.version.cuda:
        return (
            f"torch {torch.__version__} with CUDA {torch.version.cuda}: an NVIDIA GPU when there is one, else the CPU"
        )
    return f"torch {torch.__version__}, CPU"


def render_icon(out: Path, size: int = 256) -> Path:
    """The app icon as a PNG, from resources/icons/studio.svg (PyInstaller turns it into .ico/.icns)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(ROOT / "resources" / "icons" / "studio.svg")).render(painter)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out)):
        raise SystemExit(f"error: could not write the icon {out}")
    return out


def add_user_files(ver: str) -> None:
    linux = sys.platform.startswith("linux")
    gui, cli = ("studio-gui.exe", "studio.exe") if sys.platform == "win32" else ("./studio-gui", "./studio")
    runs = {"win32": r"%LOCALAPPDATA%\studio\runs", "darwin": "~/Library/Application Support/studio/runs"}.get(
        sys.platform, "~/.local/share/studio/runs"
    )
    (APP / "README.txt").write_text(
        README.format(
            version=ver,
            platform=platform_tag(),
            torch=torch_flavour(),
            gui=gui,
            cli=cli,
            runs=runs,
            desktop=DESKTOP_LINE if linux else "",
        ),
        encoding="utf-8",
    )
    if linux:
        shutil.copy2(ROOT / "packaging" / "studio.desktop", APP / "studio.desktop")
        shutil.copy2(ROOT / "resources" / "icons" / "studio.svg", APP / "studio.svg")
        script = APP / "install-desktop-entry.sh"
        shutil.copy2(ROOT / "packaging" / "install-desktop-entry.sh", script)
        script.chmod(0o755)


def make_archive(ver: str) -> Path:
    """dist/studio-VERSION-PLATFORM.tar.gz on Linux (the folder as studio-VERSION/), a .zip elsewhere."""
    name = f"studio-{ver}-{platform_tag()}"
    top = f"studio-{ver}"
    if sys.platform.startswith("linux"):
        archive = DIST / f"{name}.tar.gz"
        partial = archive.with_name(archive.name + ".part")
        # Level 6 (gzip's default): level 9 takes twice as long for 1% less on these libraries.
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            tar.add(APP, arcname=top)  # keeps the symbolic links PyInstaller made, and the exec bits
    elif sys.platform == "darwin":
        # ditto keeps the bundle's links, modes and signatures; zipfile would not.
        archive = DIST / f"{name}.zip"
        partial = archive.with_name(archive.name + ".part")
        subprocess.run(
            ["ditto", "-c", "-k", "--sequesterRsrc", "--keepParent", str(DIST / "Studio.app"), str(partial)], check=True
        )
    else:
        archive = DIST / f"{name}.zip"
        partial = archive.with_name(archive.name + ".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(APP.rglob("*")):
                zf.write(path, f"{top}/{path.relative_to(APP).as_posix()}")
    os.replace(partial, archive)
    return archive


def tree_size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir() or p.is_symlink())


def size_report(app: Path, top: int = 12) -> str:
    """The folder's size, its biggest parts (one level into the big packages) and biggest files."""
    internal = app / "_internal"
    parts: dict[str, int] = {}
    for entry in internal.iterdir():
        if entry.is_dir() and not entry.is_symlink() and entry.name in ("nvidia", "torch", "PySide6"):
            for sub in entry.iterdir():
                parts[f"{entry.name}/{sub.name}"] = tree_size(sub)
        elif entry.is_dir() and not entry.is_symlink():
            parts[entry.name] = tree_size(entry)
        else:
            parts["(libraries and files at the top of _internal)"] = (
                parts.get("(libraries and files at the top of _internal)", 0) + entry.lstat().st_size
            )
    total = tree_size(app)
    files = sorted(
        (p for p in app.rglob("*") if p.is_file() and not p.is_symlink()), key=lambda p: p.stat().st_size, reverse=True
    )[:top]
    lines = [f"dist/studio/: {total / 2**20:,.0f} MiB in {sum(1 for _ in app.rglob('*')):,} files", "biggest parts:"]
    for name, size in sorted(parts.items(), key=lambda kv: kv[1], reverse=True)[:top]:
        lines.append(f"  {size / 2**20:9,.0f} MiB  {name}  ({size / total:.0%})")
    lines.append("biggest files:")
    lines += [f"  {p.stat().st_size / 2**20:9,.0f} MiB  {p.relative_to(app).as_posix()}" for p in files]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-archive", action="store_true", help="build the folder only")
    args = parser.parse_args()
    ver = version()
    t0 = time.perf_counter()
    env = dict(os.environ, STUDIO_APP_ICON=str(render_icon(WORK / "studio.png")))
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(ROOT / "packaging" / "studio.spec"),
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(DIST),
        "--workpath",
        str(WORK / "pyinstaller"),
    ]
    print(f"building dist/studio/ with PyInstaller ({torch_flavour()}); this takes a few minutes", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    if proc.returncode != 0:
        print(f"error: PyInstaller failed (exit {proc.returncode})", file=sys.stderr)
        return 1
    add_user_files(ver)
    built = time.perf_counter() - t0
    print(f"built dist/studio/ in {built:.0f}s")
    if not args.no_archive:
        t1 = time.perf_counter()
        archive = make_archive(ver)
        print(
            f"packed {archive.relative_to(ROOT)} ({archive.stat().st_size / 2**20:,.0f} MiB) "
            f"in {time.perf_counter() - t1:.0f}s"
        )
    print(size_report(APP))
    print(f"total build time: {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
