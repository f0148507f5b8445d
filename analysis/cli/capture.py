"""Command-line side of capture: ``import`` (with tracks and consent), ``record``, ``withdraw``,
``consent``, ``devices`` and ``recover``. Registered by :mod:`analysis.cli`.

    playback import MEDIA --participants "Alex,Sam" [--track Alex=alex.wav --track Sam=sam.wav]
                          [--consent "Sam=record_audio,analyse_voice" ...] [--consent-all SCOPES]
    playback import --track Alex=alex.wav --track Sam=sam.wav --participants "Alex,Sam"
    playback record --participants "Alex,Sam" [--camera N ...] [--mic [NAME=]DEVICE ...]
                    [--simulate [--video FILE] [--audio [NAME=]FILE ...]] [--consent NAME=SCOPES ...]
                    [--enrol] [--duration S] [--no-live-analysis]
    playback withdraw SESSION_ID --participant NAME [--yes]
    playback consent SESSION_ID          show who agreed to what
    playback consent SESSION_ID --give "Sam=take_home_copy" [--revoke NAME=SCOPES]   a later change
    playback devices                     list microphones and cameras
    playback recover                     assemble recordings interrupted by a crash (also automatic)

The session id is alone on the last stdout line of ``import`` and ``record``.
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from analysis.live import LiveAnalyser, stop_recording
from capture.consent import (
    CONSENT_TEXT,
    CONSENT_TEXT_VERSION,
    SCOPE_LABELS,
    SCOPES,
    change_scopes,
    check_change,
    read_consent,
    require_consent,
    spoken_statement,
)
from capture.errors import ConsentError, PlaybackError
from capture.ingest import (
    LAYOUTS,
    SAMPLE_VIDEO,
    consent_records,
    import_media,
    parse_participants,
    participant_by_name,
)
from capture.live.devices import (
    Camera,
    FileCamera,
    Microphone,
    WavMicrophone,
    list_devices,
    parse_mic,
)
from capture.live.recorder import Recorder, record_clip
from capture.live.recovery import recover_interrupted
from capture.withdrawal import withdraw


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def consent_from_args(args, people: list[dict]) -> dict | None:
    """``--consent-all SCOPES`` and ``--consent NAME=SCOPES`` as {name: scopes}; None if neither."""
    given: dict[str, str] = {}
    if getattr(args, "consent_all", None):
        given.update({p["name"]: args.consent_all for p in people})
    for spec in getattr(args, "consent", None) or []:
        name, sep, scopes = spec.partition("=")
        if not sep:
            raise PlaybackError(f"Write --consent as NAME=SCOPES, e.g. --consent \"Sam=record_audio,analyse_voice\" (got {spec!r}).")
        given[name.strip()] = scopes
    return given or None


def add_import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("media", type=Path, nargs="?", default=None, help="video or audio file (mp4, mov, mkv, webm, wav, m4a)")
    p.add_argument("--participants", default=None,
                   help='names, left to right on screen; a role after a colon: "Alex,Sam,Dr Lee:therapist"'
                        " (default with --case: the case's people)")
    p.add_argument("--case", default=None, metavar="CASE_ID", help="the couple or group it belongs to (playback cases)")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="how people appear: seated left to right in a room (seats), a video call's gallery "
                        "(tiles, row by row), or found from the faces (auto)")
    p.add_argument("--track", action="append", default=[], metavar="[NAME=]FILE",
                   help="a separate audio file per participant or microphone (repeat); makes a multi-track session")
    p.add_argument("--consent", action="append", default=[], metavar="NAME=SCOPES",
                   help="scopes one person agreed to (comma-separated, 'all' or 'none'); default: attested by you")
    p.add_argument("--consent-all", metavar="SCOPES", help="the same scopes for everyone")


def participants_text(args, store) -> str:
    """``--participants``, else the people of ``--case``; one of them is needed."""
    if args.participants:
        return args.participants
    if getattr(args, "case", None):
        return ",".join(store.cases.get(args.case).people)
    raise PlaybackError('Say who is in the recording: --participants "Alex,Sam" (left to right on screen), '
                        "or --case CASE_ID to use the case's people.")


def cmd_import(args, store) -> int:
    people = parse_participants(participants_text(args, store))
    consent = consent_from_args(args, people)
    session_id = import_media(store, args.media, people, tracks=args.track, consent=consent, case_id=args.case,
                              layout=args.layout)
    what = args.media.name if args.media else f"{len(args.track)} tracks"
    if consent is None:
        records = (read_consent(store, session_id) or {}).values()
        attested = [s for s in SCOPES if any(r.allows(s) for r in records)]     # what the file holds
        print(f"Consent recorded as attested by you (the therapist) for {', '.join(p['name'] for p in people)}: "
              f"{', '.join(s.replace('_', ' ') for s in attested)}. Use --consent NAME=SCOPES to record "
              "what each person agreed to.", file=sys.stderr)
    print(f"Imported {what} as session:", file=sys.stderr)
    print(session_id)
    return 0


# ----- record ----------------------------------------------------------------------------------
def _ask_consent(people: list[dict]) -> dict:
    """Ask each person, scope by scope (nothing pre-ticked), on the terminal."""
    print(f"\nConsent (text version {CONSENT_TEXT_VERSION}) — read this to everyone present:\n", file=sys.stderr)
    print(CONSENT_TEXT, file=sys.stderr)
    given = {}
    for p in people:
        print(f"\n{p['name']} ({p['role']}), answer for yourself:", file=sys.stderr)
        chosen = []
        for scope in SCOPES:
            answer = input(f"  {SCOPE_LABELS[scope]}? [y/N] ").strip().lower()
            if answer in ("y", "yes"):
                chosen.append(scope)
        given[p["name"]] = ",".join(chosen) or "none"
    return given


def _record_statements(people, records, mic_factory, seconds: float) -> dict[str, bytes]:
    """Each person who agreed to voice analysis reads their statement; returns WAV clips.
    Runs only after everyone's consent passed the gate."""
    clips = {}
    for p in people:
        if not records[p["id"]].allows("analyse_voice"):
            continue
        print(f"\n{p['name']}, please read aloud: \"{spoken_statement(p['name'])}\"", file=sys.stderr)
        if _interactive():
            input("  Press Enter, then speak... ")
        clips[p["id"]] = record_clip(mic_factory(), seconds)
        print(f"  Thank you ({seconds:.0f} s kept as {p['name']}'s voice sample).", file=sys.stderr)
    return clips


def build_devices(args, people):
    """(mics, cameras, track_owner, mic_factory) from ``record``'s arguments."""
    def owned(spec: str):
        name, sep, rest = spec.partition("=")
        if sep and any(name.strip().casefold() == p["name"].casefold() for p in people):
            return participant_by_name(people, name)["id"], rest
        return None, spec

    mics, cameras, owner = [], [], {}
    if args.simulate:
        audio = args.audio or [str(args.video or SAMPLE_VIDEO)]
        for i, spec in enumerate(audio):
            pid, path = owned(spec)
            owner[i] = pid
            mics.append(WavMicrophone(path, loop=True))
        if not args.no_video:
            cameras.append(FileCamera(args.video or SAMPLE_VIDEO, fps=args.fps, loop=True))
        first = audio[0]

        def mic_factory():
            return WavMicrophone(owned(first)[1])
    else:
        for i, spec in enumerate(args.mic or ["default"]):
            pid, dev = owned(spec)
            owner[i] = pid
            mics.append(Microphone(None if dev == "default" else parse_mic(dev)))
        if not args.no_video:
            cameras.extend(Camera(int(c), fps=args.fps) for c in (args.camera or ["0"]))
        first = (args.mic or ["default"])[0]

        def mic_factory():
            dev = owned(first)[1]
            return Microphone(None if dev == "default" else parse_mic(dev))
    return mics, cameras, owner, mic_factory


def cmd_record(args, store) -> int:
    people = parse_participants(args.participants)
    given = consent_from_args(args, people)
    interactive_consent = given is None and _interactive()
    if given is None and not interactive_consent:
        raise ConsentError("Recording needs everyone's consent first: run 'playback record' in a terminal to ask "
                           "each person, or give --consent NAME=SCOPES for each (e.g. --consent \"Alex=all\").")
    if interactive_consent:
        given = _ask_consent(people)
    method = "spoken+checkbox" if args.enrol else ("terminal" if interactive_consent else "cli")
    records = {r.participant_id: r for r in consent_records(people, given, method=method)}
    mics, cameras, owner, mic_factory = build_devices(args, people)
    # the gate (C1) before any device is opened, statements included
    require_consent(people, records, audio=bool(mics), video=bool(cameras))
    clips = _record_statements(people, records, mic_factory, args.enrol_seconds) if args.enrol else {}
    recorder = Recorder(store, people, records, mics=mics, cameras=cameras, segment_s=args.segment_s,
                        track_owner=owner, enrolment=clips)
    stop_now = {"flag": False}

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    session_id = recorder.start()
    live = None if args.no_live_analysis else LiveAnalyser(store, session_id).start()
    devices = ", ".join(recorder.state.opened)
    print(f"\u25cf Recording session {session_id} from {devices}  (Ctrl+C stops)", file=sys.stderr, flush=True)

    def tick(elapsed: float) -> None:
        if sys.stderr.isatty():
            print(f"\r\u25cf REC {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}", end="", file=sys.stderr, flush=True)

    try:
        recorder.wait(args.duration, tick=tick)
    except KeyboardInterrupt:
        stop_now["flag"] = True
    if sys.stderr.isatty():
        print(file=sys.stderr)
    try:
        manifest, report = stop_recording(recorder, live)
    except PlaybackError as exc:        # the recording is assembled and kept; only its analysis failed
        print(f"playback: the recording is kept, but its analysis failed: {exc} Run 'playback analyze "
              f"{session_id}' to try again.", file=sys.stderr)
        print(session_id)
        return 1
    if manifest is None:
        print(f"Recording stopped: a participant withdrew; session {session_id} is erased.", file=sys.stderr)
        return 3
    if recorder.state.error:
        print(f"playback: recording stopped early: {recorder.state.error}", file=sys.stderr)
    if report is not None:
        stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in report["stages"].items())
        print(f"Analysed {report['delay_s']:.1f} s after Stop (finishing the live analysis: {stages}).",
              file=sys.stderr)
    print(f"Recorded {manifest['duration_s']:.1f} s as session:", file=sys.stderr)
    print(session_id)
    return 0


def cmd_withdraw(args, store) -> int:
    if not args.yes:
        if not _interactive():
            raise PlaybackError("Withdrawal erases the whole session (recording and analysis); add --yes to confirm.")
        answer = input(f"{args.participant} withdraws: erase session {args.session_id} and stop any recording? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing changed.", file=sys.stderr)
            return 1
    pid = withdraw(store, args.session_id, args.participant)
    print(f"{args.participant} ({pid}) withdrew: session {args.session_id} was stopped and erased.", file=sys.stderr)
    return 0


def cmd_consent(args, store) -> int:
    manifest = store.manifest(args.session_id)
    changes: dict[str, dict[str, list[str]]] = {}
    for verb in ("give", "revoke"):
        for spec in getattr(args, verb) or []:
            name, _, scopes = spec.partition("=")
            if not name.strip() or not scopes.strip():
                raise PlaybackError(f"Write --{verb} as NAME=SCOPES, e.g. --{verb} \"Sam=take_home_copy\" (got {spec!r}).")
            changes.setdefault(name.strip(), {"give": [], "revoke": []})[verb] += scopes.split(",")
    for name, change in changes.items():             # every person and scope checked before anything is written
        check_change(store, args.session_id, name, give=change["give"], revoke=change["revoke"])
    removed = False
    for name, change in changes.items():
        _, dropped = change_scopes(store, args.session_id, name, give=change["give"], revoke=change["revoke"])
        removed |= dropped
        print(f"Recorded for {name}: " + "; ".join(f"{verb} {', '.join(s.strip() for s in scopes)}"
                                                  for verb, scopes in change.items() if scopes) + ".", file=sys.stderr)
    if removed:
        print(f"The session's analysis was removed, since it used what was revoked: run 'playback analyze "
              f"{args.session_id}' to analyse it again without it.", file=sys.stderr)
    records = read_consent(store, args.session_id)
    if records is None:
        print("This session predates consent records (treated as attested by the therapist).")
        return 0
    short = {"record_audio": "audio", "record_video": "video", "analyse_voice": "voice", "analyse_face": "face",
             "take_home_copy": "take-home", "supervision_training": "supervision"}
    print(f"{'participant':<16}{'role':<14}" + "".join(f"{short[s]:<12}" for s in SCOPES) + "method / when")
    for p in manifest["participants"]:
        r = records.get(p["id"])
        if r is None:
            print(f"{p['name']:<16}{p.get('role', 'client'):<14}(no consent record)")
            continue
        marks = "".join(f"{'yes' if r.allows(s) else '-':<12}" for s in SCOPES)
        print(f"{p['name']:<16}{p.get('role', 'client'):<14}{marks}{r.method}, {r.collected_utc} "
              f"by {r.collected_by}{', voice sample kept' if r.enrolment else ''}")
    return 0


def cmd_devices(args, store) -> int:
    found = list_devices()
    print("Microphones: " + (", ".join(found["microphones"]) or "none found"))
    print("Cameras:     " + (", ".join(found["cameras"]) or "none found"))
    for problem in found["problems"]:
        print(f"Note: {problem}")
    return 0


def cmd_recover(args, store) -> int:
    recovered = recover_interrupted(store)
    print(f"Recovered {len(recovered)} session(s) left unfinished by a process that stopped." if recovered
          else "Nothing to recover.",
          file=sys.stderr)
    for session_id in recovered:
        print(session_id)
    for folder in store.orphan_folders():
        print(f"Note: {folder} has no entry in {store.root / 'index.sqlite'}, so its key is not here and it "
              "cannot be read; restore the index from a backup that lists it, or delete the folder.", file=sys.stderr)
    return 0


def add_commands(add, open_store) -> None:
    """Register the capture commands; ``open_store(args)`` gives an unlocked store."""

    def with_store(func):
        return lambda args: func(args, open_store(args))

    p = add("record", with_store(cmd_record), "record a session live, after everyone present has consented")
    p.add_argument("--participants", required=True, help='names, left to right: "Alex,Sam" (roles: "Dr Lee:therapist")')
    p.add_argument("--camera", action="append", metavar="N", help="camera index (repeat for several; default 0)")
    p.add_argument("--mic", action="append", metavar="[NAME=]DEVICE",
                   help="microphone name or index (repeat: one track per microphone; NAME= says whose it is)")
    p.add_argument("--no-video", action="store_true", help="audio only")
    p.add_argument("--simulate", action="store_true", help="record from files instead of devices (demos, tests)")
    p.add_argument("--video", type=Path, help="with --simulate: the video played as a camera (default: the sample)")
    p.add_argument("--audio", action="append", metavar="[NAME=]FILE", help="with --simulate: an audio file per microphone")
    p.add_argument("--consent", action="append", default=[], metavar="NAME=SCOPES",
                   help="what one person agreed to, e.g. \"Sam=record_audio,record_video,analyse_voice\" (or 'all')")
    p.add_argument("--consent-all", metavar="SCOPES", help="the same scopes for everyone")
    p.add_argument("--enrol", action="store_true",
                   help="each person who agreed to voice analysis reads their consent statement (kept as voice sample)")
    p.add_argument("--enrol-seconds", type=float, default=4.0)
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl+C)")
    p.add_argument("--segment-s", type=float, default=3.0, help="seconds per sealed segment (crash safety)")
    p.add_argument("--fps", type=float, default=15.0, help="camera frames per second kept")
    p.add_argument("--no-live-analysis", action="store_true",
                   help="only record (analyse later with 'playback analyze'); by default the session is analysed "
                        "while it is recorded and finished at Stop")
    p = add("withdraw", with_store(cmd_withdraw), "a participant withdraws: stop recording and erase the session")
    p.add_argument("session_id")
    p.add_argument("--participant", required=True, help="name or id of the person withdrawing")
    p.add_argument("--yes", action="store_true", help="do not ask to confirm")
    p = add("consent", with_store(cmd_consent), "show who agreed to what in a session, or record a later change")
    p.add_argument("session_id")
    p.add_argument("--give", action="append", default=[], metavar="NAME=SCOPES",
                   help="a person now agrees to more, e.g. \"Sam=take_home_copy\" (recording scopes cannot change)")
    p.add_argument("--revoke", action="append", default=[], metavar="NAME=SCOPES",
                   help="a person no longer agrees to a scope, e.g. \"Alex=supervision_training\"")
    add("devices", lambda args: cmd_devices(args, None), "list microphones and cameras")
    add("recover", with_store(cmd_recover), "assemble recordings interrupted by a crash")
