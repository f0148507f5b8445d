"""The layers run one way (contracts in pyproject.toml, ``[tool.importlinter]``): the command line
and dashboard pages on top, then review/export, the pipeline, the stages, the shared core, and
``capture`` at the bottom; no import cycles between sibling modules. Checked with import-linter."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*LINT, "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_every_layer_contract_is_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout, result.stdout


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    for name in ("analysis", "capture"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_an_upward_import_breaks_the_layer_test(tmp_path):
    copy = _copy(tmp_path)
    with open(copy / "capture" / "media.py", "a") as f:
        f.write("\nfrom analysis.pipeline import analyze  # noqa: E402,F401  (upward: capture -> analysis)\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "capture.media -> analysis.pipeline" in result.stdout, result.stdout


def test_an_import_cycle_breaks_the_layer_test(tmp_path):
    copy = _copy(tmp_path)
    with open(copy / "analysis" / "stages" / "faces.py", "a") as f:
        f.write("\nfrom analysis.stages import tone  # noqa: E402,F401\n")
    with open(copy / "analysis" / "stages" / "tone.py", "a") as f:
        f.write("\nfrom analysis.stages import faces  # noqa: E402,F401\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout, result.stdout
