"""Figures by depth in a dialogue: does a system hold at turn 40 as it does at turn 5?

- windows: every metric of `metrics.METRICS`, per system, over the character turns of
  each window of 12 (1-12, 13-24, 25-36, 37-48, ...; only windows that hold turns), each
  with its cluster-bootstrap 95% interval (`metrics.summarize` on the window's rows, so
  a window's figure is what a whole eval of only those turns would say);
- curves: the repetition and persona metrics of `DEPTH_CURVES`, mean by turn index;
- the collapse turn of each system: the last turn of the first run of `COLLAPSE_TURNS`
  turns (turns t-5..t, pooled over the dialogues) whose near-copy share exceeds
  `COLLAPSE_SHARE`; None when no run does. Runs start at turn 1, so the earliest
  collapse turn is 6.

A window's turns are the dialogues' own turn indices: under a context budget the
early turns may be gone from a late turn's prompt (its meta says what it held), but the
turn keeps its index.

Non-goals: scoring turns (`metrics.turn_rows`), plotting (`depth_report.py`).
"""

from __future__ import annotations

from rolegen.evaluation.metrics import BY_NAME, curves, summarize

WINDOW = 12
DEPTH_CURVES = (
    "near_copy", "seq_rep4", "crep4", "opener_reuse", "filler_tic", "identity_echo",
    "wrong_identity", "identity_recall", "persona_top1", "acts_for_user",
)  # fmt: skip
COLLAPSE_TURNS = 6
COLLAPSE_SHARE = 0.5


def window_of(turn: int, width: int = WINDOW) -> str:
    """The window a turn falls in, as its label: turn 13 -> '13-24'."""
    start = (turn - 1) // width * width + 1
    return f"{start}-{start + width - 1}"


def by_window(rows: list[dict], resamples: int = 1000, seed: int = 0, width: int = WINDOW) -> dict:
    """window label -> system -> metric -> {value, ci95, n} (and the window's turns and
    dialogues per system), windows in turn order."""
    windows: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["turn"]):
        windows.setdefault(window_of(r["turn"], width), []).append(r)
    return {
        label: summarize(window_rows, None, resamples=resamples, seed=seed)["systems"]
        for label, window_rows in windows.items()
    }


def collapse_turn(
    rows: list[dict], turns: int = COLLAPSE_TURNS, share: float = COLLAPSE_SHARE
) -> int | None:
    """The collapse turn of one system's rows (see the module docstring)."""
    metric = BY_NAME["near_copy"]
    per_turn: dict[int, list[float]] = {}
    for r in rows:
        if r.get(metric.field) is not None and metric.applies(r):
            per_turn.setdefault(r["turn"], []).append(r[metric.field])
    for t in sorted(per_turn):
        if t < turns:
            continue
        run = [v for k in range(t - turns + 1, t + 1) for v in per_turn.get(k, ())]
        if run and sum(run) / len(run) > share:
            return t
    return None


def figures(rows: list[dict], resamples: int = 1000, seed: int = 0) -> dict:
    """results.json's `depth`: the windows, the curves and each system's collapse turn."""
    systems = list(dict.fromkeys(r["system"] for r in rows))
    return {
        "window": WINDOW,
        "windows": by_window(rows, resamples, seed),
        "curves": curves(rows, DEPTH_CURVES),
        "collapse": {
            "turns": COLLAPSE_TURNS,
            "share": COLLAPSE_SHARE,
            "turn": {s: collapse_turn([r for r in rows if r["system"] == s]) for s in systems},
        },
    }
