#!/usr/bin/env bash
# On a fresh GPU machine: set up, run `make test-gpu` and benchmarks/gpu_vs_bare.py, and write a
# report (report.md, and the logs beside it) under $OUT, or ./gpu-report where OUT is unset.
#
#   bash benchmarks/gpu_report.sh            # everything (about 6 minutes on an H100 once set up)
#   QUICK=1 bash benchmarks/gpu_report.sh    # the benchmark's small settings (also a CPU dry run)
#   OFFLINE=1 ...                            # take the no-network set-up below even where PyPI answers
#   BENCH_ARGS="--skip window" ...           # more arguments for benchmarks/gpu_vs_bare.py
#
# Set-up: an existing .venv is used as it is. Otherwise, where PyPI answers, `make test-gpu` builds
# .venv itself (packaging/setup-env.sh). Where it does not (a GPU machine without a network whose
# python3 holds PyTorch), .venv is made over that python3's packages, with the wheels in .whl/ that
# it lacks: benchmarks/gpu_wheels.sh fetches them on a machine with a network (a slim PySide6
# among them, for the window test; without it that test is skipped and says so).
#
# With this workplace's device tool (about 15 minutes of GPU time in all, 10 a command): first
# `bash benchmarks/gpu_wheels.sh` here, then one run with command `bash benchmarks/gpu_report.sh`,
# carry [".whl"] and timeout_s 600; the report comes back from $OUT. The tests get 300 s and the
# benchmark 240 s (TEST_TIMEOUT, BENCH_TIMEOUT), so a second try fits in what is left.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-report}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 QT_QPA_PLATFORM=offscreen CUBLAS_WORKSPACE_CONFIG=:4096:8
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-240}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
} >"$OUT/env.txt"

pypi_answers() {
  timeout 8 python3 -m pip download -q --no-deps --no-cache-dir -d /tmp/pypi-probe tomli-w==1.2.0 >/dev/null 2>&1
}

if [ ! -x .venv/bin/python ] && { [ -n "${OFFLINE:-}" ] || ! pypi_answers; } && python3 -c "import torch" 2>/dev/null; then
  echo "no package index here: .venv over $(python3 -c 'import sys; print(sys.executable)') and .whl/" | tee -a "$OUT/env.txt"
  python3 -m venv .venv
  # python3's own packages (torch among them) through a .pth file: --system-site-packages would give
  # the base interpreter's instead, where python3 is itself a venv. The .venv's own come first.
  python3 -c "import site; print('\n'.join(site.getsitepackages()))" \
    >"$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/gpu_machine_packages.pth"
  if compgen -G ".whl/*.whl" >/dev/null; then
    .venv/bin/python -m pip install -q --no-index --no-deps --no-compile .whl/*.whl 2>&1 | tail -3
  fi
  # The studio from this checkout, as `pip install -e .` would give it, without a build backend.
  echo "$PWD" >"$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/studio_checkout.pth"
  printf '#!%s\nimport sys\nfrom studio.cli import main\nsys.exit(main())\n' "$PWD/.venv/bin/python" >.venv/bin/studio
  chmod +x .venv/bin/studio
  touch .venv/.installed # the stamp `make` checks: this .venv is set up
fi
.venv/bin/python -c "import torch, sys; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" 2>&1 | tee -a "$OUT/env.txt"

# The window test and the window benchmark need Qt's libraries (libEGL, libGL, libxkbcommon,
# fontconfig...); an image without them skips both and says so here.
if ! qt=$(.venv/bin/python -c "import PySide6.QtWidgets" 2>&1); then
  echo "window: PySide6 cannot load here, so the window test and benchmark are skipped: ${qt##*$'\n'}" | tee -a "$OUT/env.txt"
  BENCH_ARGS="${BENCH_ARGS:-} --skip window"
fi

echo "== make test-gpu"
timeout "$TEST_TIMEOUT" make test-gpu 2>&1 | tee "$OUT/test-gpu.log"
test_rc=${PIPESTATUS[0]}

echo "== benchmarks/gpu_vs_bare.py"
# shellcheck disable=SC2206 # BENCH_ARGS is a list of words, e.g. "--skip window"
bench_args=(--json "$OUT/bench.json" ${BENCH_ARGS:-})
[ -n "${QUICK:-}" ] && bench_args+=(--quick)
timeout "$BENCH_TIMEOUT" .venv/bin/python benchmarks/gpu_vs_bare.py "${bench_args[@]}" 2>&1 | tee "$OUT/bench.log"
bench_rc=${PIPESTATUS[0]}

{
  echo "# GPU report"
  echo
  echo '```'
  cat "$OUT/env.txt"
  echo '```'
  echo
  echo "## make test-gpu (exit $test_rc)"
  echo
  echo '```'
  grep -E "passed|failed|skipped|deselected|error|SKIPPED|FAILED|ERROR" "$OUT/test-gpu.log" | tail -25
  echo '```'
  echo
  echo "## benchmarks/gpu_vs_bare.py (exit $bench_rc)"
  echo
  echo '```'
  cat "$OUT/bench.log"
  echo '```'
} >"$OUT/report.md"
echo "report: $OUT/report.md (make test-gpu exit $test_rc, benchmark exit $bench_rc)"
[ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ]
