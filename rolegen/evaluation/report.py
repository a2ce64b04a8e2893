"""The eval report: report.md and report.html with plots, from results.json's figures.

- which turns each system is scored on: turns scored, dialogues that ended early and
  why, empty replies resampled (the comparison is fair only on the same turns);
- the headline: the issue's targets for the adapter against base, each met or not
  (one headline per prompt of the eval's prompt axis); its fluency row is the NLL over
  the clean turns (plain NLL rewards repetition; it stays a figure in the tables);
- one table of every metric per system (value and 95% interval; chance level beside
  the persona ranks), one of deltas against base (paired intervals; under another
  prompt, against base under that prompt);
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

Non-goals: computing metrics (`metrics.py`), generating (`evaluate.py`).
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

from rolegen.config.systems import ROLEGEN_PROMPT, label, split_label
from rolegen.evaluation import depth_report
from rolegen.evaluation.judge import LABELS as JUDGE_LABELS
from rolegen.evaluation.matched import MATCHED
from rolegen.evaluation.metrics import BY_NAME, CURVES, METRICS

# The headline's guardrails, and the "equal guardrails" a decoding fix must hold to be
# compared with the adapter: fluency over the clean turns, those that neither loop nor copy
# (repeated text is easy to predict, so the plain NLL rewards looping and no fix of it can
# pass it: it stays a figure in the tables), and relevance.
_GUARDS = ("fluency_nll_clean", "relevance")
# the headline's persona targets: no worse than base beyond the paired interval
_PERSONA_TARGETS = (
    ("wrong_identity", "wrong identity no higher than base"),
    ("identity_confusion", "identity confusion no higher than base"),
    ("identity_miss", "identity miss (asked) no higher than base"),
    ("assistant_drift", "assistant drift no higher than base"),
    ("acts_for_user", "acting for the user no higher than base"),
    ("persona_top1", "persona top-1 no lower than base"),
)
_CHANCE = {"persona_top1": "top1", "persona_mrr": "mrr"}  # metric -> results' persona_chance key
# row fields that count as persona faults when picking a side-by-side example
_PERSONA_FAULTS = (
    "echo", "wrong_identity", "identity_confusion", "identity_miss", "assistant_drift",
    "acts_for_user",
)  # fmt: skip
_MD_SYNTAX = re.compile(r"([\\`*_\[\]~])")
# shown with the prompts side by side when an eval has several
BY_PROMPT = ("near_copy", "seq_rep4", "identity_echo", "identity_recall", "fluency_nll_clean")


def _md_cell(text) -> str:
    """Text from the data, safe inside a markdown table cell: no HTML tag can open (`&`
    and `<` as entities), `|` escaped, line breaks as <br>."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")
    return re.sub(r"\r?\n", "<br>", text)


def _md(text) -> str:
    """Text from the data, shown literally in markdown: as `_md_cell`, and markdown's
    inline syntax (emphasis, code, links) escaped too."""
    return _md_cell(_MD_SYNTAX.sub(r"\\\1", str(text)))


def _held(entry: dict, metric: str) -> bool | None:
    """A guardrail is held when the system is not worse than the reference beyond the
    paired interval (the interval of the delta reaches zero or the better side)."""
    ci = entry.get(metric, {}).get("delta_ci95")
    if ci is None:
        return None
    return ci[0] <= 0 if BY_NAME[metric].better == "lower" else ci[1] >= 0


def _value(entry: dict, metric: str):
    return entry.get(metric, {}).get("value")


def reference_of(results: dict, system: str) -> str:
    """The system `system`'s deltas are against (base under the same prompt, if scored)."""
    return results.get("references", {}).get(system, results["reference"])


def prompts_of(results: dict) -> list[str]:
    """The prompts the systems were scored under, in order of appearance."""
    return list(dict.fromkeys(split_label(s)[1] for s in results["systems"]))


def by_prompt(results: dict) -> dict[str, dict[str, dict]]:
    """system -> prompt -> its figures: the prompt axis side by side."""
    out: dict[str, dict[str, dict]] = {}
    for name, figures in results["systems"].items():
        system, prompt = split_label(name)
        out.setdefault(system, {})[prompt] = figures
    return out


def headline(results: dict, prompt: str = ROLEGEN_PROMPT) -> list[dict]:
    """The targets of the eval, for 'adapter' against its reference system, both under
    `prompt`."""
    systems = results["systems"]
    adapter = label("adapter", prompt)
    ref = reference_of(results, adapter)
    if adapter not in systems or ref not in systems:
        return []
    a, b = systems[adapter], systems[ref]
    rows = []

    def add(criterion: str, observed: str, met: bool | None):
        rows.append({"criterion": criterion, "observed": observed, "met": met})

    nc_a, nc_b = _value(a, "near_copy"), _value(b, "near_copy")
    if nc_a is not None and nc_b is not None:
        add("near-copy share <= 0.10", f"{nc_b:.3f} -> {nc_a:.3f}", nc_a <= 0.10)
    sr_a, sr_b = _value(a, "seq_rep4"), _value(b, "seq_rep4")
    if sr_a is not None and sr_b:
        add("seq-rep-4 <= 1/3 of base", f"{sr_b:.3f} -> {sr_a:.3f}", sr_a <= sr_b / 3)
    for metric, name in MATCHED.items():  # the same, each paired turn cut to equal length
        m = a.get(metric)
        if m and m.get("delta_ci95"):
            add(
                f"{name} lower than base (paired interval below 0)",
                f"{m['reference_value']:.3f} -> {m['value']:.3f} (delta CI {m['delta_ci95']})",
                m["delta_ci95"][1] < 0,
            )

    chance = results.get("persona_chance") or {}

    def against_base(metric: str, criterion: str, met: bool | None) -> None:
        """A target on the adapter's delta against base, shown with its paired interval."""
        if _value(a, metric) is not None and _value(b, metric) is not None:
            ci = a[metric].get("delta_ci95")
            note = f", chance {chance[_CHANCE[metric]]:.3f}" if metric in _CHANCE and chance else ""
            observed = f"{_value(b, metric):.3f} -> {_value(a, metric):.3f} (delta CI {ci}{note})"
            add(criterion, observed, met)

    e_a, e_b = _value(a, "identity_echo"), _value(b, "identity_echo")
    if e_a is not None and e_b is not None:
        add("identity statements (unasked) halved", f"{e_b:.3f} -> {e_a:.3f}", e_a <= e_b / 2)
    recall_ci = a.get("identity_recall", {}).get("delta_ci95")
    against_base(
        "identity_recall",
        "identity recall (asked) up, paired interval above 0",
        None if recall_ci is None else recall_ci[0] > 0,
    )
    for metric, criterion in _PERSONA_TARGETS:
        against_base(metric, f"{criterion} beyond its interval", _held(a, metric))
    for g in _GUARDS:
        note = " (not a persona measure)" if g == "relevance" else ""
        against_base(g, f"{g} no worse than base beyond its interval{note}", _held(a, g))
    decoding = [
        s for s in systems if split_label(s)[1] == prompt and split_label(s)[0].startswith("base+")
    ]
    pairwise = results.get("pairwise", {})
    if decoding and nc_a is not None:
        fair = [s for s in decoding if all(_held(systems[s], g) is not False for g in _GUARDS)]
        pool = fair or decoding
        best = min(pool, key=lambda s: _value(systems[s], "near_copy") or 0)
        note = "" if fair else "; no decoding baseline held its guardrails"
        for metric in ("near_copy", "seq_rep4", *MATCHED):
            ci = pairwise.get(metric, {}).get(adapter, {}).get(best)
            if metric in MATCHED:  # the figures depend on the pair: only the interval
                if ci is None:
                    continue
                observed = f"{best} vs adapter, each turn cut to the shorter reply"
            else:
                observed = (
                    f"{best}: {_value(systems[best], metric):.3f} vs adapter "
                    f"{_value(a, metric):.3f}"
                )
            add(
                f"{metric} below the best decoding-only baseline at equal guardrails "
                "(paired interval of the difference below 0)",
                f"{observed}, difference CI {ci}{note}",
                ci is not None and ci[1] < 0,
            )
    return rows


def _fmt(entry: dict | None, delta: bool = False) -> str:
    if not entry or entry.get("delta" if delta else "value") is None:
        return "–"
    v = entry["delta" if delta else "value"]
    ci = entry.get("delta_ci95" if delta else "ci95")
    text = f"{v:+.3f}" if delta else f"{v:.3f}"
    return f"{text} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else text


def _compared(results: dict) -> list[str]:
    """The systems with a delta: all but the references."""
    return [s for s in results["systems"] if reference_of(results, s) != s]


def _tables(results: dict) -> tuple[list[str], list[list[str]], list[list[str]]]:
    systems = list(results["systems"])
    compared = _compared(results)
    header = ["metric", *systems]
    chance = results.get("persona_chance") or {}
    values, deltas = [], []
    for m in METRICS:
        if all(results["systems"][s].get(m.name, {}).get("value") is None for s in systems):
            continue
        label = m.label + {"lower": " (↓)", "higher": " (↑)"}.get(m.better, "")
        if m.name in _CHANCE and chance:
            label += f" [chance {chance[_CHANCE[m.name]]:.3f}, {chance['cards']} cards]"
        values.append([label, *(_fmt(results["systems"][s].get(m.name)) for s in systems)])
        deltas.append(
            [
                label,
                *(_fmt(results["systems"][s].get(m.name), True) for s in compared),
            ]
        )
    for n in (1, 2):
        values.append(
            [
                f"distinct-{n} (↑, corpus)",
                *(f"{results['systems'][s][f'distinct_{n}']['value']:.3f}" for s in systems),
            ]
        )
    return header, values, deltas


def _matched_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """Per system with a reference: near-copy and seq-rep-4 with each paired turn cut to
    the shorter reply (matched.py), the system's against its reference's, and the delta."""
    head = ["system", "against"]
    for name in MATCHED.values():
        head += [f"{name} (↓)", "delta [95% CI]"]
    body = []
    for s, figures in results["systems"].items():
        entries = [figures.get(m) for m in MATCHED]
        if not any(entries):
            continue
        row = [s, next(e["reference"] for e in entries if e)]
        for e in entries:
            cells = [f"{e['value']:.3f} vs {e['reference_value']:.3f}", _fmt(e, True)] if e else []
            row += cells or ["–", "–"]
        body.append(row)
    return head, body


_MATCHED_NOTE = (
    "Shorter replies have fewer chances to repeat. Here each paired turn (same dialogue, "
    "same turn) of a system and its reference is cut to the shorter reply's word count, "
    "and the earlier turns it is compared with to the same count, before near-copy and "
    "seq-rep-4 are scored again."
)


def _judge_section(results: dict) -> tuple[str, list[str], list[list[str]]] | None:
    """The model judge: who judged and how many answers were missing, then per fault its
    agreement with the pattern check of the same meaning (Cohen's kappa; n: the turns both
    rated; the two shares of flags), all systems together and per system."""
    judge = results.get("judge")
    if not judge:
        return None
    missing = ", ".join(f"{JUDGE_LABELS[f]} {n}" for f, n in judge["missing"].items())
    note = (
        f"Judge `{judge['model']}` at {judge['server']}: {judge['replies']} replies, "
        f"{judge['failed_requests']} requests failed, answers missing per verdict: {missing}. "
        "Kappa: agreement with the pattern check beyond chance (1 the same, 0 chance; n/a "
        "where both raters are constant)."
    )
    agreement = judge["agreement"]
    head = ["judge verdict", "pattern check", *agreement]
    body = []
    for fault, name in JUDGE_LABELS.items():
        cells = []
        for per in agreement.values():
            a = per[fault]
            kappa = "n/a" if a["kappa"] is None else f"{a['kappa']:.2f}"
            shares = "" if a["n"] == 0 else f", {a['judge_share']:.2f} vs {a['check_share']:.2f}"
            cells.append(f"κ {kappa} (n {a['n']}{shares})")
        check = next(iter(agreement.values()))[fault]["check"]
        body.append([name, check.replace("_", " "), *cells])
    return note, head, body


def _prompt_tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(metric label, header, rows) per BY_PROMPT metric: a row per system, a column per
    prompt (value and 95% interval). Empty with one prompt."""
    prompts = prompts_of(results)
    if len(prompts) < 2:
        return []
    per = by_prompt(results)
    tables = []
    for name in BY_PROMPT:
        m = BY_NAME[name]
        cells = {s: [_fmt(per[s].get(p, {}).get(name)) for p in prompts] for s in per}
        if all(c == "–" for row in cells.values() for c in row):
            continue
        label_ = m.label + {"lower": " (↓)", "higher": " (↑)"}.get(m.better, "")
        tables.append((label_, ["system", *prompts], [[s, *c] for s, c in cells.items()]))
    return tables


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


def _relevance_note(results: dict) -> str | None:
    """Relevance read beside the persona figures, per system (None: relevance not scored)."""
    systems = results["systems"]
    if all(_value(f, "relevance") is None for f in systems.values()):
        return None
    chance = results.get("persona_chance") or {}
    shown = ("relevance", "persona_top1", "assistant_drift", "wrong_identity")
    per = []
    for s, figures in systems.items():
        cells = [
            f"{m.replace('_', ' ')} {_value(figures, m):.3f}"
            for m in shown
            if _value(figures, m) is not None
        ]
        per.append(f"{s}: {', '.join(cells)}")
    top1 = f" (persona top-1 at chance: {chance['top1']:.3f})" if chance else ""
    return (
        "Relevance is not a persona measure: a generic helpful-assistant reply is closer to "
        "the user's turn than an in-character one, so a rise in relevance can mean the "
        f"character dissolved. Read it beside the persona figures{top1}: " + "; ".join(per) + "."
    )


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


def ending(entry: dict) -> str:
    """One system's `endings` entry in words: turns scored, dialogues ended early and why."""
    early = entry["ended_early"]
    text = f"{entry['turns_scored']} turns scored; "
    if early:
        why = ", ".join(f"{reason} {n}" for reason, n in sorted(early.items()))
        text += f"{sum(early.values())} of {entry['dialogues']} dialogues ended early ({why})"
    else:
        text += f"none of {entry['dialogues']} dialogues ended early"
    if entry["empty_resampled"]:
        text += f"; {entry['empty_resampled']} empty replies resampled"
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


def write_report(results: dict, records: list[dict], rows: list[dict], out: Path) -> None:
    header, values, deltas = _tables(results)
    others = _compared(results)
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
    side_by_side = _prompt_tables(results)
    matched = _matched_table(results)
    judged = _judge_section(results)
    note = _relevance_note(results)
    pairs = _example_pairs(records, rows)

    md = ["# rolegen eval", "", _intro(results, _md)]
    for title, rows_ in heads.items():
        if not rows_:
            continue
        md += ["", f"## {_md(title)}", "", "| target | observed | met |", "|---|---|---|"]
        for h in rows_:
            met = {True: "yes", False: "**no**", None: "n/a"}[h["met"]]
            md.append(f"| {h['criterion']} | {_md_cell(h['observed'])} | {met} |")
    md += ["", "## All systems", "", "| " + " | ".join(_md(h) for h in header) + " |"]
    md.append("|" + "---|" * len(header))
    md += ["| " + " | ".join(r) + " |" for r in values]
    if note:
        md += ["", _md(note)]
    if others:
        md += ["", f"## {_md(deltas_title)} (paired 95% intervals)", ""]
        md.append("| metric | " + " | ".join(_md(s) for s in others) + " |")
        md.append("|" + "---|" * (len(others) + 1))
        md += ["| " + " | ".join(r) + " |" for r in deltas]
    if matched[1]:
        md += ["", "## Repetition at matched length", "", _MATCHED_NOTE, ""]
        md.append("| " + " | ".join(matched[0]) + " |")
        md.append("|" + "---|" * len(matched[0]))
        md += ["| " + " | ".join([_md(r[0]), _md(r[1]), *r[2:]]) + " |" for r in matched[1]]
    if judged:
        note, head, body = judged
        md += ["", "## Model judge beside the pattern checks", "", _md_cell(note), ""]
        md += ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in body]
    if side_by_side:
        md += ["", "## By prompt (value and 95% interval)"]
        for title, head, body in side_by_side:
            md += ["", f"### {_md(title)}", "", "| " + " | ".join(_md(h) for h in head) + " |"]
            md.append("|" + "---|" * len(head))
            md += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in body]
    if png:
        md += ["", "![repetition by turn and guardrails](report.png)"]
    md += depth_report.markdown(depth, _md, _md_cell, bool(depth_png))
    for title, *pair in pairs:
        md += ["", f"## Side by side: {_md(title)}", ""]
        for record in pair:
            md += [f"### {_md(record['system'])}", ""]
            md += [f"- **{_md(role)}**: {_md(text)}" for role, text in _transcript(record)]
            md.append("")
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    def table(head: list[str], body: list[list[str]]) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body
        )
        return f"<table><tr>{th}</tr>{trs}</table>"

    parts = [
        "<!doctype html><meta charset='utf-8'><title>rolegen eval</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 6px}.pair{display:flex;gap:12px}.pair>div{flex:1}"
        ".assistant{background:#eef}.user{background:#f4f4f4}p{margin:4px 0;padding:3px}</style>",
        "<h1>rolegen eval</h1>",
        f"<p>{html.escape(_intro(results))}</p>",
    ]
    for title, rows_ in heads.items():
        if not rows_:
            continue
        met = {True: "yes", False: "no", None: "n/a"}
        body = [[h["criterion"], h["observed"], met[h["met"]]] for h in rows_]
        parts += [f"<h2>{html.escape(title)}</h2>", table(["target", "observed", "met"], body)]
    parts += ["<h2>All systems</h2>", table(header, values)]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    if others:
        parts += [f"<h2>{html.escape(deltas_title)}</h2>", table(["metric", *others], deltas)]
    if matched[1]:
        parts += ["<h2>Repetition at matched length</h2>", f"<p>{html.escape(_MATCHED_NOTE)}</p>"]
        parts.append(table(*matched))
    if judged:
        parts += [
            "<h2>Model judge beside the pattern checks</h2>",
            f"<p>{html.escape(judged[0])}</p>",
        ]
        parts.append(table(*judged[1:]))
    if side_by_side:
        parts.append("<h2>By prompt (value and 95% interval)</h2>")
        for title, head, body in side_by_side:
            parts += [f"<h3>{html.escape(title)}</h3>", table(head, body)]
    if png:
        parts.append(f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    parts += depth_report.html_parts(depth, depth_png)
    for title, *pair in pairs:
        parts.append(f"<h2>Side by side: {html.escape(title)}</h2><div class='pair'>")
        for record in pair:
            parts.append(f"<div><h3>{html.escape(record['system'])}</h3>")
            parts += [
                f"<p class='{html.escape(role)}'><b>{html.escape(role)}</b>: {html.escape(text)}</p>"
                for role, text in _transcript(record)
            ]
            parts.append("</div>")
        parts.append("</div>")
    (out / "report.html").write_text("\n".join(parts), encoding="utf-8")
