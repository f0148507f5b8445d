"""The ``playback`` command line.

    playback import MEDIA --participants "Alex,Sam" [--store DIR]   prints the new session id last
    playback record --participants "Alex,Sam" [--camera N] [--mic NAME] [--simulate]   consent first
    playback withdraw SESSION_ID --participant NAME | consent SESSION_ID | devices | recover
    playback analyze SESSION_ID [SESSION_ID ...] [--workers N]      runs every stage (skips unchanged)
    playback export SESSION_ID --format rttm|csv|eaf --out PATH
    playback sessions                                                 lists sessions
    playback cases | case new NAME --people "Alex,Sam" | case assign SESSION_ID CASE_ID
    playback dashboard                                                starts the review dashboard
    playback demo                                                     imports, analyses and shows the sample
    playback delete SESSION_ID | sweep | audit verify | passphrase | retention SESSION_ID --until DATE

The store is encrypted: commands that read sessions ask for the passphrase on the terminal
(or read PLAYBACK_PASSPHRASE); see analysis/cli/vault.py.

Errors are one readable line on stderr and exit code 2; never a traceback.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

import analysis  # noqa: F401  (turns pyannote telemetry off before anything imports it)
from analysis.cli.capture import add_commands as add_capture_commands
from analysis.cli.capture import add_import_arguments
from analysis.cli.capture import cmd_import as import_command
from analysis.cli.vault import add_commands, open_store
from analysis.executor import executor_from_environment
from analysis.export import export, write_export
from analysis.pipeline import analyze
from capture.errors import PlaybackError, one_line
from capture.ingest import SAMPLE_VIDEO, import_media
from capture.live.recovery import recover_interrupted
from capture.media import sha256_file
from capture.store import Store

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PARTICIPANTS = "Alex,Sam"
DASHBOARD_PORT = 8501


def _store(args, *, unlock: bool = True) -> Store:
    store = open_store(args.store, unlock=unlock)
    if unlock:
        _recover(store)
    return store


def _recover(store: Store) -> None:
    """Recovery on start (R2): recordings left by a crashed process are assembled, never dropped."""
    for session_id in recover_interrupted(store):
        status = store.session_row(session_id).status
        print(f"Recovered session {session_id}, left unfinished by a process that stopped (status: {status}).",
              file=sys.stderr)


def cmd_import(args) -> int:
    return import_command(args, _store(args))


def _tqdm_hook():
    bars: dict[str, tqdm] = {}

    def hook(step: str, *, completed: int, total: int) -> None:
        bar = bars.get(step)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[step] = tqdm(total=total, desc=f"{step:<12}", unit="step", file=sys.stderr, leave=True)
        bar.total = max(total, 1)
        bar.update(completed - bar.n)  # tqdm redraws at most every 0.1 s

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return hook, close


def cmd_analyze(args) -> int:
    if len(args.session_ids) > 1:
        return analyze_many(_store(args), args.session_ids, args.workers)
    session_id = args.session_ids[0]
    hook, close = _tqdm_hook()
    try:
        records = analyze(_store(args), session_id, hook=hook, force=args.force)
    finally:
        close()
    for record in records:
        state = "skipped (unchanged)" if record["this_run"] == "skipped" else f"{record['seconds']:.1f} s"
        if record.get("repaired"):
            state += f", re-run because {', '.join(record['repaired'])} failed its integrity check"
        print(f"  {record['stage']:<12} {state}", file=sys.stderr)
    print(f"Analysed session {session_id}.", file=sys.stderr)
    return 0


def analyze_many(store: Store, session_ids: list[str], workers: int | None) -> int:
    """Several sessions at once: a local process pool, or the Dask cluster named by
    PLAYBACK_DASK_SCHEDULER (analysis/executor.py)."""
    outcomes = executor_from_environment(workers).analyse(store, session_ids)
    for outcome in outcomes:
        state = f"analysed in {outcome.seconds:.0f} s" if outcome.ok else f"failed: {outcome.message}"
        print(f"  {outcome.session_id}  {state}", file=sys.stderr)
    return 0 if all(o.ok for o in outcomes) else 2


def cmd_export(args) -> int:
    store = _store(args)
    text = export(store, args.session_id, args.format)
    write_export(args.out, text)
    store.audit("export", args.session_id, detail=args.format)
    print(f"Wrote {args.format.upper()} to {args.out}", file=sys.stderr)
    return 0


def cmd_sessions(args) -> int:
    store = _store(args, unlock=False)
    rows = store.list_sessions()
    if not rows:
        print(f"No sessions yet in {store.root}. Import one with: playback import FILE --participants \"A,B\"")
        return 0
    print(f"{'session':<18}{'created (UTC)':<28}{'status':<12}{'duration':>9}  {'kept until':<12}case")
    for row in rows:
        duration = f"{row.duration_s:.0f} s" if row.duration_s else "-"
        print(f"{row.session_id:<18}{row.created_utc:<28}{row.status:<12}{duration:>9}  "
              f"{row.retention_until or '-':<12}{row.case_id or '-'}")
    return 0


def cmd_cases(args) -> int:
    store = _store(args)
    cases = store.cases.all()
    if not cases:
        print('No cases yet. Make one with: playback case new "Alex & Sam" --people "Alex,Sam"')
        return 0
    for case in cases:
        sessions = store.cases.sessions(case.case_id)
        print(f"{case.case_id}  {case.name}  ({', '.join(case.people)})  {len(sessions)} session(s)")
    return 0


def cmd_case(args) -> int:
    store = _store(args)
    if args.action == "new":
        if not args.people:
            raise PlaybackError('Give the case\'s people: playback case new NAME --people "Alex,Sam".')
        case = store.cases.create(args.name, args.people.split(","))
        print(f"Made case {case.name} ({', '.join(case.people)}); import into it with --case {case.case_id}:",
              file=sys.stderr)
        print(case.case_id)
        return 0
    store.cases.assign(args.name, args.case_id)
    print(f"Session {args.name} is now in case {args.case_id}." if args.case_id else
          f"Session {args.name} is now in no case.", file=sys.stderr)
    return 0


def dashboard_command(store_root: Path, port: int = DASHBOARD_PORT) -> list[str]:
    """The Streamlit command line: loopback only, no usage statistics, XSRF protection on."""
    return [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.enableXsrfProtection", "true",
        "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
        "--server.fileWatcherType", "none",          # an installed app watches no source files
        "--", "--store", str(store_root),
    ]


def cmd_dashboard(args) -> int:
    store = _store(args, unlock=False)      # the dashboard asks for the passphrase itself
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", args.port)) == 0:
            raise PlaybackError(f"Port {args.port} is already in use (another dashboard?); "
                                "stop it or choose another with --port N.")
    print(f"Playback dashboard: http://127.0.0.1:{args.port}  (Ctrl+C to stop)", flush=True)
    env = {**{k: v for k, v in os.environ.items() if k != "PLAYBACK_PASSPHRASE"},  # asked in the browser
           "PLAYBACK_STORE": str(store.root), "PYANNOTE_METRICS_ENABLED": "0"}
    server = subprocess.Popen(dashboard_command(store.root, args.port), env=env)

    def stop_server(signum, _frame):
        """Stopping ``playback dashboard`` stops the server too (it holds decrypted data)."""
        server.terminate()
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)):
        signal.signal(signum, stop_server)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def cmd_demo(args) -> int:
    store = _store(args)
    if not SAMPLE_VIDEO.is_file():
        raise PlaybackError(f"The bundled sample {SAMPLE_VIDEO} is missing; run 'python sample_data/generate.py'.")
    session_id = _find_sample_session(store) or import_media(store, SAMPLE_VIDEO, SAMPLE_PARTICIPANTS)
    print(f"Sample session: {session_id}", file=sys.stderr)
    hook, close = _tqdm_hook()
    try:
        analyze(store, session_id, hook=hook)
    finally:
        close()
    if args.no_dashboard:
        print(session_id)
        return 0
    return cmd_dashboard(args)


def _find_sample_session(store: Store) -> str | None:
    digest = sha256_file(SAMPLE_VIDEO)
    for row in store.list_sessions():
        try:
            if store.manifest(row.session_id)["media"]["sha256"]["original"] == digest:
                return row.session_id
        except (PlaybackError, KeyError):
            continue
    return None


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error convention: one line on stderr, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help').\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="playback", description="Review consented couples and group sessions.")
    parser.add_argument("--store", type=Path, default=None,
                        help="store folder (default: $PLAYBACK_STORE or the per-user data folder)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, func, help_):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--store", type=Path, default=argparse.SUPPRESS, help="store folder")
        p.set_defaults(func=func)
        return p

    p = add("import", cmd_import, "import a recording (or per-person audio tracks) as a new session")
    add_import_arguments(p)
    add_capture_commands(add, _store)
    p = add("analyze", cmd_analyze, "run every analysis stage (of several sessions at once, in parallel)")
    p.add_argument("session_ids", nargs="+", metavar="SESSION_ID")
    p.add_argument("--force", action="store_true", help="re-run stages even if unchanged (one session)")
    p.add_argument("--workers", type=int, default=None, help="local worker processes for several sessions (default 2)")
    p = add("export", cmd_export, "export speaker turns (rttm), all events (csv) or an ELAN file (eaf)")
    p.add_argument("session_id")
    p.add_argument("--format", choices=["rttm", "csv", "eaf"], required=True)
    p.add_argument("--out", type=Path, required=True)
    add("sessions", cmd_sessions, "list sessions")
    add("cases", cmd_cases, "list cases (couples and groups) and how many sessions each has")
    p = add("case", cmd_case, "make a case, or put a session in one")
    p.add_argument("action", choices=["new", "assign"])
    p.add_argument("name", metavar="NAME|SESSION_ID", help="the new case's name, or the session to assign")
    p.add_argument("case_id", nargs="?", default=None, help="(assign) the case to put the session in")
    p.add_argument("--people", default=None, help='(new) the case\'s people, left to right: "Alex,Sam"')
    p = add("dashboard", cmd_dashboard, "start the review dashboard on 127.0.0.1")
    p.add_argument("--port", type=int, default=DASHBOARD_PORT)
    p = add("demo", cmd_demo, "import and analyse the bundled sample, then start the dashboard")
    p.add_argument("--port", type=int, default=DASHBOARD_PORT)
    p.add_argument("--no-dashboard", action="store_true", help="stop after the analysis")
    add_commands(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PlaybackError as exc:
        print(f"playback: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("playback: interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (the last guard: never a traceback; PLAYBACK_DEBUG=1 shows it)
        if os.environ.get("PLAYBACK_DEBUG"):
            raise
        print(f"playback: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
