"""One hierarchy of errors users can read. The CLI and the app show ``str(error)``, never a traceback."""


class PlaybackError(Exception):
    """Base class: the message says what is wrong and what to do."""


class BadMediaError(PlaybackError):
    """A file is not usable media (not media, empty, truncated, over limits)."""


class SessionNotFoundError(PlaybackError):
    """No session with that id in the store."""


class ModelUnavailableError(PlaybackError):
    """A model file is missing and cannot be fetched."""


class ArtifactError(PlaybackError):
    """A stored artifact is missing or does not match its expected schema."""


class ConsentError(PlaybackError):
    """An action needs a participant's consent that was not given."""


class StoreLockedError(PlaybackError):
    """The store is locked: its passphrase has not been given (or it locked itself when idle)."""


class WrongPassphraseError(StoreLockedError):
    """The passphrase given does not open the vault (or too many wrong ones were tried)."""


class IntegrityError(ArtifactError):
    """An encrypted file failed authentication: truncated, modified, or its key was destroyed."""


class AuditError(PlaybackError):
    """The audit log's hash chain does not verify (an entry was edited, removed or cut)."""


class StoreIndexMissingError(PlaybackError):
    """The store's index (which holds the session keys) is missing while sessions exist."""


def one_line(exc: BaseException) -> str:
    """An unexpected exception as one readable line: its class name and message."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
