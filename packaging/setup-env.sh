#!/usr/bin/env bash
# Create .venv with the tested versions, and the system libraries Qt needs if they are missing.
# Used by `make run` and `make test`; safe to run again.
#
#   packaging/setup-env.sh          the whole set-up (the .venv, then the system libraries)
#   packaging/setup-env.sh --qt     only the system-library step: `make run` calls it before every
#                                   start, so a machine that lost a library gets it back
#
# The Qt check is `python -m studio.ui.platform_check`: `ldd` of the platform plugin the window
# will use (xcb under X11 and Xvfb), not an offscreen import, which loads no platform plugin.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}

qt_check() {
  "$VENV/bin/python" -m studio.ui.platform_check "$@"
}

# Install what Qt's platform plugins lack; 0 when Qt can load them afterwards. Arguments go to
# the check (`--start`: also start a QApplication where a display exists).
QT_HINT=""
qt_system_libraries() {
  qt_check "$@" 2>/dev/null && return 0
  local missing all
  missing=$(qt_check --packages 2>/dev/null || true)
  all=$(qt_check --packages --install-list 2>/dev/null || true)
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing the system libraries Qt needs (${missing:-Qt could not start})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    # The whole list first (a bare image lacks more than one); a release without one of those
    # packages still gets the ones that are actually missing.
    # shellcheck disable=SC2086 # word splitting is wanted: a list of package names
    apt-get install -y -qq $all >/dev/null 2>&1 || { [ -n "$missing" ] && apt-get install -y -qq $missing >/dev/null; } || true
  fi
  qt_check "$@" && return 0
  if command -v apt-get >/dev/null; then
    QT_HINT="install the missing libraries with \`sudo apt-get install ${missing:-$all}\`"
  else
    QT_HINT="install the libraries named above with your package manager"
  fi
  return 1
}

if [ "${1:-}" = "--qt" ]; then
  [ -x "$VENV/bin/python" ] || { echo "error: $VENV is not set up: run packaging/setup-env.sh" >&2; exit 2; }
  # A DISPLAY that does not answer is not a missing library: say so, and install nothing.
  qt_check --display --how-to-run "make run" || exit 2
  qt_system_libraries --start || { echo "error: Qt cannot open the studio window: $QT_HINT, then run this again" >&2; exit 2; }
  exit 0
fi

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

# The tests need only the offscreen platform, and `make run` checks the window's libraries again
# before each start: a machine without them can still run the tests.
if ! qt_system_libraries; then
  if qt_check --platform offscreen 2>/dev/null; then
    echo "warning: \`make run\` cannot open the window until you $QT_HINT (\`make test\` runs without them)" >&2
  else
    echo "warning: Qt cannot load even its offscreen platform, so neither the window nor the UI tests will run: $QT_HINT" >&2
  fi
fi
touch "$VENV/.installed"
