"""The vault's cryptography: keys from a passphrase, wrapped session keys, chunked AES-256-GCM.

Key hierarchy::

    passphrase --scrypt(salt, N=2**17, r=8, p=1)--> master key (never stored)
    master key --AES-256-GCM wrap--> one random 256-bit data key per session (index.sqlite)
    data key --HKDF-SHA256(file salt)--> one key per file --AES-256-GCM--> chunks

File format (every session file in an encrypted store)::

    header   b"PBVAULT\\x01" | chunk size (u32, big endian) | file salt (16 random bytes)
    chunks   AES-256-GCM(file key, nonce = chunk number (11 bytes) | final flag (1 byte),
                         associated data = header | file path inside the session)

Each chunk is authenticated, the last one carries the *final* flag, and the header and the
file's path are bound to every chunk: a truncated, extended, edited, reordered or moved file
fails to decrypt (:class:`IntegrityError`). Destroying a session's wrapped data key makes all
its files unreadable (crypto-erase). Changing the passphrase re-wraps data keys only.
"""
from __future__ import annotations

import io
import os
import struct
from typing import BinaryIO, Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from capture.errors import IntegrityError, WrongPassphraseError

MAGIC = b"PBVAULT\x01"
CHUNK_BYTES = 1 << 20            # plaintext bytes per chunk
TAG_BYTES = 16
HEADER = struct.Struct(">8sI16s")
HEADER_BYTES = HEADER.size       # 28
KEY_BYTES = 32

# scrypt cost (OWASP minimum for scrypt: N=2**17, r=8, p=1; about 0.4 s and 128 MB).
# The parameters are stored with the vault, so a stronger default applies to new vaults only.
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1

_CHECK_PLAINTEXT = b"playback vault check v1"


# ----- keys ------------------------------------------------------------------------------------
def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def kdf_params() -> dict:
    return {"kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": os.urandom(16).hex()}


def derive_master(passphrase: str, params: dict) -> bytes:
    if params.get("kdf") != "scrypt":
        raise WrongPassphraseError(f"Unknown key derivation {params.get('kdf')!r} in this vault.")
    return Scrypt(salt=bytes.fromhex(params["salt"]), length=KEY_BYTES, n=int(params["n"]), r=int(params["r"]),
                  p=int(params["p"])).derive(passphrase.encode("utf-8"))


def wrap(master: bytes, key: bytes, label: str) -> bytes:
    """Encrypt ``key`` under ``master``; ``label`` (e.g. the session id) is authenticated."""
    nonce = os.urandom(12)
    return nonce + AESGCM(master).encrypt(nonce, key, b"playback-wrap|" + label.encode())


def unwrap(master: bytes, blob: bytes, label: str) -> bytes:
    try:
        return AESGCM(master).decrypt(blob[:12], blob[12:], b"playback-wrap|" + label.encode())
    except (InvalidTag, ValueError):
        raise WrongPassphraseError("The passphrase does not open this vault.") from None


def check_blob(master: bytes) -> bytes:
    return wrap(master, _CHECK_PLAINTEXT, "vault-check")


def passphrase_matches(master: bytes, blob: bytes) -> bool:
    try:
        return unwrap(master, blob, "vault-check") == _CHECK_PLAINTEXT
    except WrongPassphraseError:
        return False


# ----- files -----------------------------------------------------------------------------------
def _file_cipher(data_key: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt,
                       info=b"playback file v1").derive(data_key))


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def is_encrypted(head: bytes) -> bool:
    return head[:len(MAGIC)] == MAGIC


def encrypt_stream(data_key: bytes, rel: str, chunks: Iterable[bytes], out: BinaryIO,
                   chunk_bytes: int = CHUNK_BYTES) -> None:
    """Encrypt the byte blocks of ``chunks`` (any sizes) into ``out`` in the vault format."""
    salt = os.urandom(16)
    header = HEADER.pack(MAGIC, chunk_bytes, salt)
    aad = header + rel.encode()
    cipher = _file_cipher(data_key, salt)
    out.write(header)
    pending = bytearray()
    index = 0
    for block in chunks:
        pending += block
        while len(pending) > chunk_bytes:      # keep at least one byte back: the final chunk
            piece = bytes(pending[:chunk_bytes])
            del pending[:chunk_bytes]
            out.write(cipher.encrypt(_nonce(index, False), piece, aad))
            index += 1
    out.write(cipher.encrypt(_nonce(index, True), bytes(pending), aad))


def encrypt_bytes(data_key: bytes, rel: str, data: bytes) -> bytes:
    out = io.BytesIO()
    view = memoryview(data)
    encrypt_stream(data_key, rel, (view[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)), out)
    return out.getvalue()


def _damaged(rel: str, why: str) -> IntegrityError:
    return IntegrityError(
        f"The stored file '{rel}' failed its integrity check ({why}): it was truncated or modified, "
        "or its session key was destroyed. Restore it from a backup or re-import the recording."
    )


def iter_decrypt(data_key: bytes, rel: str, fh: BinaryIO) -> Iterator[bytes]:
    """Yield the plaintext chunks of a vault file opened as ``fh``; raise :class:`IntegrityError`
    on any truncation or modification (nothing unauthenticated is ever yielded)."""
    header = fh.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES:
        raise _damaged(rel, "header cut short")
    magic, chunk_bytes, salt = HEADER.unpack(header)
    if magic != MAGIC:
        raise _damaged(rel, "not a Playback vault file")
    if not 0 < chunk_bytes <= 1 << 26:
        raise _damaged(rel, "bad chunk size")
    aad = header + rel.encode()
    cipher = _file_cipher(data_key, salt)
    size = chunk_bytes + TAG_BYTES
    index = 0
    current = fh.read(size)
    while True:
        following = fh.read(size) if len(current) == size else b""
        final = not following
        if len(current) < TAG_BYTES:
            raise _damaged(rel, "chunk cut short")
        try:
            yield cipher.decrypt(_nonce(index, final), current, aad)
        except InvalidTag:
            raise _damaged(rel, f"chunk {index} does not authenticate") from None
        if final:
            return
        current, index = following, index + 1


class DecryptingReader(io.RawIOBase):
    """A read-only, seekable file object over a vault file's plaintext, decrypting one chunk at a
    time (at most one plaintext chunk, :data:`CHUNK_BYTES`, in memory): for decoders that seek
    (a video) and for serving byte ranges. The last chunk is authenticated when it is opened, so
    a truncated or extended file fails at once; every chunk read is authenticated with its
    number, so an edited, reordered or moved chunk raises :class:`IntegrityError` when read."""

    def __init__(self, data_key: bytes, rel: str, fh: BinaryIO):
        super().__init__()
        self._fh, self._rel = fh, rel
        header = fh.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES:
            raise _damaged(rel, "header cut short")
        magic, self._chunk_bytes, salt = HEADER.unpack(header)
        if magic != MAGIC or not 0 < self._chunk_bytes <= 1 << 26:
            raise _damaged(rel, "not a Playback vault file")
        self._aad = header + rel.encode()
        self._cipher = _file_cipher(data_key, salt)
        body = fh.seek(0, io.SEEK_END) - HEADER_BYTES
        stored = self._chunk_bytes + TAG_BYTES
        self._chunks = max(1, -(-body // stored))
        last = body - (self._chunks - 1) * stored
        if last < TAG_BYTES:
            raise _damaged(rel, "chunk cut short")
        self.size = (self._chunks - 1) * self._chunk_bytes + last - TAG_BYTES      # plaintext bytes
        self._pos = 0
        self._cached: tuple[int, bytes] = (-1, b"")
        self._chunk(self._chunks - 1)                                               # length is genuine

    def _chunk(self, index: int) -> bytes:
        if self._cached[0] != index:
            stored = self._chunk_bytes + TAG_BYTES
            self._fh.seek(HEADER_BYTES + index * stored)
            blob = self._fh.read(stored)
            try:
                plain = self._cipher.decrypt(_nonce(index, index == self._chunks - 1), blob, self._aad)
            except InvalidTag:
                raise _damaged(self._rel, f"chunk {index} does not authenticate") from None
            self._cached = (index, plain)
        return self._cached[1]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self.size:
            index, inside = divmod(self._pos, self._chunk_bytes)
            piece = self._chunk(index)[inside:inside + len(view) - done]
            view[done:done + len(piece)] = piece
            done += len(piece)
            self._pos += len(piece)
        return done

    def close(self) -> None:
        self._cached = (-1, b"")
        self._fh.close()
        super().close()


def decrypt_bytes(data_key: bytes, rel: str, blob: bytes) -> bytes:
    return b"".join(iter_decrypt(data_key, rel, io.BytesIO(blob)))


__all__ = ["MAGIC", "CHUNK_BYTES", "new_key", "kdf_params", "derive_master", "wrap", "unwrap", "check_blob",
           "passphrase_matches", "encrypt_stream", "encrypt_bytes", "iter_decrypt", "decrypt_bytes", "is_encrypted",
           "DecryptingReader"]
