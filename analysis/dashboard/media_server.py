"""Recordings reach the browser by HTTP range requests, decrypted chunk by chunk.

One small HTTP server per dashboard process listens on 127.0.0.1 (an ephemeral port) and
serves ``/media/<token>`` for each recording an unlocked browser session has opened. The token
is random (256 bits) and stands for one session file of one unlocked store; it stops working
when that browser session locks. Each request reads only the bytes it asks for
(``Range: bytes=a-b``, answered ``206``) through :meth:`capture.store.Store.open_media`, so the
plaintext is never on disk and never whole in memory, and the video can seek anywhere in a
50-minute session at once.
"""
from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import streamlit as st

from capture.errors import PlaybackError
from capture.store import Store

PIECE_BYTES = 1 << 18            # bytes written to the socket at a time
RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
         ".mkv": "video/x-matroska", ".wav": "audio/wav", ".m4a": "audio/mp4", ".mp3": "audio/mpeg"}


@dataclass(frozen=True)
class Grant:
    """What a token opens: one file of one session of one unlocked store."""

    store: Store
    session_id: str
    rel: str

    @property
    def content_type(self) -> str:
        return next((t for suffix, t in TYPES.items() if self.rel.lower().endswith(suffix)), "application/octet-stream")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte (inclusive) asked for by a ``Range`` header on a file of ``size``
    bytes; the whole file without a header; None when the range cannot be satisfied."""
    if not header:
        return (0, size - 1) if size else None
    match = RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":                                   # the last N bytes
        first, last = max(0, size - int(last)), size - 1
    else:
        first, last = int(first), min(int(last), size - 1) if last else size - 1
    return (first, last) if first <= last < size else None


class MediaServer:
    """The process's media server: :meth:`grant` a session file, get a URL the video element
    can load; :meth:`revoke` the tokens of a browser session when it locks."""

    def __init__(self) -> None:
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:          # noqa: N802 (the http.server name)
                server._serve(self)

            def log_message(self, *args) -> None:   # no access log: paths carry tokens
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="playback-media", daemon=True).start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def grant(self, store: Store, session_id: str, rel: str) -> str:
        """A new token for ``rel`` of ``session_id`` in the unlocked ``store``; returns its URL."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._grants[token] = Grant(store, session_id, rel)
        return f"http://127.0.0.1:{self.port}/media/{token}"

    def revoke(self, urls: list[str]) -> None:
        """Stop serving the given URLs (a locked browser session's)."""
        with self._lock:
            for url in urls:
                self._grants.pop(url.rsplit("/", 1)[-1], None)

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        token = request.path.removeprefix("/media/")
        with self._lock:
            grant = self._grants.get(token) if request.path.startswith("/media/") else None
        if grant is None:
            request.send_error(404)
            return
        try:
            with grant.store.open_media(grant.session_id, grant.rel) as media:
                size = media.seek(0, 2)
                wanted = byte_range(request.headers.get("Range"), size)
                if wanted is None:
                    request.send_response(416)
                    request.send_header("Content-Range", f"bytes */{size}")
                    request.end_headers()
                    return
                first, last = wanted
                request.send_response(206 if request.headers.get("Range") else 200)
                request.send_header("Content-Type", grant.content_type)
                request.send_header("Accept-Ranges", "bytes")
                request.send_header("Content-Length", str(last - first + 1))
                request.send_header("Cache-Control", "no-store")
                if request.headers.get("Range"):
                    request.send_header("Content-Range", f"bytes {first}-{last}/{size}")
                request.end_headers()
                media.seek(first)
                left = last - first + 1
                while left > 0:
                    piece = media.read(min(PIECE_BYTES, left))
                    if not piece:
                        break
                    request.wfile.write(piece)
                    left -= len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass                                # the browser had enough (it seeks, or closed)
        except PlaybackError:
            request.send_error(410)             # locked, deleted or damaged meanwhile


# ----- in the dashboard: one server per process, URLs per browser session -------------------
_URLS = "media_urls"


@st.cache_resource(show_spinner=False)
def _server() -> MediaServer:
    return MediaServer()


def media_url(store: Store, session_id: str, rel: str) -> str:
    """The URL of ``rel`` for this browser session's video element (granted once per file)."""
    urls = st.session_state.setdefault(_URLS, {})
    key = f"{session_id}/{rel}"
    if key not in urls:
        urls[key] = _server().grant(store, session_id, rel)
    return urls[key]


def forget_media_urls() -> None:
    """Revoke every URL this browser session was granted (it is locking)."""
    urls = st.session_state.pop(_URLS, {})
    if urls:
        _server().revoke(list(urls.values()))
