"""RTTM, the speaker-turn text format of diarization tools: the one reader and the one writer.

A line is ``SPEAKER <uri> 1 <start> <duration> <NA> <NA> <speaker> <confidence> <NA>`` (seconds,
space separated). Playback writes three decimals, speaker names with spaces as ``_``, and
``<NA>`` where there is no confidence.

Written here rather than with ``pyannote.core.Annotation.write_rttm`` because that one would not
keep the exports byte for byte: it drops turns shorter than a microsecond, orders tied turns by
end time and track name rather than as given, refuses names with spaces instead of writing
``_``, and has no confidence column (the pyannote backend's RTTM carries one).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["uri", "start_s", "end_s", "speaker"]


def read_rttm(path: Path | str) -> pd.DataFrame:
    """``SPEAKER`` lines of an RTTM file -> ``uri, start_s, end_s, speaker`` (file order; other
    line types are skipped). A ``SPEAKER`` line with fewer than 8 fields raises ``ValueError``."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] != "SPEAKER":
            continue
        if len(parts) < 8:
            raise ValueError(f"{path}:{number}: an RTTM SPEAKER line has at least 8 fields, this one {len(parts)}.")
        start, duration = float(parts[3]), float(parts[4])
        rows.append((parts[1], start, start + duration, parts[7]))
    return pd.DataFrame(rows, columns=COLUMNS)


def to_rttm(segments: pd.DataFrame, uri: str, *, label: str = "participant_id", confidence: str | None = None,
            sort: bool = True) -> str:
    """RTTM text of ``segments`` (``start_s, end_s`` and the ``label`` column; spaces in labels
    become ``_``), one line per row, ordered by ``start_s`` unless ``sort=False`` (then as
    given). ``confidence``: a column written (three decimals) in the confidence field, else
    ``<NA>``. Empty table: empty text; otherwise every line ends with a newline."""
    rows = segments.sort_values("start_s") if sort else segments
    labels = rows[label].tolist()
    scores = rows[confidence].tolist() if confidence is not None else [None] * len(rows)
    lines = [
        f"SPEAKER {uri} 1 {r.start_s:.3f} {r.end_s - r.start_s:.3f} <NA> <NA> "
        f"{str(name).replace(' ', '_')} {'<NA>' if score is None else f'{score:.3f}'} <NA>"
        for r, name, score in zip(rows.itertuples(), labels, scores)
    ]
    return "\n".join(lines) + ("\n" if lines else "")


__all__ = ["read_rttm", "to_rttm"]
