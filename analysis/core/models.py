"""Finding model files: ``PLAYBACK_MODEL_DIR``, then the per-user cache, then a download.

Downloads happen only from the model's published address and only when the file is in neither
place; every file is checked against its sha256 before use (a model published inside a zip
archive, such as a Python wheel, is taken out of the verified archive). Offline and missing,
the user gets one sentence naming the file and where to put it.
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from capture.errors import ModelUnavailableError
from capture.media import sha256_file

# ---- lifetime policy ---------------------------------------------------------------------
# One policy for every heavy model: a model that keeps no state between recordings (Silero VAD,
# the GE2E voice encoder, pyannote's segmentation network) is loaded on first use and kept for
# the life of the process, once, whatever stage or session asks (``@shared_model``);
# ``release_models()`` frees them all. A model that keeps per-recording state (MediaPipe's Face
# Landmarker in VIDEO mode, whose timestamps must only increase) is opened for one recording and
# closed with it (``with``), never shared.
_LOADED: dict[str, object] = {}


def shared_model(load: Callable[[], object]) -> Callable[[], object]:
    """Decorator: ``load()`` runs once per process; later calls return the same model.
    ``.cache_clear()`` forgets it (the next call loads again)."""
    key = f"{load.__module__}.{load.__qualname__}"

    @functools.wraps(load)
    def get() -> object:
        if key not in _LOADED:
            _LOADED[key] = load()
        return _LOADED[key]

    get.cache_clear = lambda: _LOADED.pop(key, None)  # type: ignore[attr-defined]
    return get


def loaded_models() -> list[str]:
    """Names of the shared models this process holds now."""
    return sorted(_LOADED)


def release_models() -> None:
    """Free every shared model (each loads again on its next use)."""
    _LOADED.clear()


@dataclass(frozen=True)
class ModelFile:
    filename: str
    sha256: str
    url: str
    licence: str
    archive_member: str | None = None  # the file is this member of the zip archive at ``url``
    archive_sha256: str | None = None  # ...whose own sha256 this is

    def how_to_get(self, where: str) -> str:
        if self.archive_member:
            return f"download {self.url} (a zip archive), take {self.archive_member} out of it and put it at {where}"
        return f"download it from {self.url} and put it at {where}"


FACE_LANDMARKER = ModelFile(
    filename="face_landmarker.task",
    sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    url="https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
    licence="Apache-2.0 (Google MediaPipe)",
)

# pyannote/segmentation (Bredin & Laurent, 2021): 5 s windows in, up to three speakers' activity
# out, overlaps included. The original is gated on the Hugging Face hub; whisperX publishes the
# same checkpoint inside its wheel on PyPI, which is where Playback fetches it from.
SEGMENTATION = ModelFile(
    filename="pyannote-segmentation-2021.bin",
    sha256="0b5b3216d60a2d32fc086b47ea8c67589aaeb26b7e07fcbe620d6d0b83e209ea",
    url="https://files.pythonhosted.org/packages/00/53/d533db85704e64b1709db695fba2dd3b747cb7e979a18bd18dfbf1e44b91/"
        "whisperx-3.8.6-py3-none-any.whl",
    licence="MIT (pyannote/segmentation), redistributed in the whisperx 3.8.6 wheel (BSD-2-Clause)",
    archive_member="whisperx/assets/pytorch_model.bin",
    archive_sha256="cb6d4fcd3fb6c42305cb8b222a33a0b78f6b657e9db3b714345fe43dc0a69c1f",
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
            f"published file there (from {model.url})."
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
            f"The model file {model.filename} is missing: {model.how_to_get(where)}."
        )
    try:
        return _download(model, cache)
    except OSError as exc:
        raise ModelUnavailableError(
            f"The model file {model.filename} is missing and could not be downloaded ({exc}); "
            f"{model.how_to_get(where)}."
        ) from None


def _download(model: ModelFile, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(model.url, timeout=30) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        if model.archive_member:
            _extract_member(Path(tmp), model)
        if sha256_file(Path(tmp)) != model.sha256:
            raise OSError(f"the downloaded {model.filename} failed its sha256 check")
        final = cache / model.filename
        os.replace(tmp, final)
        return final
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _extract_member(archive: Path, model: ModelFile) -> None:
    """Replace the downloaded zip ``archive`` by its member ``model.archive_member``, after
    checking the archive's own sha256."""
    if model.archive_sha256 and sha256_file(archive) != model.archive_sha256:
        raise OSError(f"the downloaded archive holding {model.filename} failed its sha256 check")
    member = archive.with_name(archive.name + ".member")
    try:
        with zipfile.ZipFile(archive) as z, z.open(model.archive_member) as src, open(member, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(member, archive)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise OSError(f"the downloaded archive has no {model.archive_member} ({exc})") from None
    finally:
        if member.exists():
            member.unlink()


def fetch_all() -> int:
    """Resolve every model Playback uses, downloading the missing ones (``make setup`` runs this
    so that analysis later works offline). Prints one line per model; returns the exit code."""
    failed = 0
    for model in (FACE_LANDMARKER, SEGMENTATION):
        try:
            print(f"{model.filename}: {resolve_model(model)}")
        except ModelUnavailableError as exc:
            failed = 1
            print(exc)
    return failed


if __name__ == "__main__":
    raise SystemExit(fetch_all())
