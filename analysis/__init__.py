"""Analysis stages over a stored session: speakers, dynamics, tone, faces, events, metrics."""
import os

# pyannote.audio sends usage metrics unless told not to; set before any pyannote import.
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
# MediaPipe / TensorFlow Lite log lines are noise to a therapist.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# webrtcvad (Resemblyzer's) imports pkg_resources, which warns on every start; the lock keeps a
# setuptools that still has it (see pyproject.toml [tool.uv]). The warning says nothing to a user.
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
