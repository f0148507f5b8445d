"""What a newcomer downloads for the lock, per platform, read from PyPI's index (no install).

    .venv/bin/python scripts/lock_download_size.py [requirements.lock]

For each platform (Python 3.11): the total size of the wheels pip would pick for the locked
versions (GB), the share of torch/torchaudio and of the CUDA libraries, and which locked
packages have no wheel there and are built from source. Needs the network; not a test.
"""
from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

from packaging import tags
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename


def linux(machine: str) -> list[str]:
    """Platform tags a glibc 2.36 Linux accepts, most specific first."""
    return ([f"manylinux_2_{minor}_{machine}" for minor in range(36, 4, -1)]
            + [f"manylinux2014_{machine}", f"manylinux2010_{machine}", f"manylinux1_{machine}", f"linux_{machine}"])


PLATFORMS = {
    "Linux x86_64": (dict(sys_platform="linux", platform_system="Linux", platform_machine="x86_64",
                          os_name="posix"), linux("x86_64")),
    "macOS 14 arm64": (dict(sys_platform="darwin", platform_system="Darwin", platform_machine="arm64",
                            os_name="posix"), list(tags.mac_platforms((14, 0), "arm64"))),
    "Windows x86_64": (dict(sys_platform="win32", platform_system="Windows", platform_machine="AMD64",
                            os_name="nt"), ["win_amd64"]),
}
CUDA_PREFIXES = ("nvidia", "cuda", "triton")


def index_files(name: str) -> list[dict]:
    """The files PyPI lists for ``name`` (simple API, JSON form)."""
    request = urllib.request.Request(f"https://pypi.org/simple/{name}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["files"]


def main(lock_path: str = "requirements.lock") -> None:
    lock = [Requirement(line.strip()) for line in Path(lock_path).read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    files = {canonicalize_name(r.name): index_files(canonicalize_name(r.name)) for r in lock}
    for platform, (markers, platform_tags) in PLATFORMS.items():
        environment = dict(python_version="3.11", python_full_version="3.11.7", implementation_name="cpython",
                           platform_python_implementation="CPython", **markers)
        accepted = [*tags.cpython_tags((3, 11), platforms=platform_tags),
                    *tags.compatible_tags((3, 11), "cp311", platforms=platform_tags)]
        rank = {tag: i for i, tag in enumerate(accepted)}
        total = torch = cuda = 0
        from_source = []
        for requirement in lock:
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            version = next(iter(requirement.specifier)).version
            best, sdist = None, 0
            for entry in files[canonicalize_name(requirement.name)]:
                filename, size = entry["filename"], entry.get("size", 0)
                if filename.endswith(".whl"):
                    _, wheel_version, _, wheel_tags = parse_wheel_filename(filename)
                    score = min((rank[t] for t in wheel_tags if t in rank), default=None)
                    if str(wheel_version) == version and score is not None and (best is None or score < best[0]):
                        best = (score, size)
                elif filename.endswith((".tar.gz", ".zip")) and f"-{version}." in filename:
                    sdist = size
            size = best[1] if best else sdist
            if best is None:
                from_source.append(f"{requirement.name}=={version}")
            total += size
            cuda += size if requirement.name.startswith(CUDA_PREFIXES) else 0
            torch += size if requirement.name in ("torch", "torchaudio") else 0
        print(f"{platform}: {total / 1e9:.2f} GB to download (torch + torchaudio {torch / 1e9:.2f} GB, "
              f"CUDA libraries {cuda / 1e9:.2f} GB); built from source: {', '.join(from_source) or 'nothing'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
