"""The headline of an eval: the issue's targets for the adapter against base, each met or
not, read from results.json's figures; and the readings of results.json the report and
the console summary share (the prompt axis, each system's reference, its endings).

The targets (one headline per prompt of the eval's prompt axis):
- near-copy share at most 0.10, seq-rep-4 at most a third of base, and both lower than
  base at matched length (matched.py: each paired turn cut to the shorter reply);
- identity statements (unasked) halved, identity recall (asked) up beyond its interval;
- the persona faults (wrong identity, identity confusion and miss, assistant drift,
  acting for the user, own card not ranked first) no worse than base beyond the paired
  interval;
- the guardrails no worse than base: fluency over the clean turns (plain NLL rewards
  repetition; it stays a figure in the tables) and relevance;
- near-copy and seq-rep-4 below the best decoding-only baseline that held its guardrails.

Non-goals: computing the figures (`metrics.py`), rendering them (`report.py`).
"""

from __future__ import annotations

from rolegen.config.systems import ROLEGEN_PROMPT, label, split_label
from rolegen.evaluation.matched import MATCHED
from rolegen.evaluation.metrics import BY_NAME

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
# metric -> results' persona_chance key: the chance level shown beside the persona ranks
CHANCE = {"persona_top1": "top1", "persona_mrr": "mrr"}
# shown with the prompts side by side when an eval has several
BY_PROMPT = ("near_copy", "seq_rep4", "identity_echo", "identity_recall", "fluency_nll_clean")


def _held(entry: dict, metric: str) -> bool | None:
    """A guardrail is held when the system is not worse than the reference beyond the
    paired interval (the interval of the delta reaches zero or the better side)."""
    ci = entry.get(metric, {}).get("delta_ci95")
    if ci is None:
        return None
    return ci[0] <= 0 if BY_NAME[metric].better == "lower" else ci[1] >= 0


def value(entry: dict, metric: str):
    """A system's figure for `metric` (None: not scored)."""
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

    nc_a, nc_b = value(a, "near_copy"), value(b, "near_copy")
    if nc_a is not None and nc_b is not None:
        add("near-copy share <= 0.10", f"{nc_b:.3f} -> {nc_a:.3f}", nc_a <= 0.10)
    sr_a, sr_b = value(a, "seq_rep4"), value(b, "seq_rep4")
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
        if value(a, metric) is not None and value(b, metric) is not None:
            ci = a[metric].get("delta_ci95")
            note = f", chance {chance[CHANCE[metric]]:.3f}" if metric in CHANCE and chance else ""
            observed = f"{value(b, metric):.3f} -> {value(a, metric):.3f} (delta CI {ci}{note})"
            add(criterion, observed, met)

    e_a, e_b = value(a, "identity_echo"), value(b, "identity_echo")
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
        best = min(pool, key=lambda s: value(systems[s], "near_copy") or 0)
        note = "" if fair else "; no decoding baseline held its guardrails"
        for metric in ("near_copy", "seq_rep4", *MATCHED):
            ci = pairwise.get(metric, {}).get(adapter, {}).get(best)
            if metric in MATCHED:  # the figures depend on the pair: only the interval
                if ci is None:
                    continue
                observed = f"{best} vs adapter, each turn cut to the shorter reply"
            else:
                observed = (
                    f"{best}: {value(systems[best], metric):.3f} vs adapter {value(a, metric):.3f}"
                )
            add(
                f"{metric} below the best decoding-only baseline at equal guardrails "
                "(paired interval of the difference below 0)",
                f"{observed}, difference CI {ci}{note}",
                ci is not None and ci[1] < 0,
            )
    return rows
