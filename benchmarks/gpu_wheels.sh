#!/usr/bin/env bash
# Fetch into .whl/ the wheels that a GPU machine without a network lacks, for benchmarks/gpu_report.sh.
#
# Such a machine's python3 (3.12 by default; PYTHON_VERSION=3.x for another) already holds torch,
# torchvision, numpy, pillow, onnx, onnxscript, onnxruntime and pytest. The studio also needs
# tomli-w and, for the window test and the window benchmark, PySide6, pyqtgraph and pytest-qt.
# PySide6-Essentials is an 80 MB wheel, more than a device call carries, so it is slimmed here to
# what the studio and the offscreen tests load: QtCore, QtGui, QtWidgets, QtSvg, QtTest, their Qt
# libraries and the offscreen platform plugin (about 25 MB). Run it where pip reaches PyPI:
#
#   bash benchmarks/gpu_wheels.sh     # then carry .whl/ with the working tree (it is git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${PYTHON_VERSION:-3.12}
exclude=$(git rev-parse --git-path info/exclude)
grep -qx "/.whl/" "$exclude" 2>/dev/null || echo "/.whl/" >>"$exclude"
rm -rf .whl && mkdir -p .whl

pin() { # the version constraints.txt pins (or the one installed in .venv for a range)
  local v
  v=$(grep -iE "^$1==" constraints.txt | head -1 | cut -d= -f3)
  [ -n "$v" ] || v=$(.venv/bin/python -m pip show "$1" 2>/dev/null | awk '/^Version:/{print $2}')
  echo "$1${v:+==$v}"
}

platforms=()
for n in 17 28 31 34 35 39; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
  "${platforms[@]}" --platform manylinux2014_x86_64 -d .whl \
  "$(pin tomli-w)" "$(pin pyqtgraph)" "$(pin pytest-qt)" "$(pin shiboken6)" "$(pin PySide6-Essentials)"

python3 - <<'EOF'
"""Rewrite the PySide6-Essentials wheel with only what the studio's offscreen window and tests load."""
import glob
import os
import re
import zipfile

KEEP = re.compile(
    r"^PySide6/("
    r"[^/]+\.py|py\.typed|PySide6_Essentials\.json|support/.*"
    r"|Qt(Core|Gui|Widgets|Svg|Test)\.abi3\.so|libpyside6\.abi3\.so\.[0-9.]+"
    r"|Qt/lib/(libQt6(Core|Gui|Widgets|Svg|Test|DBus)\.so\.6|libicu(data|i18n|uc)\.so\.[0-9]+)"
    r"|Qt/plugins/(platforms/libqoffscreen\.so|imageformats/.*|iconengines/.*)"
    r")$"
)
(path,) = glob.glob(".whl/pyside6_essentials-*.whl")
slim = path + ".slim"
with zipfile.ZipFile(path) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
    kept = [i for i in src.infolist() if not i.filename.startswith("PySide6/") or KEEP.match(i.filename)]
    names = {i.filename for i in kept}
    for info in kept:
        data = src.read(info)
        if info.filename.endswith(".dist-info/RECORD"):
            lines = data.decode().splitlines()
            data = ("\n".join(l for l in lines if l.split(",")[0] in names or l.split(",")[0].endswith("RECORD")) + "\n").encode()
        dst.writestr(info, data)
os.replace(slim, path)
print(f"{os.path.basename(path)}: {len(names)} files, {os.path.getsize(path) / 2**20:.1f} MiB")
EOF
du -sh .whl && ls -l .whl
