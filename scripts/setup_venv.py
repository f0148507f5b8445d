#!/usr/bin/env python3
"""Create the project's virtual environment from the exact lock (``make setup`` runs this).

Every failure ends in one line on stderr that says what to do, never a traceback from inside
pip or a package: wrong Python, no ``venv`` module, too little disk, no C compiler for
webrtcvad, no network, a locked package with no build for this machine. pip's own output goes
to ``<venv>/install.log``.

It runs with whatever ``python3`` the newcomer has, so that it can say when that one is the
wrong version: standard library only, and syntax old Pythons can parse.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

SUPPORTED = ((3, 11), (3, 12))
# Measured on Linux x86_64 (README, "Installing"): the venv holds about 6.5 GB and pip keeps
# about 4 GB of wheels in its cache while installing.
NEEDED_FREE_GB = 11
PIP = "pip==26.3"  # the installer is pinned like everything it installs


def fail(message):
    """Print ``message`` as the one line a newcomer reads, and stop."""
    sys.stderr.write("setup: " + message + "\n")
    sys.exit(1)


def version_of(python):
    """``(major, minor)`` of the interpreter at ``python``, or None when it does not run."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, check=True,
        ).stdout
        major, minor = out.split()
        return int(major), int(minor)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return None


def choose_python(requested, explicit):
    """The interpreter to build the venv with: ``requested`` if supported, else python3.12/3.11."""
    supported = " or ".join("%d.%d" % v for v in SUPPORTED)
    found = version_of(requested)
    if found in SUPPORTED:
        return requested
    if not explicit:
        for name in ("python3.12", "python3.11"):
            path = shutil.which(name)
            if path and version_of(path) in SUPPORTED:
                return path
    seen = "%d.%d" % found if found else "nothing that runs"
    fail("Playback needs Python %s, and %s is %s: install Python 3.12 (Debian/Ubuntu: apt-get install "
         "python3.12 python3.12-venv; macOS: brew install python@3.12), or run make PYTHON=/path/to/python3.12"
         % (supported, requested, seen))


def check_disk(where):
    """Stop early when the disk holding ``where`` cannot take the install."""
    free_gb = shutil.disk_usage(where).free / 1e9
    if free_gb < NEEDED_FREE_GB:
        fail("the install needs about %d GB free on the disk holding %s and %.1f GB are free: free some "
             "space (or set PIP_CACHE_DIR to a larger disk) and run make again" % (NEEDED_FREE_GB, where, free_gb))


def check_compiler(python):
    """webrtcvad (Resemblyzer's voice activity detector) ships as source: it needs cc and Python.h."""
    if sys.platform == "win32":
        return
    include = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
        stdout=subprocess.PIPE, universal_newlines=True,
    ).stdout.strip()
    compiler = os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    has_headers = os.path.exists(os.path.join(include, "Python.h"))
    if compiler and shutil.which(compiler.split()[0]) and has_headers:
        return
    missing = "a C compiler" if not compiler else "the Python headers (Python.h)"
    fail("webrtcvad, which Resemblyzer needs, is compiled on install and %s is missing: install it "
         "(Debian/Ubuntu: apt-get install build-essential python3-dev; macOS: xcode-select --install) "
         "and run make again" % missing)


# What pip says in its log -> the one line the newcomer reads.
KNOWN_PIP_FAILURES = (
    (r"No space left on device", "the disk filled up while installing: free some space and run make again"),
    (r"Failed to establish a new connection|Temporary failure in name resolution|"
     r"Network is unreachable|Read timed out|ProxyError",
     "the package index could not be reached: check the network connection (or the proxy settings "
     "HTTPS_PROXY / PIP_INDEX_URL) and run make again"),
    (r"Python\.h: No such file|error: command '[^']*(gcc|cc|clang)[^']*' failed|Unable to find vcvarsall",
     "a package could not be compiled: install a C compiler and the Python headers "
     "(Debian/Ubuntu: apt-get install build-essential python3-dev; macOS: xcode-select --install)"),
    (r"No matching distribution found for (\S+)|Could not find a version that satisfies the requirement (\S+)",
     "the locked package {0} has no build for this Python and machine: use Python 3.11 or 3.12 on Linux, "
     "macOS or Windows (x86_64 or arm64), or see README \"Installing\""),
)


def pip(python, args, log_path, what):
    """Run ``python -m pip args``, appending its output to ``log_path``; one line on failure."""
    with open(log_path, "a") as log:
        log.write("\n$ pip %s\n" % " ".join(args))
        log.flush()
        code = subprocess.call([python, "-m", "pip"] + args, stdout=log, stderr=subprocess.STDOUT)
    if code == 0:
        return
    with open(log_path) as log:
        text = log.read()
    for pattern, message in KNOWN_PIP_FAILURES:
        match = re.search(pattern, text)
        if match:
            name = next((g for g in match.groups() if g and "/" not in g), "") if match.groups() else ""
            fail(message.format(name) + " (details: %s)" % log_path)
    errors = [line for line in text.splitlines() if line.startswith("ERROR:")]
    last = errors[-1][len("ERROR:"):].strip() if errors else "exit code %d" % code
    fail("%s failed: %s (details: %s)" % (what, last, log_path))


def locked_line(lock_path, name):
    """The lock's ``name==version`` requirement for ``name`` (markers dropped)."""
    with open(lock_path) as lock:
        for line in lock:
            if line.lower().startswith(name + "=="):
                return line.split(";")[0].strip()
    fail("%s is not in %s: regenerate the lock with make lock" % (name, lock_path))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--explicit-python", action="store_true",
                        help="the user chose --python: do not look for another interpreter")
    parser.add_argument("--venv", default=".venv")
    parser.add_argument("--lock", default="requirements.lock")
    args = parser.parse_args()

    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    python = choose_python(args.python, args.explicit_python)
    check_disk(project)
    check_compiler(python)

    venv = os.path.join(project, args.venv)
    if subprocess.call([python, "-m", "venv", venv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        fail("could not create %s with %s: install the venv module (Debian/Ubuntu: apt-get install "
             "python3-venv, or python3.12-venv for that version) and run make again" % (venv, python))
    venv_python = os.path.join(venv, "Scripts" if sys.platform == "win32" else "bin", "python")
    log_path = os.path.join(venv, "install.log")
    open(log_path, "w").close()

    lock_path = os.path.join(project, args.lock)
    with open(lock_path) as lock:
        count = sum(1 for line in lock if re.match(r"^[A-Za-z0-9]", line))
    print("Installing the %d locked packages into %s (a few GB on first install; pip's log: %s)"
          % (count, args.venv, log_path), flush=True)
    quiet = ["--disable-pip-version-check", "--no-input"]
    install = quiet + ["install", "--progress-bar", "off"]
    pip(venv_python, install + ["--upgrade", PIP], log_path, "upgrading pip")
    # Source packages (webrtcvad, Playback itself) build with the locked setuptools, not
    # whatever release a build environment would fetch today.
    pip(venv_python, install + ["--no-deps", locked_line(lock_path, "setuptools")],
        log_path, "installing the locked setuptools")
    # --no-deps: the lock already lists every package; nothing may float in beside it.
    build = ["--no-deps", "--no-build-isolation"]
    pip(venv_python, install + build + ["-r", lock_path], log_path, "installing the lock")
    pip(venv_python, install + build + ["-e", project], log_path, "installing Playback itself")
    pip(venv_python, quiet + ["check"], log_path, "pip check (the installed packages disagree)")
    print("Installed. The environment is %s" % args.venv)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        fail("interrupted; run make again to finish the install")
