# `make run` opens the studio; `make test` runs the tests; `make lint` checks the code. Each sets up .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run qt-libraries test test-fast test-gpu lint screenshots bench bench-gui clean dist

$(STAMP): pyproject.toml constraints.txt packaging/setup-env.sh
	VENV=$(VENV) bash packaging/setup-env.sh

# Every start checks that Qt can open a window (and installs what it lacks), not only the first:
# the stamp says the .venv is installed, not that the machine still has Qt's system libraries.
run: qt-libraries
	$(if $(DISPLAY)$(WAYLAND_DISPLAY)$(QT_QPA_PLATFORM),,$(error no display to open the studio window on \
	  (DISPLAY and WAYLAND_DISPLAY are unset): run `xvfb-run -a make run`, or train headless with \
	  `$(VENV)/bin/studio train examples/digits.toml`))
	$(PY) -m studio

qt-libraries: $(STAMP)
	@VENV=$(VENV) bash packaging/setup-env.sh --qt

test: $(STAMP)
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# The CUDA tests (tests/cuda, marked `cuda`). Without a GPU they skip, and this says so in one line.
# CUBLAS_WORKSPACE_CONFIG makes cuBLAS deterministic for the exact-resume tests.
test-gpu: $(STAMP)
	@$(PY) -c "import torch; print('GPU:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none: the cuda tests skip (torch ' + torch.__version__ + ')')"
	QT_QPA_PLATFORM=offscreen CUBLAS_WORKSPACE_CONFIG=:4096:8 $(PY) -m pytest -q -m cuda tests/cuda

test-fast: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not slow"

# The habits (config in pyproject.toml): ruff's lint and format, mypy's types, import-linter's layers.
# .pre-commit-config.yaml runs the same checks at commit time (`$(VENV)/bin/pre-commit install`).
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

screenshots: $(STAMP)
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) packaging/screenshots.py docs/screenshots

bench: $(STAMP)
	$(PY) benchmarks/folder_vs_plain.py

bench-gui: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/gui_startup.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/gui_train_stop.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/gui_timer_lag.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

# A wheel that carries resources/ inside the package (studio/_resources links to it).
dist: $(STAMP)
	$(PY) -m pip wheel -q --no-deps --no-build-isolation . -w dist

# The desktop app: dist/studio/ (PyInstaller, packaging/studio.spec) and
# dist/studio-VERSION-linux-x86_64.tar.gz; prints the build time, size and biggest parts.
.PHONY: app test-app
APP_STAMP := $(VENV)/.app-installed
$(APP_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[app]'
	touch $@

app: $(APP_STAMP)
	$(PY) packaging/build_app.py

# Slow, and not part of `make test`: unpacks the archive `make app` built outside the source tree
# and runs the app's own `studio` (train, export, predict) and its window, without this venv.
test-app: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider packaging/test_app.py
