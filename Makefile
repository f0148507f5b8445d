# Two commands on a fresh machine:
#   make demo   set everything up, analyse the bundled sample, start the dashboard on 127.0.0.1
#   make test   set everything up and run the whole test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SHARED_MODELS := $(abspath ../shared/models)
# Models are looked up in PLAYBACK_MODEL_DIR first; use the shared folder when it is beside us.
export PLAYBACK_MODEL_DIR ?= $(if $(wildcard $(SHARED_MODELS)/face_landmarker.task),$(SHARED_MODELS),)
export PYANNOTE_METRICS_ENABLED := 0

.PHONY: setup system-deps demo test benchmark lock clean

# The environment is the exact lock (requirements.lock), nothing floating. scripts/setup_venv.py
# checks Python, disk and compiler first and ends every failure in one line saying what to do.
$(BIN)/.installed: requirements.lock pyproject.toml scripts/setup_venv.py
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "setup: $(PYTHON) was not found: install Python 3.12 (Debian/Ubuntu: apt-get install python3.12 python3.12-venv; macOS: brew install python@3.12), or run make PYTHON=/path/to/python3.12" >&2; exit 1; }
	@$(PYTHON) scripts/setup_venv.py --python $(PYTHON) $(if $(filter command line,$(origin PYTHON)),--explicit-python) --venv $(VENV) --lock requirements.lock
	@touch $@

# Regenerate the lock after changing a dependency in pyproject.toml: versions already in the
# lock are kept unless pyproject.toml rules them out; `make lock UPGRADE=1` moves everything to
# the newest releases within pyproject.toml's ranges. Commit the lock with the change.
LOCK_TOOL := uv==0.13.9
lock:
	@test -x .lock-tool/bin/uv || { $(PYTHON) -m venv .lock-tool && .lock-tool/bin/pip install --quiet $(LOCK_TOOL); }
	.lock-tool/bin/uv pip compile pyproject.toml --extra test --universal --python-version 3.11 \
	  --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) -o requirements.lock

# Model files are fetched once here (sha256-checked) so that analysis itself works offline.
setup: $(BIN)/.installed
	$(BIN)/python -m analysis.core.models

# Debian packages the tests need: Chromium for the dashboard test (Playwright drives it) and
# PortAudio for live microphones (sounddevice; Playback says what to install when it is missing).
system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Chromium for the browser test (Debian/Ubuntu: apt-get install chromium)."; fi; \
	fi
	@if ! ldconfig -p 2>/dev/null | grep -q libportaudio; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get install -y -qq libportaudio2 >/dev/null 2>&1 || \
	      { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libportaudio2 >/dev/null; }; \
	  else echo "Install PortAudio for live microphones (macOS: brew install portaudio)."; fi; \
	fi

demo: setup
	$(BIN)/playback demo

test: setup system-deps
	$(BIN)/python -m pytest

benchmark: setup
	$(BIN)/python -m benchmarks.analyze_sample
	$(BIN)/python -m benchmarks.dynamics --multitrack --from-audio
	$(BIN)/python -m benchmarks.diarization
	$(BIN)/python -m benchmarks.audiovisual
	$(BIN)/python -m benchmarks.tone
	$(BIN)/python -m benchmarks.vault_overhead
	$(BIN)/python -m benchmarks.session_scale --minutes 10

clean:
	rm -rf $(VENV) .lock-tool .pytest_cache tests/artifacts
