"""The exact lock agrees with pyproject.toml's ranges, and is what this environment holds."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def locked() -> dict[str, list[tuple[Version, Marker | None]]]:
    """requirements.lock as ``{canonical name: [(version, marker or None), ...]}``."""
    entries: dict[str, list[tuple[Version, Marker | None]]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier  # exactly one clause: name==version
        assert specifier.operator == "==", f"not an exact pin: {line}"
        entries.setdefault(canonicalize_name(requirement.name), []).append(
            (Version(specifier.version), requirement.marker))
    return entries


def declared() -> list[Requirement]:
    """The direct dependencies of pyproject.toml, the test extra included."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [dep for group in project["optional-dependencies"].values() for dep in group]
    return [Requirement(dep) for dep in project["dependencies"] + extras]


def test_every_direct_dependency_is_locked_within_its_range():
    lock = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement.name} is in pyproject.toml but not in the lock: run make lock"
        for version, _marker in lock[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"the lock has {requirement.name}=={version}, outside pyproject.toml's {requirement}: run make lock")


def test_the_lock_pins_torch_and_torchaudio_to_a_pair_that_loads():
    """The pair that broke fresh installs (torchaudio 2.11.1 beside torch 2.11.0) cannot return."""
    lock = locked()
    assert [v for v, _ in lock["torch"]] == [Version("2.14.1")]
    assert [v for v, _ in lock["torchaudio"]] == [Version("2.11.1")]


def test_this_environment_is_the_lock():
    """Every locked package that applies here is installed at exactly the locked version."""
    wrong = []
    for name, entries in locked().items():
        for version, marker in entries:
            if marker is not None and not marker.evaluate():
                continue
            try:
                installed = Version(metadata.version(name))
            except metadata.PackageNotFoundError:
                wrong.append(f"{name} missing (locked {version})")
                continue
            if installed.public != version.public:
                wrong.append(f"{name} {installed} (locked {version})")
    assert not wrong, "the environment is not the lock: " + "; ".join(wrong)


def test_pip_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_webrtcvad_imports_with_the_locked_setuptools():
    """webrtcvad imports pkg_resources, which setuptools 82 removed (the lock caps it)."""
    result = subprocess.run([sys.executable, "-c", "import webrtcvad"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
