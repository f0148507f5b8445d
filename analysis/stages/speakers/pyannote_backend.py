"""Optional diarization backend: a pretrained pyannote.audio pipeline, where the user has one.

The pretrained pipelines (``pyannote/speaker-diarization-community-1``, ``-3.1``) are gated on
the Hugging Face model hub, so Playback never fetches them on its own. The user opts in with
``PLAYBACK_PYANNOTE_PIPELINE``:

* a local folder holding the pipeline's ``config.yaml`` and its models, laid out as on the hub
  (``segmentation/pytorch_model.bin``, ``embedding/pytorch_model.bin``, ``plda/*.npz`` for
  community-1), e.g. a git-lfs clone or a ``hf download`` of the repository. Nothing outside
  that folder is read and nothing is downloaded;
* or the hub id itself (``pyannote/speaker-diarization-community-1``), which downloads into the
  Hugging Face cache with the token in ``PLAYBACK_HF_TOKEN`` or ``HF_TOKEN`` (or the one saved
  by ``hf auth login``), after the user accepted the model's conditions on the hub.

pyannote.audio's usage telemetry is off: ``PYANNOTE_METRICS_ENABLED=0`` is set before pyannote
is imported (here and in ``analysis/__init__``), which every ``track_*`` call of
``pyannote.audio.telemetry`` checks before sending anything.

Confidence: a pyannote pipeline returns hard speaker turns with no score per turn, so every
turn's ``confidence`` is 1.0; :func:`backend_record` says so in the run metadata.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable

# Before any pyannote import (analysis/__init__ does the same; repeated for direct imports).
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import logging
from importlib.metadata import version

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml

from analysis.core.rttm import to_rttm  # noqa: E402
from capture.errors import ModelUnavailableError  # noqa: E402

PIPELINE_ENV = "PLAYBACK_PYANNOTE_PIPELINE"
TOKEN_ENVS = ("PLAYBACK_HF_TOKEN", "HF_TOKEN")
RECOMMENDED = "pyannote/speaker-diarization-community-1"
COLUMNS = ["start_s", "end_s", "participant_id", "confidence"]
# Only pyannote's own pipelines are taken as hub ids; any other value is a local path.
_HUB_ID = re.compile(r"^pyannote/[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOW_TO = (
    f"set {PIPELINE_ENV} to a full copy of {RECOMMENDED} (its config.yaml and model folders), "
    "or unset it to use the built-in diarization"
)


def configured_pipeline() -> str | None:
    """The pipeline the user configured in ``PLAYBACK_PYANNOTE_PIPELINE`` (None when unset)."""
    return os.environ.get(PIPELINE_ENV, "").strip() or None


def locate_pipeline(value: str | None = None) -> str | Path | None:
    """Where the user's pyannote pipeline ``value`` is (default: :func:`configured_pipeline`):
    a local folder (``Path``), a hub id the user asked for explicitly (``str``), or ``None``.

    A value that exists on disk is always a local path. A value that does not exist is a hub
    id only when it names one of pyannote's pipelines (``pyannote/<name>``); anything else is
    returned as a (missing) path so that :func:`load_pipeline` says it is missing rather than
    trying the network.
    """
    value = (value or "").strip() or configured_pipeline()
    if not value:
        return None
    path = Path(value).expanduser()
    if path.exists():
        return path
    if _HUB_ID.match(value):
        return value
    return path


def hub_token() -> str | None:
    """The user's Hugging Face token from the environment, if any."""
    for name in TOKEN_ENVS:
        token = os.environ.get(name, "").strip()
        if token:
            return token
    return None


def load_pipeline(source: str | Path):
    """Load a pyannote pipeline on the CPU from a local folder (or ``config.yaml``) or, when
    ``source`` is a hub id string, from the model hub with the user's token.

    Any failure (missing folder, incomplete copy, gated model without a token, no network,
    incompatible files) raises :class:`ModelUnavailableError` with one sentence saying how to
    enable the backend.
    """
    is_hub = isinstance(source, str) and _HUB_ID.match(source) is not None and not Path(source).exists()
    if not is_hub:
        _check_local(Path(source).expanduser())
    try:
        import torch
        from pyannote.audio import Pipeline

        out = io.StringIO()  # pyannote prints a multi-line hint on hub errors: keep it quiet
        with contextlib.redirect_stdout(out), warnings.catch_warnings(), _quiet_hub_logs():
            warnings.simplefilter("ignore")
            if is_hub:
                pipeline = Pipeline.from_pretrained(source, token=hub_token())
            else:
                pipeline = Pipeline.from_pretrained(Path(source).expanduser())
        if pipeline is None:
            raise RuntimeError("from_pretrained returned nothing")
        pipeline.to(torch.device("cpu"))
    except ModelUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes one readable line
        if is_hub:
            raise ModelUnavailableError(
                f"Could not get {source} from the model hub ({_hub_reason(exc)}): accept its conditions "
                f"at https://hf.co/{source}, set PLAYBACK_HF_TOKEN to a read token and run once online, "
                f"or set {PIPELINE_ENV} to a downloaded copy of it."
            ) from None
        raise ModelUnavailableError(
            f"Could not load the pyannote pipeline in {source} ({_one_line(exc)}): {_HOW_TO}."
        ) from None
    if not hasattr(pipeline, "apply"):
        raise ModelUnavailableError(f"{source} is not a pyannote pipeline: {_HOW_TO}.")
    pipeline._playback_source = str(source)
    return pipeline


@contextlib.contextmanager
def _quiet_hub_logs():
    """huggingface_hub logs every retry of an unreachable hub; the user gets one line instead."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _hub_reason(exc: BaseException) -> str:
    try:
        from huggingface_hub.errors import (
            GatedRepoError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError:  # pragma: no cover - older huggingface_hub
        return _one_line(exc)
    if isinstance(exc, GatedRepoError):
        return "gated: no token, or its conditions not accepted"
    if isinstance(exc, RepositoryNotFoundError):
        return "not found, or no access with this token"
    if isinstance(exc, LocalEntryNotFoundError):
        return "offline and not in the local cache"
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _check_local(path: Path) -> None:
    """Refuse, with one sentence, a local pipeline that is missing, incomplete (git-lfs pointers
    instead of weights) or that refers to models on the hub (which would be downloaded)."""
    if not path.exists():
        raise ModelUnavailableError(f"No pyannote pipeline at {path}: {_HOW_TO}.")
    config_path = path / "config.yaml" if path.is_dir() else path
    if not config_path.is_file():
        raise ModelUnavailableError(f"{path} has no config.yaml, so it is not a pyannote pipeline: {_HOW_TO}.")
    try:
        config = yaml.safe_load(config_path.read_text())
        params = config["pipeline"].get("params", {}) or {}
        name = config["pipeline"]["name"]
    except Exception as exc:  # noqa: BLE001
        raise ModelUnavailableError(f"{config_path} is not a pyannote pipeline config ({_one_line(exc)}): {_HOW_TO}.") from None
    root = config_path.parent
    if name.endswith("SpeakerDiarization") and "plda" not in params:
        # pyannote.audio 4 then loads the PLDA of community-1 from the hub.
        params = {**params, "plda": RECOMMENDED + "/plda"}
    for key in ("segmentation", "embedding", "plda"):
        value = params.get(key)
        if value is None:
            continue
        if isinstance(value, dict):
            value = value.get("checkpoint")
        if not isinstance(value, str):
            continue
        if value.startswith("$model/"):
            target = root / value[len("$model/"):].split("@")[0]
            if not target.exists():
                raise ModelUnavailableError(f"The pyannote pipeline in {root} is incomplete ({target} is missing): {_HOW_TO}.")
            _check_lfs(target)
        elif Path(value).expanduser().exists():
            _check_lfs(Path(value).expanduser())
        else:
            raise ModelUnavailableError(
                f"The pyannote pipeline in {root} needs {value} from the model hub, which Playback does "
                f"not download unasked: {_HOW_TO}."
            )


def _check_lfs(target: Path) -> None:
    files = [target] if target.is_file() else [p for p in target.iterdir() if p.is_file()]
    for f in files:
        if f.suffix in {".bin", ".npz", ".safetensors", ".ckpt"} and f.stat().st_size < 1024:
            with open(f, "rb") as fh:
                if fh.read(40).startswith(b"version https://git-lfs"):
                    raise ModelUnavailableError(
                        f"{f} is a git-lfs pointer, not the model: run `git lfs pull` in that folder "
                        f"(or download it with `hf download`), then try again."
                    )


def diarize_with_pyannote(
    pipeline,
    y: np.ndarray,
    sr: int,
    *,
    n_speakers: int | None,
    exclusive: bool = False,
    progress: Callable[[str, int | None, int | None], None] | None = None,
) -> pd.DataFrame:
    """Speaker turns of ``y`` (float mono at ``sr`` Hz) from a loaded pyannote pipeline.

    Columns ``start_s, end_s, participant_id, confidence``; labels as the pipeline gives them
    (``SPEAKER_00``, ...); turns of different speakers may overlap (``exclusive=True`` takes
    pyannote's exclusive diarization instead, one speaker at a time). Times are clipped to the
    audio; sorted by start. ``confidence`` is 1.0 (pyannote gives no score per turn).
    ``num_speakers`` is passed when ``n_speakers`` is known. ``progress(step, completed,
    total)`` is called as pyannote goes (steps ``segmentation``, ``embeddings``, ...). Warnings
    the pipeline raised are kept in ``frame.attrs["warnings"]``.
    """
    import torch

    duration = len(y) / sr
    waveform = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).reshape(1, -1)
    kwargs: dict[str, Any] = {}
    if n_speakers is not None and n_speakers > 0:
        kwargs["num_speakers"] = int(n_speakers)
    if progress is not None:
        def hook(step, artifact, file=None, total=None, completed=None):  # pyannote's hook signature
            progress(step, completed, total)

        kwargs["hook"] = hook
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output = pipeline({"waveform": waveform, "sample_rate": int(sr), "uri": "session"}, **kwargs)
    annotation = _annotation_of(output, exclusive=exclusive)
    rows = []
    for turn, _, label in annotation.itertracks(yield_label=True):
        start, end = max(0.0, float(turn.start)), min(duration, float(turn.end))
        if end - start > 1e-3:
            rows.append((round(start, 3), round(end, 3), str(label), 1.0))
    frame = pd.DataFrame(rows, columns=COLUMNS).astype(
        {"start_s": float, "end_s": float, "participant_id": str, "confidence": float})
    frame = frame.sort_values(["start_s", "participant_id"], ignore_index=True)
    frame.attrs["warnings"] = sorted({" ".join(str(w.message).split()) for w in caught})
    return frame


def _annotation_of(output, *, exclusive: bool):
    """The Annotation in a pipeline's output: pyannote 4 ``DiarizeOutput``, a legacy
    ``Annotation``, or a 3.x ``(Annotation, embeddings)`` tuple."""
    from pyannote.core import Annotation

    if isinstance(output, tuple):
        output = output[0]
    if isinstance(output, Annotation):
        return output
    if exclusive and getattr(output, "exclusive_speaker_diarization", None) is not None:
        return output.exclusive_speaker_diarization
    if getattr(output, "speaker_diarization", None) is not None:
        return output.speaker_diarization
    raise ModelUnavailableError(
        f"The pyannote pipeline returned {type(output).__name__}, not a speaker diarization: {_HOW_TO}.")


def first_speech_mapping(segments: pd.DataFrame, ids: list[str]) -> dict[str, str]:
    """Pipeline label -> participant id, in order of first speech (the first voice heard is the
    first listed participant), as the built-in backend does without faces. Labels beyond the
    number of participants are left out."""
    order = segments.sort_values("start_s").participant_id.drop_duplicates().tolist()
    return dict(zip(order, ids))


def map_labels(segments: pd.DataFrame, mapping: dict[str, str], *, drop_unmapped: bool = True) -> pd.DataFrame:
    """Segments with ``participant_id`` renamed through ``mapping``; labels not in it are
    dropped (or kept as they are with ``drop_unmapped=False``)."""
    out = segments.copy()
    if drop_unmapped:
        out = out[out.participant_id.isin(mapping)]
    out["participant_id"] = out.participant_id.map(lambda label: mapping.get(label, label))
    return out.sort_values(["start_s", "participant_id"], ignore_index=True)


def to_annotation(segments: pd.DataFrame, uri: str = "session"):
    """pyannote ``Annotation`` of the segments (labels = ``participant_id``)."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for i, row in enumerate(segments.itertuples()):
        annotation[Segment(float(row.start_s), float(row.end_s)), i] = row.participant_id
    return annotation


def write_rttm(segments: pd.DataFrame, path: str | Path, uri: str = "session") -> Path:
    """Write the segments' RTTM (each turn's confidence in the confidence column) to ``path``."""
    path = Path(path)
    path.write_text(to_rttm(segments, uri, confidence="confidence"))
    return path


def telemetry_enabled() -> bool:
    """Whether pyannote.audio would send usage metrics now (False unless the user turned it on)."""
    from pyannote.audio.telemetry.metrics import is_metrics_enabled

    return is_metrics_enabled()


def backend_record(pipeline) -> dict:
    """What to store in the run metadata about this backend."""
    source = getattr(pipeline, "_playback_source", "unknown")
    return {
        "backend": f"pyannote.audio {version('pyannote.audio')} pipeline {source}",
        "models": {"pyannote.audio": version("pyannote.audio"), "pyannote pipeline": source},
        "pipeline_class": type(pipeline).__name__,
        "telemetry": "on" if telemetry_enabled() else "off",
        "confidence": "1.0 for every turn: pyannote returns hard speaker turns without a score",
    }


__all__ = [
    "PIPELINE_ENV",
    "locate_pipeline",
    "load_pipeline",
    "diarize_with_pyannote",
    "first_speech_mapping",
    "map_labels",
    "to_annotation",
    "write_rttm",
    "telemetry_enabled",
    "backend_record",
]
