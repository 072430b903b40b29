#!/usr/bin/env bash
# Create .venv with the tested versions, and the system libraries Qt needs if they are missing.
# Used by `make run` and `make test`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' \
  || { echo "error: studio needs Python 3.11 or newer ($PYTHON is $("$PYTHON" -V 2>&1))" >&2; exit 2; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $("$PYTHON" -V)"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
echo "installing studio and its dependencies into $VENV (the first time takes a few minutes)"
"$VENV/bin/python" -m pip install -q -c constraints.txt -e '.[dev]'

# Qt's xcb/offscreen platforms need a few system libraries a bare machine may lack.
if ! QT_QPA_PLATFORM=offscreen "$VENV/bin/python" -c 'from PySide6.QtWidgets import QApplication' 2>/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing the system libraries Qt needs (EGL, GL, xkbcommon, fontconfig, dbus)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 \
      libfontconfig1 libdbus-1-3 libglib2.0-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 \
      libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 >/dev/null
  else
    echo "warning: Qt cannot load; install libegl1 libgl1 libxkbcommon0 libfontconfig1 with your package manager" >&2
  fi
fi
touch "$VENV/.installed"
