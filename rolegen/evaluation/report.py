"""The eval report: report.md and report.html with plots, from results.json's figures.

- which turns each system is scored on: turns scored, dialogues that ended early and
  why, empty replies resampled (the comparison is fair only on the same turns);
- the headline (`headline.py`): the issue's targets for the adapter against base, each
  met or not (one headline per prompt of the eval's prompt axis); its fluency row is the
  NLL over the clean turns (plain NLL rewards repetition; it stays a figure in the tables);
- the tables and notes (`report_tables.py`): one table of every metric per system
  (value and 95% interval; chance level beside the persona ranks), one of deltas against
  base (paired intervals; under another prompt, against base under that prompt);
- with a model judge (judge.py): its verdicts' shares in the tables beside the pattern
  checks, and per verdict its agreement with the check of the same meaning (kappa);
- near-copy and seq-rep-4 at matched length (matched.py): each system against its
  reference, every paired turn cut to the shorter reply;
- with several prompts, one table per headline metric with the prompts side by side;
- a note that relevance is not a persona measure, with the persona figures beside it:
  a generic assistant reply is closer to the user's turn than an in-character one, so
  a rise in relevance can mean the character dissolved;
- plots: near-copy share, identity echo, seq-rep-4 and paraphrase similarity by
  turn index per system; guardrails (fluency, relevance) with intervals;
- by depth (`depth_report.py`): each system's collapse turn; in a long eval, the
  repetition and persona metrics per window of 12 turns with intervals, and by turn;
- side-by-side dialogues of base and adapter: where their near-copy counts differ
  most, and where their persona faults (identity statements, wrong identity, identity
  confusion and miss, assistant drift, own card not ranked first) differ most either way.

What comes from the data (system labels, dialogue text, persona names) is escaped in
both files: a `|` must not break a markdown table, nor `<script>` run in a viewer.

This module renders them: it escapes the data's text for each format, draws the plots
and picks the side-by-side dialogues.

Non-goals: computing metrics (`metrics.py`), generating (`evaluate.py`).
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path

from rolegen.config.systems import ROLEGEN_PROMPT
from rolegen.evaluation import depth_report
from rolegen.evaluation.headline import ending, headline, prompts_of
from rolegen.evaluation.metrics import BY_NAME, CURVES
from rolegen.evaluation.report_tables import (
    MATCHED_NOTE,
    compared,
    judge_table,
    matched_table,
    metric_tables,
    prompt_tables,
    relevance_note,
)

# row fields that count as persona faults when picking a side-by-side example
_PERSONA_FAULTS = (
    "echo", "wrong_identity", "identity_confusion", "identity_miss", "assistant_drift",
    "acts_for_user",
)  # fmt: skip
_MD_SYNTAX = re.compile(r"([\\`*_\[\]~])")


def _md_cell(text) -> str:
    """Text from the data, safe inside a markdown table cell: no HTML tag can open (`&`
    and `<` as entities), `|` escaped, line breaks as <br>."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")
    return re.sub(r"\r?\n", "<br>", text)


def _md(text) -> str:
    """Text from the data, shown literally in markdown: as `_md_cell`, and markdown's
    inline syntax (emphasis, code, links) escaped too."""
    return _md_cell(_MD_SYNTAX.sub(r"\\\1", str(text)))


def _plot(results: dict) -> bytes | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    curves = results["curves"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, name in zip(axes.flat, CURVES):
        for system, per in curves.items():
            points = per.get(name)
            if points:
                turns = sorted(points, key=int)
                ax.plot(
                    [int(t) for t in turns], [points[t] for t in turns], marker="o", label=system
                )
        ax.set_title(BY_NAME[name].label, fontsize=10)
        ax.set_xlabel("character turn")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    systems = list(results["systems"])
    for ax, name in zip(list(axes.flat)[4:], ("fluency_nll_clean", "relevance")):
        vals, errs, labels = [], [[], []], []
        for s in systems:
            e = results["systems"][s].get(name, {})
            if e.get("value") is None:
                continue
            labels.append(s)
            vals.append(e["value"])
            lo, hi = e.get("ci95") or [e["value"], e["value"]]
            errs[0].append(e["value"] - lo)
            errs[1].append(hi - e["value"])
        if vals:
            ax.barh(range(len(vals)), vals, xerr=errs, color="tab:gray", alpha=0.7)
            ax.set_yticks(range(len(vals)), labels, fontsize=7)
            lo = min(v - e for v, e in zip(vals, errs[0]))
            ax.set_xlim(left=max(0.0, lo - 0.1 * abs(lo)))
        ax.set_title(BY_NAME[name].label + " (95% CI)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _persona_faults(row: dict) -> float:
    faults = sum(row[f] or 0 for f in _PERSONA_FAULTS)  # identity_miss: None when not asked
    return faults + (0 if row["persona_top1"] is None else 1 - row["persona_top1"])


def _example_pairs(records: list[dict], rows: list[dict], other: str = "adapter") -> list:
    """(title, base record, `other` record) of one seed key: the pair whose near-copy counts
    differ most (base minus other), and the pair whose persona faults differ most either
    way (one entry when it is the same pair). Ties: the first seed key in sorted order."""
    near: dict[tuple[str, str], float] = {}
    persona: dict[tuple[str, str], float] = {}
    for r in rows:
        key = (r["system"], r["dialogue"])
        near[key] = near.get(key, 0) + r["near_copy"]
        persona[key] = persona.get(key, 0) + _persona_faults(r)
    keys = sorted({k for s, k in near if s == other} & {k for s, k in near if s == "base"})
    picks: dict[str, list[str]] = {}  # seed key -> why it was picked
    for kind, count, score in (
        ("near-copies", near, lambda k: near[("base", k)] - near[(other, k)]),
        ("persona faults", persona, lambda k: abs(persona[("base", k)] - persona[(other, k)])),
    ):
        if keys:
            key = max(keys, key=score)
            why = f"{kind}: base {count[('base', key)]:g}, {other} {count[(other, key)]:g}"
            picks.setdefault(key, []).append(why)
    by = {(r.get("system"), r.get("seed_key") or r["id"]): r for r in records}
    return [
        (f"{key} ({'; '.join(why)})", by[("base", key)], by[(other, key)])
        for key, why in picks.items()
        if ("base", key) in by and (other, key) in by
    ]


def _transcript(record: dict) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in record["messages"] if m["role"] != "system"]


def _provenance(results: dict, esc=str) -> str:
    """What was evaluated: the base model (path and hash), the adapter and the suite;
    `esc` escapes the names that come from the data."""
    model = results.get("model") or {}
    digest = model.get("hash")
    text = f"Base model `{model.get('path') or 'not recorded'}`"
    if digest:
        text += f" (sha256 `{digest[:12]}`)"
    adapter = results.get("adapter")
    if adapter:
        text += f", adapter `{adapter['path']}` (sha256 `{str(adapter.get('hash', '?'))[:12]}`)"
    if results.get("source"):
        text += f"; dialogues from {', '.join(f'`{s}`' for s in results['source'])}"
    else:
        suite = results.get("suite") or "the shipped evals/"
        text += (
            f"; suite `{suite}`: {len(results.get('personas', {}))} personas "
            f"({', '.join(esc(p) for p in results.get('personas', {}))}), user scripts "
            f"{', '.join(esc(s) for s in results.get('scripts', {}))}"
        )
    return text


def _intro(results: dict, esc=str) -> str:
    if results.get("endings"):
        scored = "Per system: " + "; ".join(
            f"{esc(k)}: {esc(ending(v))}" for k, v in results["endings"].items()
        )
    else:  # a results.json from before the endings were counted
        scored = "Turns scored per system: " + ", ".join(
            f"{esc(k)} {v}" for k, v in results["samples"].items()
        )
    return (
        f"{_provenance(results, esc)}. {results['date']}, git "
        f"{results.get('git_commit') or '?'}. {scored}. Intervals: "
        f"95% cluster bootstrap over dialogues ({results['config']['bootstrap']} resamples)."
    )


@dataclass
class _Sections:
    """What report.md and report.html both show, computed once; each file escapes the
    data's text its own way."""

    results: dict
    heads: dict[str, list[dict]]  # title -> headline rows
    header: list[str]
    values: list[list[str]]
    others: list[str]  # the systems with a delta
    deltas_title: str
    deltas: list[list[str]]
    note: str | None  # relevance beside the persona figures
    matched: tuple[list[str], list[list[str]]]
    judged: tuple[str, list[str], list[list[str]]] | None
    side_by_side: list[tuple[str, list[str], list[list[str]]]]
    png: bytes | None
    depth: dict | None
    depth_png: bytes | None
    pairs: list


def write_report(results: dict, records: list[dict], rows: list[dict], out: Path) -> None:
    """report.md, report.html and their plots (report.png, report-depth.png) into `out`."""
    header, values, deltas = metric_tables(results)
    deltas_title = f"Deltas against {results['reference']}"
    if len(prompts_of(results)) > 1:
        deltas_title += " (under another prompt: against base under that prompt)"
    png = _plot(results)
    if png:
        (out / "report.png").write_bytes(png)
    depth = results.get("depth")
    depth_png = depth_report.plot(depth) if depth else None
    if depth_png:
        (out / depth_report.PNG).write_bytes(depth_png)
    heads = {
        "Headline: adapter vs base"
        if p == ROLEGEN_PROMPT
        else f"Headline under the {p} prompt: adapter vs base": headline(results, p)
        for p in prompts_of(results)
    }
    s = _Sections(
        results=results,
        heads=heads,
        header=header,
        values=values,
        others=compared(results),
        deltas_title=deltas_title,
        deltas=deltas,
        note=relevance_note(results),
        matched=matched_table(results),
        judged=judge_table(results),
        side_by_side=prompt_tables(results),
        png=png,
        depth=depth,
        depth_png=depth_png,
        pairs=_example_pairs(records, rows),
    )
    (out / "report.md").write_text(_markdown(s) + "\n", encoding="utf-8")
    (out / "report.html").write_text(_html(s), encoding="utf-8")


def _markdown(s: _Sections) -> str:
    md = ["# rolegen eval", "", _intro(s.results, _md)]
    for title, rows_ in s.heads.items():
        if not rows_:
            continue
        md += ["", f"## {_md(title)}", "", "| target | observed | met |", "|---|---|---|"]
        for h in rows_:
            met = {True: "yes", False: "**no**", None: "n/a"}[h["met"]]
            md.append(f"| {h['criterion']} | {_md_cell(h['observed'])} | {met} |")
    md += ["", "## All systems", "", "| " + " | ".join(_md(h) for h in s.header) + " |"]
    md.append("|" + "---|" * len(s.header))
    md += ["| " + " | ".join(r) + " |" for r in s.values]
    if s.note:
        md += ["", _md(s.note)]
    if s.others:
        md += ["", f"## {_md(s.deltas_title)} (paired 95% intervals)", ""]
        md.append("| metric | " + " | ".join(_md(o) for o in s.others) + " |")
        md.append("|" + "---|" * (len(s.others) + 1))
        md += ["| " + " | ".join(r) + " |" for r in s.deltas]
    if s.matched[1]:
        md += ["", "## Repetition at matched length", "", MATCHED_NOTE, ""]
        md.append("| " + " | ".join(s.matched[0]) + " |")
        md.append("|" + "---|" * len(s.matched[0]))
        md += ["| " + " | ".join([_md(r[0]), _md(r[1]), *r[2:]]) + " |" for r in s.matched[1]]
    if s.judged:
        judge_note, head, body = s.judged
        md += ["", "## Model judge beside the pattern checks", "", _md_cell(judge_note), ""]
        md += ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in body]
    if s.side_by_side:
        md += ["", "## By prompt (value and 95% interval)"]
        for title, head, body in s.side_by_side:
            md += ["", f"### {_md(title)}", "", "| " + " | ".join(_md(h) for h in head) + " |"]
            md.append("|" + "---|" * len(head))
            md += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in body]
    if s.png:
        md += ["", "![repetition by turn and guardrails](report.png)"]
    md += depth_report.markdown(s.depth, _md, _md_cell, bool(s.depth_png))
    for title, *pair in s.pairs:
        md += ["", f"## Side by side: {_md(title)}", ""]
        for record in pair:
            md += [f"### {_md(record['system'])}", ""]
            md += [f"- **{_md(role)}**: {_md(text)}" for role, text in _transcript(record)]
            md.append("")
    return "\n".join(md)


def _table(head: list[str], body: list[list[str]]) -> str:
    """An HTML table, every cell escaped."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><tr>{th}</tr>{trs}</table>"


def _html(s: _Sections) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>rolegen eval</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 6px}.pair{display:flex;gap:12px}.pair>div{flex:1}"
        ".assistant{background:#eef}.user{background:#f4f4f4}p{margin:4px 0;padding:3px}</style>",
        "<h1>rolegen eval</h1>",
        f"<p>{html.escape(_intro(s.results))}</p>",
    ]
    for title, rows_ in s.heads.items():
        if not rows_:
            continue
        met = {True: "yes", False: "no", None: "n/a"}
        body = [[h["criterion"], h["observed"], met[h["met"]]] for h in rows_]
        parts += [f"<h2>{html.escape(title)}</h2>", _table(["target", "observed", "met"], body)]
    parts += ["<h2>All systems</h2>", _table(s.header, s.values)]
    if s.note:
        parts.append(f"<p>{html.escape(s.note)}</p>")
    if s.others:
        parts += [
            f"<h2>{html.escape(s.deltas_title)}</h2>",
            _table(["metric", *s.others], s.deltas),
        ]
    if s.matched[1]:
        parts += ["<h2>Repetition at matched length</h2>", f"<p>{html.escape(MATCHED_NOTE)}</p>"]
        parts.append(_table(*s.matched))
    if s.judged:
        parts += [
            "<h2>Model judge beside the pattern checks</h2>",
            f"<p>{html.escape(s.judged[0])}</p>",
        ]
        parts.append(_table(*s.judged[1:]))
    if s.side_by_side:
        parts.append("<h2>By prompt (value and 95% interval)</h2>")
        for title, head, body in s.side_by_side:
            parts += [f"<h3>{html.escape(title)}</h3>", _table(head, body)]
    if s.png:
        parts.append(f"<img src='data:image/png;base64,{base64.b64encode(s.png).decode()}'>")
    parts += depth_report.html_parts(s.depth, s.depth_png)
    for title, *pair in s.pairs:
        parts.append(f"<h2>Side by side: {html.escape(title)}</h2><div class='pair'>")
        for record in pair:
            parts.append(f"<div><h3>{html.escape(record['system'])}</h3>")
            parts += [
                f"<p class='{html.escape(role)}'><b>{html.escape(role)}</b>: {html.escape(text)}</p>"
                for role, text in _transcript(record)
            ]
            parts.append("</div>")
        parts.append("</div>")
    return "\n".join(parts)
