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

.PHONY: setup system-deps demo test benchmark clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# Model files are fetched once here (sha256-checked) so that analysis itself works offline.
setup: $(BIN)/.installed
	$(BIN)/python -m analysis.models

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
	$(BIN)/python benchmarks/analyze_sample.py
	$(BIN)/python -m benchmarks.dynamics --multitrack --from-audio
	$(BIN)/python benchmarks/diarization.py
	$(BIN)/python benchmarks/audiovisual.py
	$(BIN)/python benchmarks/vault_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
