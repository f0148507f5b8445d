"""Metrics of the dynamics stage: turn changes, who interrupts whom, and the per-participant
table. Interruptions are counted by the events' structured ``outcome`` column, never by label."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.core import events as contract
from analysis.stages.dynamics.decisions import Turn
from analysis.stages.dynamics.model import PARTICIPANT_COLUMNS, TURN_CHANGE_COLUMNS


def turn_changes(turns: Sequence[Turn]) -> pd.DataFrame:
    """One row per change of turn holder (:data:`TURN_CHANGE_COLUMNS`): latency_s = next turn's
    start minus previous turn's end, s (negative when they overlap)."""
    rows = [(a.participant_id, b.participant_id, a.end_s, b.start_s, b.start_s - a.end_s)
            for a, b in zip(turns[:-1], turns[1:]) if a.participant_id != b.participant_id]
    return pd.DataFrame(rows, columns=TURN_CHANGE_COLUMNS).astype(
        {"prev_turn_end_s": float, "next_turn_start_s": float, "latency_s": float})


def _matrix(inter: pd.DataFrame, pids: list[str]) -> pd.DataFrame:
    """Counts of ``inter`` rows, interrupter (rows) x interrupted (columns), every pid present."""
    m = pd.DataFrame(0, index=pd.Index(pids, name="interrupter"), columns=pd.Index(pids, name="interrupted"), dtype=int)
    for (a, b), c in inter.groupby(["participant_id", "target_participant_id"]).size().items():
        m.loc[a, b] = int(c)
    return m


def interruption_matrices(events: pd.DataFrame, pids: list[str]) -> dict[str, pd.DataFrame]:
    """Who interrupts whom: "all" outcomes and one matrix per outcome of
    :data:`analysis.core.events.INTERRUPTION_OUTCOMES` (counts)."""
    inter = events[events["kind"] == "interruption"]
    matrices = {"all": _matrix(inter, pids)}
    for outcome in contract.INTERRUPTION_OUTCOMES:
        matrices[outcome] = _matrix(inter[inter["outcome"] == outcome], pids)
    return matrices


def floor_time(turns: Sequence[Turn], pids: list[str]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Seconds each person held the floor (a turn's start until it ends or the next turn
    starts) and each person's turn lengths, s."""
    floor = {pid: 0.0 for pid in pids}
    turn_len: dict[str, list[float]] = {pid: [] for pid in pids}
    for i, t in enumerate(turns):
        end = min(t.end_s, turns[i + 1].start_s) if i + 1 < len(turns) else t.end_s
        floor[t.participant_id] += max(0.0, end - t.start_s)
        turn_len[t.participant_id].append(t.end_s - t.start_s)
    return floor, turn_len


def participants(pids: list[str], name: Mapping[str, str], raw: dict, turns: Sequence[Turn],
                 overlap_s: Mapping[str, float], events: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
    """One row per participant (:data:`PARTICIPANT_COLUMNS`): talk and floor seconds and
    shares (0-1), turn count and lengths (s), interruptions made/received by outcome,
    backchannels, overlap seconds and mean response latency (s, NaN if never)."""
    floor, turn_len = floor_time(turns, pids)
    talk = {pid: float(np.sum(raw[pid][1] - raw[pid][0])) for pid in pids}
    tot_talk, tot_floor = sum(talk.values()), sum(floor.values())
    inter = events[events["kind"] == "interruption"]
    bc = events[events["kind"] == "backchannel"]
    rows = []
    for pid in pids:
        lat = changes.loc[changes["to_participant_id"] == pid, "latency_s"]
        made = inter[inter["participant_id"] == pid]
        rows.append(dict(
            participant_id=pid, name=name[pid], talk_s=talk[pid],
            talk_share=talk[pid] / tot_talk if tot_talk > 0 else 0.0,
            floor_s=floor[pid], floor_share=floor[pid] / tot_floor if tot_floor > 0 else 0.0,
            turn_count=len(turn_len[pid]),
            mean_turn_s=float(np.mean(turn_len[pid])) if turn_len[pid] else 0.0,
            longest_turn_s=float(np.max(turn_len[pid])) if turn_len[pid] else 0.0,
            interruptions_made=len(made),
            interruptions_received=int((inter["target_participant_id"] == pid).sum()),
            successful_interruptions_made=int((made["outcome"] == "successful").sum()),
            unsuccessful_interruptions_made=int((made["outcome"] == "unsuccessful").sum()),
            backchannels_given=int((bc["participant_id"] == pid).sum()),
            overlap_s=overlap_s[pid],
            mean_latency_s=float(lat.mean()) if len(lat) else np.nan,
        ))
    return pd.DataFrame(rows, columns=PARTICIPANT_COLUMNS)
