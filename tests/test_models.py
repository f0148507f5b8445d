"""Model files: local directory first, sha256 verified, one clear sentence when missing."""
from __future__ import annotations

import pytest

from analysis.models import FACE_LANDMARKER, ModelFile, resolve_model
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
