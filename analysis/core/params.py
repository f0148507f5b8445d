"""What each stage parameter means, read from the parameter classes themselves.

Every stage's ``Params`` is a frozen dataclass whose fields are documented where they are
defined: an attribute docstring under the field, or a ``#`` comment on its line (continued on
the lines below it). :func:`describe` reads that text from the source, so a threshold's meaning
is written once and the dashboard shows exactly that, with the unit its name carries
(``_s`` seconds, ``_db`` decibels, ``_hz`` hertz, ``_st``/``_semitones`` semitones).
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize
from functools import lru_cache

UNITS = (("_semitones", "semitones"), ("_st", "semitones"), ("_db", "dB"), ("_hz", "Hz"), ("_s", "s"),
         ("_frames", "frames"), ("_percentile", "percentile"), ("_share", "share (0-1)"))


@dataclasses.dataclass(frozen=True)
class ParamDoc:
    """One documented field: dotted ``name`` (nested params joined by dots), ``value``, ``unit``
    (from the name, "" when unitless) and ``meaning`` (the field's own documentation)."""

    name: str
    value: object
    unit: str
    meaning: str


def unit_of(name: str) -> str:
    """The unit a field's name carries (``gap_s`` -> "s"), or ""."""
    return next((unit for suffix, unit in UNITS if name.endswith(suffix)), "")


@lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """``field name -> documentation`` of a dataclass, from its source (attribute docstrings
    first, else the comment on the field's line and the comment-only lines right below it)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = (tok.start[1], tok.string.lstrip("#").strip())
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.add(tok.start[0])
    body = ast.parse(source).body[0].body
    docs = {}
    for i, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        after = body[i + 1] if i + 1 < len(body) else None
        if isinstance(after, ast.Expr) and isinstance(getattr(after, "value", None), ast.Constant) \
                and isinstance(after.value.value, str):
            docs[node.target.id] = " ".join(after.value.value.split())
            continue
        # the comment on the field's line, continued by comment-only lines in the same column
        # (a comment starting elsewhere belongs to what follows it)
        parts, line = [], node.end_lineno
        if line in comments:
            column = comments[line][0]
            parts.append(comments[line][1])
            line += 1
            while line in comments and line not in code_lines and comments[line][0] == column:
                parts.append(comments[line][1])
                line += 1
        docs[node.target.id] = " ".join(parts)
    return docs


def describe(params: object, prefix: str = "") -> list[ParamDoc]:
    """Every field of a parameter dataclass (nested ones flattened, ``overlap.onset``) with
    its value, unit and meaning."""
    docs = field_docs(type(params))
    rows = []
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(describe(value, f"{prefix}{f.name}."))
        else:
            rows.append(ParamDoc(prefix + f.name, value, unit_of(f.name), docs.get(f.name, "")))
    return rows


def describe_recorded(cls: type, recorded: dict, prefix: str = "") -> list[ParamDoc]:
    """Like :func:`describe`, for the values a run recorded (``run.json``'s ``params``, a
    dict); fields the run did not record are left out, recorded values are shown as recorded."""
    docs = field_docs(cls)
    types = {f.name: f for f in dataclasses.fields(cls)}
    rows = []
    for name, value in recorded.items():
        f = types.get(name)
        nested = f is not None and dataclasses.is_dataclass(f.default)
        if nested and isinstance(value, dict):
            rows.extend(describe_recorded(type(f.default), value, f"{prefix}{name}."))
        else:
            rows.append(ParamDoc(prefix + name, value, unit_of(name), docs.get(name, "")))
    return rows
