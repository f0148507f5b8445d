"""scripts/setup_venv.py: each way the set-up fails on a newcomer's machine is one line to act on."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "setup_venv.py"


@pytest.fixture(scope="module")
def setup_venv():
    spec = importlib.util.spec_from_file_location("setup_venv", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_line_failure(capsys, call) -> str:
    with pytest.raises(SystemExit) as stop:
        call()
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("setup: "), err
    assert "Traceback" not in err
    return err


def test_wrong_python_says_which_to_install(tmp_path):
    """A real run of the script with an unsupported interpreter (here: one that is not Python)."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--python", shutil.which("true"), "--explicit-python",
         "--venv", str(tmp_path / "venv")],
        capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Python 3.11 or 3.12" in result.stderr
    assert "make PYTHON=" in result.stderr and not (tmp_path / "venv").exists()


def test_supported_python_is_accepted(setup_venv):
    assert setup_venv.choose_python(sys.executable, explicit=True) == sys.executable


def test_too_little_disk(setup_venv, capsys, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(setup_venv.shutil, "disk_usage", lambda _: usage(100e9, 98e9, 2e9))
    err = one_line_failure(capsys, lambda: setup_venv.check_disk("/somewhere"))
    assert "2.0 GB are free" in err and "free some space" in err


def test_no_compiler_for_webrtcvad(setup_venv, capsys, monkeypatch):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(setup_venv.shutil, "which", lambda _name: None)
    err = one_line_failure(capsys, lambda: setup_venv.check_compiler(sys.executable))
    assert "webrtcvad" in err and "build-essential" in err and "C compiler" in err


@pytest.mark.parametrize("pip_says, expected", [
    ("OSError: [Errno 28] No space left on device", "disk filled up"),
    ("Failed to establish a new connection: [Errno -3] Temporary failure in name resolution",
     "could not be reached"),
    ("ERROR: No matching distribution found for mediapipe==1.2.3", "mediapipe==1.2.3 has no build"),
    ("ERROR: something nobody foresaw", "something nobody foresaw"),
])
def test_pip_failures_become_one_line(setup_venv, capsys, tmp_path, pip_says, expected):
    """A stand-in interpreter prints what pip prints on that failure and exits 1."""
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!/bin/sh\necho '{pip_says}'\nexit 1\n")
    fake_python.chmod(0o755)
    log = tmp_path / "install.log"
    err = one_line_failure(capsys, lambda: setup_venv.pip(str(fake_python), ["install", "x"], str(log), "installing"))
    assert expected in err and str(log) in err
