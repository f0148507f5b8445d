"""The audio stages' spectra and loudness are computed in blocks and voice activity without a
padded copy of the signal: the same output as the whole-signal computation, and working memory
that does not grow with the session's length.

Outputs are compared on real speech (the shared AMI group excerpt) with block sizes chosen so
that many block edges fall inside speech. The mel spectra equal librosa's whole-signal ones to
float32 rounding only: librosa multiplies the power spectrum by the mel filters with one
matrix product (BLAS), whose last-bit rounding of a frame already depends on the frame's
position in the matrix, so the whole-signal result itself changes in the last bits with the
session's length.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from analysis.core.frames import centred_frame_blocks
from analysis.stages import tone
from analysis.stages.speakers import diarization

SR = 16000
MB = 1e6


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """60 s of real group speech, float32 at 16 kHz, with 3 s of digital silence inside (so
    that the MFCC's log-mel floor, 80 dB under the loudest value, is reached)."""
    import soundfile as sf

    from conftest import shared

    y, sr = sf.read(shared("data/ami-group/mixture.wav"), dtype="float32")
    assert sr == SR
    return np.concatenate([y[: 20 * SR], np.zeros(3 * SR, np.float32), y[20 * SR:]])


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 777 frames (7.77 s of 10 ms frames, 15.54 s of tone's 20 ms frames): not a
    multiple of anything in the signal, so block edges fall inside speech."""
    monkeypatch.setattr(diarization, "SPECTRUM_BLOCK_FRAMES", 777)
    monkeypatch.setattr(tone, "LOUDNESS_BLOCK_FRAMES", 777)
    monkeypatch.setattr(tone, "PRAAT_BLOCK_SAMPLES", 100_003)


@pytest.mark.parametrize("length", [0, 1, 399, 400, 401, 16_001])
@pytest.mark.parametrize("frame_length, hop", [(400, 160), (640, 320)])
def test_centred_blocks_frame_the_signal_as_librosa(length, frame_length, hop):
    import librosa

    y = np.arange(1, length + 1, dtype=np.float32)
    whole = librosa.util.frame(np.pad(y, frame_length // 2), frame_length=frame_length, hop_length=hop)
    parts = [librosa.util.frame(samples, frame_length=frame_length, hop_length=hop)
             for _, samples in centred_frame_blocks(y, frame_length, hop, 7)]
    assert np.array_equal(np.concatenate(parts, axis=1), whole)


def test_ge2e_mel_in_blocks_equals_resemblyzers_whole_signal_mel(speech, small_blocks):
    from resemblyzer.audio import wav_to_mel_spectrogram

    whole = wav_to_mel_spectrogram(speech / np.abs(speech).max() * 0.5)
    blocked = diarization.ge2e_mel(speech, SR)
    assert blocked.shape == whole.shape and blocked.dtype == whole.dtype
    np.testing.assert_allclose(blocked, whole, rtol=2e-6, atol=1e-12)


def test_mfcc_in_blocks_equals_librosas_whole_signal_mfcc(speech, small_blocks):
    import librosa

    whole = librosa.feature.mfcc(y=speech, sr=SR, n_mfcc=20, n_fft=400, hop_length=160, n_mels=40).T
    blocked = diarization.session_mfcc(speech, SR, 20)
    assert blocked.shape == whole.shape and blocked.dtype == whole.dtype
    np.testing.assert_allclose(blocked, whole, rtol=0, atol=1e-3)      # dB-scaled cepstra, up to ~800
    silent = slice(20 * 100 + 5, 23 * 100 - 5)                          # on the log-mel floor: one value
    assert np.ptp(blocked[silent, 0]) == 0 and np.allclose(blocked[silent, 0], whole[silent, 0], atol=1e-3)


def test_loudness_and_praat_sound_in_blocks_are_identical(speech, small_blocks):
    import librosa
    import parselmouth

    whole = librosa.feature.rms(y=speech, frame_length=640, hop_length=320, center=True)[0]
    assert np.array_equal(tone._rms(speech, 320), whole)
    expected = parselmouth.Sound(np.asarray(speech, np.float64), sampling_frequency=SR)
    sound = tone._praat_sound(speech, SR)
    assert np.array_equal(sound.values, expected.values)
    assert (sound.x1, sound.dx, sound.nx, sound.xmin, sound.xmax) == \
        (expected.x1, expected.dx, expected.nx, expected.xmin, expected.xmax)


@pytest.mark.parametrize("length_s", [37.1234, 32.0])       # no multiple of Silero's 512 samples; one
def test_vad_probabilities_equal_silero_audio_forward(speech, length_s):
    import torch

    y = speech[: int(length_s * SR)]
    model = diarization._vad_model()
    model.reset_states()
    with torch.no_grad():
        whole = model.audio_forward(torch.from_numpy(y), SR).numpy()[0]
    assert np.array_equal(diarization.vad_probabilities(y, SR), whole)


def test_ge2e_mel_read_in_blocks_gives_the_same_rows_and_embeddings(speech, small_blocks, monkeypatch):
    """The voice features read the session's mel a block at a time (``Ge2eMelBlocks``, two
    blocks kept here): the same rows as the whole ``ge2e_mel`` wherever a read starts or ends
    (inside a block, across block edges, past the end), so the same embeddings, bit for bit."""
    monkeypatch.setattr(diarization, "MEL_BLOCKS_KEPT", 2)
    signal = speech[: 40 * SR]
    whole = diarization.ge2e_mel(signal, SR)
    blocks = diarization.Ge2eMelBlocks(signal)
    n = len(whole)
    assert len(blocks) == n
    for a, b in [(0, 150), (700, 860), (770, 2400), (3000, 20), (n - 5, n + 40), (n + 3, n + 9), (0, None)]:
        assert np.array_equal(blocks[a:b], whole[a:b]), (a, b)
    mask = diarization.speech_mask(signal, SR)
    chunks = diarization.speech_chunks(mask)
    assert len(chunks) > 5
    assert np.array_equal(diarization.chunk_embeddings(blocks, chunks, threads=2),
                          diarization.chunk_embeddings(whole, chunks, threads=2))
    assert np.array_equal(diarization.window_embeddings(blocks, mask, threads=2)[1],
                          diarization.window_embeddings(whole, mask, threads=2)[1])


def _read_mel_windows(y: np.ndarray) -> np.ndarray:
    """Every 1.5 s window of ``y``'s GE2E mel, read through ``Ge2eMelBlocks`` in time order;
    returns nothing that grows with ``y``."""
    mel = diarization.Ge2eMelBlocks(y)
    for start in range(0, len(mel), 50):
        mel[start:start + 150]
    return np.zeros(0)


@pytest.mark.parametrize("n", [1, 7, 1000, 1001, 2500])
def test_columns_standardised_in_blocks_equal_numpys_whole_array(n):
    """Bit for bit numpy's ``(x - x.mean(0)) / (x.std(0) + 1e-9)``, with blocks of 1000 rows
    (the block edge, one row past it, several blocks), and without a temporary of ``x``'s size."""
    x = (np.random.default_rng(n).standard_normal((n, 20)) * 30 + 5).astype(np.float32)
    whole = (x - x.mean(0)) / (x.std(0) + 1e-9)
    blocked = x.copy()
    assert diarization.standardise_columns(blocked, rows=1000) is blocked
    assert blocked.dtype == np.float32 and np.array_equal(blocked, whole)

    big = np.random.default_rng(0).standard_normal((40_000, 20)).astype(np.float32)   # 3.2 MB
    peak, _ = _traced_peak(lambda: diarization.standardise_columns(big, rows=1000))
    assert peak < big.nbytes / 4


def _traced_peak(work) -> tuple[float, object]:
    """Peak Python/numpy memory (bytes) allocated while ``work()`` runs, and its result."""
    tracemalloc.start()
    try:
        result = work()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", ["ge2e_mel", "ge2e_mel_blocks", "session_mfcc", "mfcc_statistics", "rms"])
def test_working_memory_does_not_grow_with_length(speech, name):
    """From 2 to 6 minutes of speech, a function's peak (beyond what it returns) grows by less
    than half the signal's own growth (before blocks: 3 to 5 times it). ``mfcc_statistics`` holds
    the session's 20 MFCCs per 10 ms frame (an eighth of the signal's 160 float32 samples)."""
    spans = [(a, a + 150) for a in range(0, 6 * 60 * 100, 50)]
    work = {"ge2e_mel": lambda y: diarization.ge2e_mel(y, SR),
            "ge2e_mel_blocks": _read_mel_windows,
            "session_mfcc": lambda y: diarization.session_mfcc(y, SR, 20),
            "mfcc_statistics": lambda y: diarization.mfcc_statistics(y, SR, np.ones(len(y) // 160 + 1, bool),
                                                                     spans[: max(1, len(y) // 8000 - 3)]),
            "rms": lambda y: tone._rms(y, 320)}[name]
    work(speech[:SR])                                 # libraries imported before measuring
    peaks = {}
    for minutes in (2, 6):
        y = np.tile(speech, minutes + 1)[: minutes * 60 * SR]
        peak, result = _traced_peak(lambda: work(y))
        peaks[minutes] = peak - result.nbytes
    signal_growth = 4 * 60 * SR * 4                   # float32 bytes of 4 more minutes
    print(f"{name}: {peaks[2] / MB:.1f} MB at 2 min, {peaks[6] / MB:.1f} MB at 6 min")
    assert peaks[6] - peaks[2] < signal_growth / 2, (
        f"{name}: {peaks[2] / MB:.1f} MB at 2 min, {peaks[6] / MB:.1f} MB at 6 min")


# ---- the faces stage's tables ----------------------------------------------------------------
def _detections(seconds: float, rng) -> "pd.DataFrame":
    """Synthetic raw face detections (the columns detect_faces gives) of two people seated left
    and right, every 0.1 s, with faces missed, turned away, a third face passing and signatures
    spread around each person's own."""
    import pandas as pd

    from analysis.stages import faces

    people = [rng.normal(0, 1, 231).astype(np.float32) for _ in range(3)]
    rows = []
    for t in np.round(np.arange(0, seconds, 0.1), 3):
        seen = [k for k in (0, 1) if rng.random() > 0.05] + ([2] if 30 < t % 60 < 33 else [])
        for k in seen:
            row = {"t_s": float(t), "face_x": 0.25 + 0.5 * min(k, 1) + rng.normal(0, 0.01) - 0.2 * (k == 2),
                   "face_y": 0.5 + rng.normal(0, 0.01), "face_w": 0.1, "face_h": 0.15,
                   "hidden": float(rng.random() < 0.03), "yaw_deg": float(rng.normal(0, 20)),
                   "pitch_deg": 0.0, "roll_deg": 0.0,
                   "signature": (people[k] + rng.normal(0, 0.1, 231)).astype(np.float32)}
            row.update({name: float(rng.random()) for name in faces.BLENDSHAPES})
            rows.append(row)
        if not seen:
            rows.append({"t_s": float(t)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("ids", [["p1", "p2"], ["p1", "p2", "p3"], ["p1"]])
def test_faces_table_is_built_in_time_order_without_a_sorted_copy(ids):
    """The faces table is built row by row in time order (each sample's participants in the
    order listed) from detections already in time order, as the stretches give them: the same
    table as from the same detections shuffled (sorted first), and the same as re-ordering the
    participant-major table that was built before (sorted by time, stable)."""
    import pandas as pd

    from analysis.stages import faces

    detections = _detections(200.0, np.random.default_rng(7))
    params = faces.FaceParams(reid_min_separation=0.5)
    table, info = faces.assign_participants(detections, ids, params)
    shuffled, shuffled_info = faces.assign_participants(detections.sample(frac=1, random_state=3), ids, params)
    pd.testing.assert_frame_equal(table, shuffled, check_exact=True)
    assert info == shuffled_info
    assert list(table.columns) == faces.COLUMNS and isinstance(table.index, pd.RangeIndex)
    assert (np.diff(table.t_s.to_numpy()) >= 0).all()
    assert (table.participant_id.to_numpy().reshape(-1, len(ids)) == np.array(ids)).all()
    by_person = table.sort_values("participant_id", kind="stable", key=lambda c: c.map(ids.index))
    again = by_person.sort_values("t_s", kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(again, table, check_exact=True)


def test_track_signature_distances_in_blocks_equal_the_whole(monkeypatch):
    from analysis.stages import face_tracks

    rng = np.random.default_rng(1)
    stacked = rng.normal(0, 1, (1001, 231)).astype(np.float32)
    mean = stacked.mean(0)
    monkeypatch.setattr(face_tracks, "DISTANCE_BLOCK", 97)
    assert np.array_equal(face_tracks._distances(stacked, mean), np.linalg.norm(stacked - np.float64(mean), axis=1))


# ---- the session's audio: decoded as it is decrypted, held as 16-bit samples -------------------
@pytest.mark.parametrize("damage", [None, "flip_middle", "cut_end"])
def test_session_audio_is_decoded_as_it_is_decrypted(store, damage):
    """``Session.audio`` decodes the stored WAV from the decrypting reader, as 16-bit samples:
    the same values as decoding its bytes, and a damaged file still raises IntegrityError (an error inside
    libsndfile's read callback would otherwise only be printed, and the audio cut short)."""
    from analysis.pipeline import Session
    from capture.errors import IntegrityError
    from capture.ingest import import_media
    from capture.media import Pcm16Signal, decode_wav
    from conftest import shared

    session_id = import_media(store, shared("data/ami-group/mixture.wav"), "Alex,Sam")
    rel = store.manifest(session_id)["media"]["audio"]
    if damage is None:
        expected, rate = decode_wav(store.read_bytes(session_id, rel))
        y, sr = Session(store, session_id).audio()
        assert sr == rate and y.dtype == expected.dtype and np.array_equal(y, expected)
        assert isinstance(y, Pcm16Signal) and y.pcm.nbytes * 2 == expected.nbytes       # held at half the size
        return
    path = store.root / "sessions" / session_id / rel
    data = bytearray(path.read_bytes())
    if damage == "flip_middle":
        data[len(data) // 2] ^= 0x40
    else:
        data = data[: len(data) * 3 // 4]
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        Session(store, session_id).audio()


@pytest.fixture(scope="module")
def pcm_speech(speech):
    """The speech as the import stores it (16-bit WAV), decoded both ways: ``(float32 array,
    Pcm16Signal)`` of the same samples."""
    import io

    from capture.media import Pcm16Signal, decode_wav, decode_wav_signal, encode_wav

    wav = encode_wav(speech, sr=SR)
    y, _ = decode_wav(wav)
    signal, sr = decode_wav_signal(io.BufferedReader(io.BytesIO(wav)))
    assert isinstance(signal, Pcm16Signal) and sr == SR and signal.pcm.nbytes * 2 == y.nbytes
    return y, signal


def test_a_pcm16_signal_has_the_float32_values(pcm_speech):
    y, signal = pcm_speech
    assert len(signal) == len(y) and signal.shape == y.shape and signal.dtype == y.dtype
    assert np.array_equal(signal[:], y) and np.array_equal(np.asarray(signal), y)
    assert np.array_equal(signal[12345:67890], y[12345:67890]) and np.array_equal(signal[-5:], y[-5:])
    assert signal.max() == y.max() and signal.min() == y.min()
    assert np.max(signal) == np.max(y) and np.min(signal) == np.min(y)
    assert np.mean(signal, dtype=np.float64) == np.mean(y, dtype=np.float64)
    assert tone._abs_peak(signal) == tone._abs_peak(y)


def test_audio_stages_give_the_same_on_a_pcm16_signal(pcm_speech, small_blocks, monkeypatch):
    """Every audio function the embedded backend and the tone stage run on the session's signal
    gives exactly what it gives on the float32 array (blocks small enough that many edges fall
    inside speech; Praat's blocks too, so that the whole signal's peak is taken)."""
    from analysis.core.frames import frame_level_db
    from analysis.stages.speakers import overlap

    monkeypatch.setattr(diarization, "VAD_BLOCK_SAMPLES", 512 * 37)
    monkeypatch.setattr(tone, "PRAAT_BLOCK_S", 20.0)
    y, signal = pcm_speech
    assert np.array_equal(diarization.vad_probabilities(signal, SR), diarization.vad_probabilities(y, SR))
    short = (y[: 16_001], signal.__class__(signal.pcm[: 16_001]))
    assert np.array_equal(diarization.vad_probabilities(short[1], SR), diarization.vad_probabilities(short[0], SR))
    assert np.array_equal(frame_level_db(signal, SR), frame_level_db(y, SR))
    mask = diarization.speech_mask(y, SR)
    assert np.array_equal(diarization.speech_mask(signal, SR), mask)
    assert np.array_equal(diarization.ge2e_mel(signal, SR), diarization.ge2e_mel(y, SR))
    spans = diarization.speech_chunks(mask)
    assert np.array_equal(diarization.mfcc_statistics(signal, SR, mask, spans),
                          diarization.mfcc_statistics(y, SR, mask, spans))
    head = (y[: 30 * SR], signal.__class__(signal.pcm[: 30 * SR]))
    a, b = overlap.speaker_activity(head[1], SR), overlap.speaker_activity(head[0], SR)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    import pandas as pd

    pd.testing.assert_frame_equal(tone.prosody_frames(signal, SR), tone.prosody_frames(y, SR), check_exact=True)


def test_praat_blocks_of_a_pcm16_signal_are_not_copied_to_float32(pcm_speech, small_blocks, monkeypatch):
    """Tone measures a long session a Praat block at a time; a block of a 16-bit signal goes to
    Praat as a 16-bit view, not as a float32 copy (at 50 minutes that copy was 40 MB, held
    beside Praat's own float64 samples): the traced peak is that of a float32 array's blocks,
    which are views, within a quarter of one block's float32 size."""
    monkeypatch.setattr(tone, "PRAAT_BLOCK_S", 20.0)
    y, signal = pcm_speech
    params = tone.ToneParams()
    hop = int(round(params.hop_s * SR))
    t = np.arange(len(signal) // hop + 1) * params.hop_s
    views, whole = _traced_peak(lambda: tone._praat_tracks(y, SR, t, hop, params))
    peak, parts = _traced_peak(lambda: tone._praat_tracks(signal, SR, t, hop, params))
    for a, b in zip(parts, whole):
        assert np.array_equal(a, b, equal_nan=True)
    block_float32 = int((20.0 + 2 * tone.PRAAT_MARGIN_S) * SR) * 4
    assert peak - views < block_float32 / 4, (
        f"{peak / MB:.1f} MB traced, {views / MB:.1f} MB with views; a float32 block is {block_float32 / MB:.1f} MB")
