"""A random speech table for timing checks and benchmarks (no audio)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_session(*, duration_s: float = 3000.0, n_speakers: int = 4, seed: int = 0) -> pd.DataFrame:
    """A random speech table (start_s, end_s, participant_id) for timing checks, no audio.

    Turns of 1-15 s with gaps of -0.5..1.5 s, short backchannels and occasional overlapping
    starts; about ``duration_s`` seconds long.
    """
    rng = np.random.default_rng(seed)
    rows, t, cur = [], 0.0, 0
    while t < duration_s:
        dur = float(rng.uniform(1.0, 15.0))
        # fragment the turn with short pauses
        u = t
        while u < t + dur:
            seg = float(rng.uniform(0.5, 3.0))
            rows.append((u, min(u + seg, t + dur), f"P{cur}"))
            u += seg + float(rng.uniform(0.05, 0.4))
        for _ in range(int(rng.integers(0, 3))):
            who = int(rng.integers(n_speakers))
            if who != cur:
                bs = t + float(rng.uniform(0, dur))
                rows.append((bs, bs + float(rng.uniform(0.2, 2.0)), f"P{who}"))
        nxt = int(rng.integers(n_speakers - 1))
        cur = nxt if nxt < cur else nxt + 1
        t = t + dur + float(rng.uniform(-0.5, 1.5))
    return pd.DataFrame(rows, columns=["start_s", "end_s", "participant_id"])
