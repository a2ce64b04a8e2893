"""The report's tables and notes, as plain text cells for report.py to escape and place
in report.md and report.html:
- every metric per system (value and 95% interval; chance level beside the persona
  ranks), and the deltas against each system's reference (paired intervals);
- near-copy and seq-rep-4 at matched length (matched.py), each system against its
  reference;
- the model judge's agreement with the pattern check of the same meaning (kappa);
- with several prompts, one table per BY_PROMPT metric with the prompts side by side;
- relevance read beside the persona figures (it is not a persona measure).

Cells hold the data's text as it is (system labels, judge names): escaping is the
renderer's, as each format needs its own.

Non-goals: the headline's targets (`headline.py`), plots and rendering (`report.py`).
"""

from __future__ import annotations

from rolegen.evaluation.headline import (
    BY_PROMPT,
    CHANCE,
    by_prompt,
    prompts_of,
    reference_of,
    value,
)
from rolegen.evaluation.judge import LABELS as JUDGE_LABELS
from rolegen.evaluation.matched import MATCHED
from rolegen.evaluation.metrics import BY_NAME, METRICS


def figure_text(entry: dict | None, delta: bool = False) -> str:
    """A figure and its 95% interval (`delta`: the delta against the reference and its
    paired interval); "–" where not scored."""
    if not entry or entry.get("delta" if delta else "value") is None:
        return "–"
    v = entry["delta" if delta else "value"]
    ci = entry.get("delta_ci95" if delta else "ci95")
    text = f"{v:+.3f}" if delta else f"{v:.3f}"
    return f"{text} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else text


def compared(results: dict) -> list[str]:
    """The systems with a delta: all but the references."""
    return [s for s in results["systems"] if reference_of(results, s) != s]


def metric_tables(results: dict) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """(header, value rows, delta rows): every scored metric per system, its chance level
    beside the persona ranks; the delta rows hold the `compared` systems' columns."""
    systems = list(results["systems"])
    others = compared(results)
    header = ["metric", *systems]
    chance = results.get("persona_chance") or {}
    values, deltas = [], []
    for m in METRICS:
        if all(results["systems"][s].get(m.name, {}).get("value") is None for s in systems):
            continue
        label = m.label + {"lower": " (↓)", "higher": " (↑)"}.get(m.better, "")
        if m.name in CHANCE and chance:
            label += f" [chance {chance[CHANCE[m.name]]:.3f}, {chance['cards']} cards]"
        values.append([label, *(figure_text(results["systems"][s].get(m.name)) for s in systems)])
        deltas.append(
            [
                label,
                *(figure_text(results["systems"][s].get(m.name), True) for s in others),
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


def matched_table(results: dict) -> tuple[list[str], list[list[str]]]:
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
            cells = (
                [f"{e['value']:.3f} vs {e['reference_value']:.3f}", figure_text(e, True)]
                if e
                else []
            )
            row += cells or ["–", "–"]
        body.append(row)
    return head, body


MATCHED_NOTE = (
    "Shorter replies have fewer chances to repeat. Here each paired turn (same dialogue, "
    "same turn) of a system and its reference is cut to the shorter reply's word count, "
    "and the earlier turns it is compared with to the same count, before near-copy and "
    "seq-rep-4 are scored again."
)


def judge_table(results: dict) -> tuple[str, list[str], list[list[str]]] | None:
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


def prompt_tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(metric label, header, rows) per BY_PROMPT metric: a row per system, a column per
    prompt (value and 95% interval). Empty with one prompt."""
    prompts = prompts_of(results)
    if len(prompts) < 2:
        return []
    per = by_prompt(results)
    tables = []
    for name in BY_PROMPT:
        m = BY_NAME[name]
        cells = {s: [figure_text(per[s].get(p, {}).get(name)) for p in prompts] for s in per}
        if all(c == "–" for row in cells.values() for c in row):
            continue
        label_ = m.label + {"lower": " (↓)", "higher": " (↑)"}.get(m.better, "")
        tables.append((label_, ["system", *prompts], [[s, *c] for s, c in cells.items()]))
    return tables


def relevance_note(results: dict) -> str | None:
    """Relevance read beside the persona figures, per system (None: relevance not scored)."""
    systems = results["systems"]
    if all(value(f, "relevance") is None for f in systems.values()):
        return None
    chance = results.get("persona_chance") or {}
    shown = ("relevance", "persona_top1", "assistant_drift", "wrong_identity")
    per = []
    for s, figures in systems.items():
        cells = [
            f"{m.replace('_', ' ')} {value(figures, m):.3f}"
            for m in shown
            if value(figures, m) is not None
        ]
        per.append(f"{s}: {', '.join(cells)}")
    top1 = f" (persona top-1 at chance: {chance['top1']:.3f})" if chance else ""
    return (
        "Relevance is not a persona measure: a generic helpful-assistant reply is closer to "
        "the user's turn than an in-character one, so a rise in relevance can mean the "
        f"character dissolved. Read it beside the persona figures{top1}: " + "; ".join(per) + "."
    )
