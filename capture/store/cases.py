"""Cases: the couple or group a session belongs to, with its people.

A case's id is random (``case-1a2b3c``) and is all the index shows; its name (how the therapist
knows the couple, e.g. "Alex & Sam") and its people's names are personal, so they are sealed
under the vault's master key (:meth:`Keys.seal`) and read only while the store is unlocked.
Sessions name their case by id (``SessionRow.case_id``).
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Callable

from capture.errors import PlaybackError
from capture.store.index import Index, SessionRow
from capture.store.keys import Keys, case_label


@dataclass(frozen=True)
class Case:
    case_id: str
    name: str
    people: tuple[str, ...]      # display names, in seat order (left to right) as first given
    created_utc: str             # ISO UTC time


class Cases:
    """The cases of the store indexed by ``index``, sealed with ``keys``; changes are audited
    with ``audit`` (:meth:`Store.audit`, ids only)."""

    def __init__(self, index: Index, keys: Keys, *, audit: Callable):
        self.index = index
        self.keys = keys
        self._audit = audit

    def _seal(self, case_id: str, name: str, people: list[str]) -> bytes:
        return self.keys.seal(case_label(case_id), json.dumps({"name": name, "people": people}).encode())

    def create(self, name: str, people: list[str]) -> Case:
        """A new case named ``name`` with ``people`` (display names); both are required."""
        name, people = _checked(name, people)
        case_id = "case-" + secrets.token_hex(3)
        self.index.insert_case(case_id, self._seal(case_id, name, people))
        self._audit("case", detail=f"create:{case_id}")
        return self.get(case_id)

    def update(self, case_id: str, *, name: str | None = None, people: list[str] | None = None) -> Case:
        """Rename a case or change its people (a person joining a group)."""
        case = self.get(case_id)
        name, people = _checked(name if name is not None else case.name,
                                people if people is not None else list(case.people))
        self.index.update_case(case_id, self._seal(case_id, name, people))
        self._audit("case", detail=f"update:{case_id}")
        return self.get(case_id)

    def all(self) -> list[Case]:
        """Every case, oldest first (needs the store unlocked)."""
        out = []
        for case_id, created, sealed in self.index.case_rows():
            details = json.loads(self.keys.unseal(case_label(case_id), sealed))
            out.append(Case(case_id, details["name"], tuple(details["people"]), created))
        return out

    def get(self, case_id: str) -> Case:
        """The case ``case_id``; a readable error when there is none."""
        for case in self.all():
            if case.case_id == case_id:
                return case
        raise PlaybackError(f"No case '{case_id}' in this store; run 'playback cases' to list them.")

    def sessions(self, case_id: str) -> list[SessionRow]:
        """The case's sessions, oldest first (the order trends are read in)."""
        return self.index.case_sessions(case_id)

    def assign(self, session_id: str, case_id: str | None) -> None:
        """Put a session in a case (None: take it out of its case)."""
        if case_id is not None:
            self.get(case_id)
        self.index.set_case(session_id, case_id)
        self._audit("case", session_id, detail=f"assign:{case_id or 'none'}")

    def delete(self, case_id: str) -> None:
        """Forget a case; its sessions stay, in no case (delete them one by one to destroy them)."""
        self.get(case_id)
        self.index.delete_case(case_id)
        self._audit("case", detail=f"delete:{case_id}")


def _checked(name: str, people: list[str]) -> tuple[str, list[str]]:
    name = " ".join(str(name).split())
    people = [" ".join(str(p).split()) for p in people if str(p).strip()]
    if not name:
        raise PlaybackError("A case needs a name (how you know the couple or group, e.g. 'Alex & Sam').")
    if not people:
        raise PlaybackError("A case needs its people: give their names, e.g. 'Alex,Sam'.")
    if len(set(p.casefold() for p in people)) < len(people):
        raise PlaybackError("Two people in a case have the same name; add an initial to tell them apart.")
    return name, people
