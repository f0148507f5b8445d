"""Audio-visual speaker attribution on composed GRID "couples" (two talking faces side by side).

    .venv/bin/python -m benchmarks.audiovisual [--duration 40] [--seeds 0 1] [--couples bbaf2n+lwbsza ...]
        [--sample-fps 10] [--backend embedded|segmentation3|hybrid]

Each couple is composed with ``analysis.evaluation.av_composer.compose_couple`` into a temporary folder,
then analysed the way the pipeline does it: faces (``analysis.stages.faces.face_frames``, 10 frames/s),
diarization of the mixture (the single-microphone backend ``--backend``, default the embedded one; two
speakers) and ``name_speakers``. Printed per
session: right-face attribution (share of true speech time during which the hypothesis has the
same person speaking), DER with its parts (``analysis.evaluation.metrics.der``, no collar, overlap
scored), overlapped speech found vs true, and processing time as a multiple of real time
(faces + diarization + naming, excluding composition). ``voice_only`` is the same diarization
named without faces, scored with the better of the two namings (what voice clustering alone
could reach if something else named its clusters), for reference.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from analysis.evaluation.av_composer import compose_couple, overlap_seconds, right_face_share
from analysis.evaluation.metrics import der
from analysis.stages.faces import FaceParams, face_frames
from analysis.stages.speakers.audiovisual import name_speakers
from analysis.stages.speakers.backends import diarize_backend_frames
from analysis.stages.speakers.diarization import DiarizationParams
from capture.media import decode_audio

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PLAYBACK_MODEL_DIR", str(ROOT.parent / "shared" / "models"))  # read when a model is looked up

# man + woman (the primary couple), two men, woman + man, and one man twice: the same voice on
# both sides, which no voice clustering can split, so only the faces can attribute it
COUPLES = ("bbaf2n+lwbsza", "bbaf2n+id2_vcd_swwp2s", "lwbsza+id2_vcd_swwp2s", "bbaf2n+bbaf2n")


def analyse(path: Path, ids: list[str], face_params: FaceParams = FaceParams(),
            diarization: DiarizationParams = DiarizationParams()
            ) -> tuple[pd.DataFrame, pd.DataFrame, str, float, pd.DataFrame]:
    """(named segments, audio-only segments, backend text, seconds, faces table)."""
    started = time.perf_counter()
    faces = face_frames(path, ids, params=face_params)
    y = decode_audio(path)
    frames = diarize_backend_frames(y, 16000, n_speakers=len(ids), params=diarization)
    hyp, how = name_speakers(frames, ids, faces)
    seconds = time.perf_counter() - started
    audio_only, _ = name_speakers(frames, ids, faces.iloc[0:0])
    return hyp, audio_only, how, seconds, faces


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--couples", nargs="+", default=list(COUPLES))
    ap.add_argument("--sample-fps", type=float, default=FaceParams().sample_fps, help="face frames analysed per second")
    ap.add_argument("--backend", default="embedded", choices=["embedded", "segmentation3", "hybrid"],
                    help="single-microphone diarization backend")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for couple in args.couples:
            left, right = couple.split("+")
            for seed in args.seeds:
                made = compose_couple(Path(tmp) / f"{left}-{right}-{seed}.mp4", left=left, right=right,
                                      seed=seed, duration_s=args.duration)
                truth = made["truth"]
                swap = dict(zip(made["ids"], made["ids"][::-1]))
                hyp, audio_only, how, seconds, faces = analyse(made["path"], made["ids"],
                                                               FaceParams(sample_fps=args.sample_fps),
                                                               DiarizationParams(backend=args.backend))
                score = der(truth, hyp, ref_label="participant_id", end_s=made["duration_s"])
                rows.append({
                    "couple": f"{left}+{right}", "seed": seed, "dur_s": made["duration_s"],
                    "right_face": right_face_share(truth, hyp),
                    "voice_only": max(right_face_share(truth, audio_only), right_face_share(
                        truth, audio_only.assign(participant_id=audio_only.participant_id.map(swap)))),
                    "DER": score["der"], "missed": score["missed"], "false_alarm": score["false_alarm"],
                    "confusion": score["confusion"],
                    "ovl_found_s": overlap_seconds(hyp), "ovl_true_s": made["overlap_s"],
                    "faces_seen": faces.groupby("participant_id").detected.mean().min(),
                    "x_realtime": seconds / made["duration_s"],
                })
                if args.verbose:
                    print(f"{couple} seed {seed}: {how}", flush=True)
    table = pd.DataFrame(rows)
    pct = ["right_face", "voice_only", "DER", "missed", "false_alarm", "confusion", "faces_seen"]
    shown = table.copy()
    for c in pct:
        shown[c] = (100 * shown[c]).map("{:.1f}%".format)
    for c in ("dur_s", "ovl_found_s", "ovl_true_s"):
        shown[c] = shown[c].map("{:.1f}".format)
    shown["x_realtime"] = shown["x_realtime"].map("{:.2f}x".format)
    print(shown.to_string(index=False))
    print(f"\nmean right-face attribution {table.right_face.mean():.1%} (min {table.right_face.min():.1%}); "
          f"mean DER {table.DER.mean():.1%}; backend {args.backend}; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
