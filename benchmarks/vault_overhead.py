"""What encryption at rest costs: analysis time of the sample with and without the vault.

    .venv/bin/python -m benchmarks.vault_overhead [--repeats 2]

Each run imports the bundled sample into a fresh temporary store and times ``analyze`` in its
own child process (so every run loads its models the same way). Runs alternate between an
encrypted store and a plaintext one (an internal benchmark-only mode, ``Store(_plaintext=True)``;
users always get the vault), and the script prints the median of each, the overhead, and the
time spent in the cryptography itself (decrypting and re-encrypting every file of the session).
Target: at most 5 % overhead.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analysis.pipeline import analyze
from capture.ingest import import_media
from capture.store import Store

ROOT = Path(__file__).resolve().parent.parent
# read when a model is looked up (in the child processes), not at import
os.environ.setdefault("PLAYBACK_MODEL_DIR", str(ROOT.parent / "shared" / "models"))
os.environ.setdefault("PLAYBACK_OFFLINE", "1")
PASSPHRASE = "benchmark passphrase (not a secret)"


def child(mode: str) -> None:
    """Import and analyse the sample once; print timings as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp, PASSPHRASE, from_env=False, _plaintext=(mode == "plaintext"))
        started = time.perf_counter()
        if mode == "vault":
            store.unlock()                     # scrypt: once per process, reported apart
        unlock_s = time.perf_counter() - started
        started = time.perf_counter()
        session_id = import_media(store, ROOT / "sample_data" / "session.mp4", "Alex,Sam")
        import_s = time.perf_counter() - started
        started = time.perf_counter()
        analyze(store, session_id)
        analyse_s = time.perf_counter() - started
        folder = Path(tmp) / "sessions" / session_id
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        started = time.perf_counter()
        total = 0
        for rel in files:                      # read (decrypt) and write back (encrypt) everything
            data = store.read_bytes(session_id, rel)
            store.write_bytes(session_id, rel, data)
            total += len(data)
        roundtrip_s = time.perf_counter() - started
    print(json.dumps({"mode": mode, "unlock_s": unlock_s, "import_s": import_s, "analyse_s": analyse_s,
                      "files": len(files), "bytes": total, "roundtrip_s": roundtrip_s}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=["vault", "plaintext"])
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    order = []
    for i in range(args.repeats):
        order += ["vault", "plaintext"] if i % 2 == 0 else ["plaintext", "vault"]
    runs: dict[str, list[dict]] = {"vault": [], "plaintext": []}
    for mode in order:
        out = subprocess.run([sys.executable, "-m", "benchmarks.vault_overhead", "--child", mode], capture_output=True,
                             text=True, check=True, cwd=ROOT).stdout.strip().splitlines()[-1]
        result = json.loads(out)
        runs[mode].append(result)
        print(f"  {mode:<10} analyse {result['analyse_s']:6.2f} s   import {result['import_s']:5.2f} s", flush=True)

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    vault_s, plain_s = median("vault", "analyse_s"), median("plaintext", "analyse_s")
    crypto = runs["vault"][0]
    print(f"sample analysis, median of {args.repeats} runs each ({os.cpu_count()} cores):")
    print(f"  without the vault: {plain_s:.2f} s")
    print(f"  with the vault:    {vault_s:.2f} s   overhead {100 * (vault_s / plain_s - 1):+.1f} % (target <= 5 %)")
    print(f"  import: {median('plaintext', 'import_s'):.2f} s plain, {median('vault', 'import_s'):.2f} s encrypted; "
          f"unlock (scrypt) {crypto['unlock_s']:.2f} s once per process")
    mb = crypto["bytes"] / 1e6
    print(f"  cryptography alone: decrypt + re-encrypt all {crypto['files']} files ({mb:.1f} MB) of the session "
          f"in {crypto['roundtrip_s'] * 1000:.0f} ms (plaintext store: "
          f"{median('plaintext', 'roundtrip_s') * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
