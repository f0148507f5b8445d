"""Timing check: ``python -m analysis.stages.dynamics``."""
from __future__ import annotations

import time

from analysis.stages.dynamics.stage import analyse_dynamics
from analysis.stages.dynamics.synthetic import synthetic_session

sess = synthetic_session()
t0 = time.perf_counter()
res = analyse_dynamics(sess, session_end_s=3000.0)
dt = time.perf_counter() - t0
print(f"50-minute 4-person session: {len(sess)} segments -> {len(res.events)} events in {dt * 1000:.0f} ms")
print(res.counts())
print(res.participants.round(2).to_string(index=False))
print(res.matrix)
