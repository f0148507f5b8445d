"""Finding model files: ``PLAYBACK_MODEL_DIR``, then the per-user cache, then a download.

Downloads happen only from the model's official address and only when the file is in neither
place; every file is checked against its sha256 before use. Offline and missing, the user gets
one sentence naming the file and where to put it.
"""
from __future__ import annotations

import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from capture.errors import ModelUnavailableError
from capture.media import sha256_file


@dataclass(frozen=True)
class ModelFile:
    filename: str
    sha256: str
    url: str
    licence: str


FACE_LANDMARKER = ModelFile(
    filename="face_landmarker.task",
    sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    url="https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
    licence="Apache-2.0 (Google MediaPipe)",
)


def user_model_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "playback" / "models"


def _verified(path: Path, model: ModelFile) -> Path | None:
    if not path.is_file():
        return None
    if sha256_file(path) != model.sha256:
        raise ModelUnavailableError(
            f"{path} does not match the expected sha256 of {model.filename}; delete it and put the "
            f"official file there (from {model.url})."
        )
    return path


def resolve_model(model: ModelFile, *, allow_download: bool | None = None) -> Path:
    """Path of a verified copy of ``model``.

    Order: ``$PLAYBACK_MODEL_DIR/<file>``, ``<user cache>/<file>``, then (unless
    ``allow_download`` is False or ``PLAYBACK_OFFLINE=1``) a download from the official address
    into the user cache.
    """
    model_dir = os.environ.get("PLAYBACK_MODEL_DIR")
    if model_dir:
        found = _verified(Path(model_dir).expanduser() / model.filename, model)
        if found:
            return found
    cache = user_model_cache()
    found = _verified(cache / model.filename, model)
    if found:
        return found
    if allow_download is None:
        allow_download = os.environ.get("PLAYBACK_OFFLINE", "0") != "1"
    where = f"{model_dir or cache}/{model.filename}"
    if not allow_download:
        raise ModelUnavailableError(
            f"The model file {model.filename} is missing: download it from {model.url} and put it at {where}."
        )
    try:
        return _download(model, cache)
    except OSError as exc:
        raise ModelUnavailableError(
            f"The model file {model.filename} is missing and could not be downloaded ({exc}); "
            f"download it from {model.url} and put it at {where}."
        ) from None


def _download(model: ModelFile, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(model.url, timeout=30) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        if sha256_file(Path(tmp)) != model.sha256:
            raise OSError(f"the downloaded {model.filename} failed its sha256 check")
        final = cache / model.filename
        os.replace(tmp, final)
        return final
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
