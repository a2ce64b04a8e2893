"""The report's section on depth, from results.json's `depth` (depth.py): each system's
collapse turn; with turns in more than one window, a table per depth metric (systems by
window, value and 95% interval) and report-depth.png: each depth metric by turn index
per system, with each window's mean and interval drawn as a band across the window.

Markdown and HTML are returned as lists of lines for report.py to place; what comes
from the data (system labels) goes through the escaping function report.py passes.

Non-goals: computing the figures (`depth.py`), the rest of the report (`report.py`).
"""

from __future__ import annotations

import html
import io

from rolegen.evaluation.depth import DEPTH_CURVES
from rolegen.evaluation.metrics import BY_NAME

PNG = "report-depth.png"


def _cell(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "–"
    lo, hi = entry.get("ci95") or (None, None)
    interval = f" [{lo:.3f}, {hi:.3f}]" if lo is not None else ""
    return f"{entry['value']:.3f}{interval}"


def _collapse_text(depth: dict) -> str:
    c = depth["collapse"]
    return (
        f"Collapse turn: the first turn at which a system's near-copy share over the last "
        f"{c['turns']} turns (pooled over its dialogues) exceeds {c['share']}; none: it never does."
    )


def tables(depth: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per depth metric with a figure in some window: systems by
    window. Empty with fewer than two windows (the eval's main table says it all)."""
    windows = depth.get("windows") or {}
    if len(windows) < 2:
        return []
    systems = list(dict.fromkeys(s for per in windows.values() for s in per))
    out = []
    for name in DEPTH_CURVES:
        body = [[s, *(_cell(windows[w].get(s, {}).get(name)) for w in windows)] for s in systems]
        if all(c == "–" for row in body for c in row[1:]):
            continue
        m = BY_NAME[name]
        title = m.label + {"lower": " (↓)", "higher": " (↑)"}.get(m.better, "")
        out.append((title, ["system", *(f"turns {w}" for w in windows)], body))
    return out


def plot(depth: dict) -> bytes | None:
    """report-depth.png (None: matplotlib missing, or fewer than two windows)."""
    windows = depth.get("windows") or {}
    if len(windows) < 2:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    # a window's band ends at the last turn scored (the last window may be short)
    last = max(int(t) for per in depth["curves"].values() for pts in per.values() for t in pts)
    spans = {w: (int(w.split("-")[0]), min(int(w.split("-")[1]), last)) for w in windows}
    rows = -(-len(DEPTH_CURVES) // 4)
    fig, axes = plt.subplots(rows, 4, figsize=(20, 3.7 * rows), squeeze=False)
    for ax in axes.flat[len(DEPTH_CURVES) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, DEPTH_CURVES):
        for system, per in depth["curves"].items():
            points = per.get(name)
            if not points:
                continue
            turns = sorted(points, key=int)
            (line,) = ax.plot(
                [int(t) for t in turns], [points[t] for t in turns], lw=0.8, marker=".",
                label=system,
            )  # fmt: skip
            for w, (a, b) in spans.items():
                entry = windows[w].get(system, {}).get(name) or {}
                if entry.get("value") is None:
                    continue
                ax.hlines(entry["value"], a, b, colors=line.get_color(), lw=2)
                if entry.get("ci95"):
                    lo, hi = entry["ci95"]
                    ax.fill_between([a, b], lo, hi, color=line.get_color(), alpha=0.12)
            collapse = depth["collapse"]["turn"].get(system)
            if name == "near_copy" and collapse is not None:
                ax.axvline(collapse, color=line.get_color(), ls="--", lw=1)
        for a, _ in list(spans.values())[1:]:
            ax.axvline(a - 0.5, color="gray", ls=":", lw=0.8)
        ax.set_title(BY_NAME[name].label, fontsize=10)
        ax.set_xlabel("character turn")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("By depth: per turn (thin), per window with 95% interval (band)", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def markdown(depth: dict | None, esc, esc_cell, png: bool) -> list[str]:
    """The section's markdown lines (`esc`/`esc_cell`: report.py's escaping of text and
    of a table cell); `png`: report-depth.png was written."""
    if not depth:
        return []
    md = ["", "## By depth", "", esc(_collapse_text(depth)), "", "| system | collapse turn |"]
    md.append("|---|---|")
    for system, turn in depth["collapse"]["turn"].items():
        md.append(f"| {esc_cell(system)} | {'none' if turn is None else turn} |")
    for title, head, body in tables(depth):
        md += ["", f"### {esc(title)}", "", "| " + " | ".join(esc_cell(h) for h in head) + " |"]
        md.append("|" + "---|" * len(head))
        md += ["| " + " | ".join(esc_cell(c) for c in row) + " |" for row in body]
    if png:
        md += ["", f"![by depth]({PNG})"]
    return md


def html_parts(depth: dict | None, png: bytes | None) -> list[str]:
    """The section's HTML (text escaped here), the figure inlined."""
    if not depth:
        return []

    def table(head: list[str], body: list[list[str]]) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body
        )
        return f"<table><tr>{th}</tr>{trs}</table>"

    collapse = [[s, "none" if t is None else str(t)] for s, t in depth["collapse"]["turn"].items()]
    parts = ["<h2>By depth</h2>", f"<p>{html.escape(_collapse_text(depth))}</p>"]
    parts.append(table(["system", "collapse turn"], collapse))
    for title, head, body in tables(depth):
        parts += [f"<h3>{html.escape(title)}</h3>", table(head, body)]
    if png:
        import base64

        parts.append(f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    return parts
