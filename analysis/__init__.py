"""Analysis stages over a stored session: speakers, dynamics, tone, faces, events, metrics."""
import os

# pyannote.audio sends usage metrics unless told not to; set before any pyannote import.
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
# MediaPipe / TensorFlow Lite log lines are noise to a therapist.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
